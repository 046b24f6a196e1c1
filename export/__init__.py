"""Genba: export."""

"""Genba: gui."""

"""Genba."""

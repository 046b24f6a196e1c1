"""Genba: server."""

"""Genba: edge_agent."""

"""The ClientApp: Genba's installed ``edge_agent.federation.client_app`` (the site's own code)."""

from edge_agent.federation.client_app import app

__all__ = ["app"]

"""The ServerApp: Genba's installed ``server.server_app``."""

from server.server_app import app

__all__ = ["app"]

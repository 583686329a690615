"""The HTTP facade: a thin Flask app over the domain (see ARCHITECTURE.md)."""

from dispatcher.api.app import create_app

__all__ = ["create_app"]

"""The HTTP API: FastAPI app factory, token auth, routes, RFC 9457 problems."""

from vault.api.app import create_app

__all__ = ["create_app"]

"""The HTTP API under `/v1`: token auth dependencies, routes, RFC 9457 problems.

`vault.app.create_app` puts these routes and the web pages on one FastAPI app.
"""

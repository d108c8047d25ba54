"""The web interface: server-rendered pages at `/`, served by the API's own FastAPI app.

Pages call the same use cases as the API under `/v1` (one authorization path, one ledger);
`vault.web.site.install` puts them on the app. docs/web.md tells what exists and how to add a
page or a translation.
"""

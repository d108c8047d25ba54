"""Extractor adapters: Apache Tika in-process (iscc-tika) and a Tika server over HTTP.

Loaded on first use (PEP 562), so that the parser processes, which import
`ingest.adapters._tika_child`, do not carry the HTTP client (see `ingest/__init__.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest._lazy import exports

if TYPE_CHECKING:
    from ingest.adapters.tika_native import NativeTikaExtractor
    from ingest.adapters.tika_server import TikaServerExtractor

__all__ = ["NativeTikaExtractor", "TikaServerExtractor"]

_HOMES = {
    "NativeTikaExtractor": "ingest.adapters.tika_native",
    "TikaServerExtractor": "ingest.adapters.tika_server",
}


__getattr__ = exports("ingest.adapters", _HOMES)

"""Extractor adapters: Apache Tika in-process (iscc-tika) and a Tika server over HTTP."""

from ingest.adapters.tika_native import NativeTikaExtractor
from ingest.adapters.tika_server import TikaServerExtractor

__all__ = ["NativeTikaExtractor", "TikaServerExtractor"]

"""The Tika server adapter against a real Tika server (`TVAULT_TEST_TIKA_URL`).

The shared Extractor contract (tests/contract/test_extractor.py) runs against the same server;
these tests add what only a server does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingest import ExtractionError, FailureKind, Limits
from ingest.adapters import TikaServerExtractor
from tests import corpus
from tests.services import unavailable

pytestmark = pytest.mark.tika_server


@pytest.fixture(scope="module")
def server() -> Iterator[TikaServerExtractor]:
    url = os.environ.get("TVAULT_TEST_TIKA_URL")
    if not url:
        unavailable("tika_server", "TVAULT_TEST_TIKA_URL is not set")
    try:
        httpx.get(f"{url.rstrip('/')}/version", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        unavailable("tika_server", f"no Tika server at {url}: {exc}")
    with TikaServerExtractor(url) as extractor:
        yield extractor


def test_the_whole_job_is_bounded_in_time(server: TikaServerExtractor, tmp_path: Path) -> None:
    with pytest.raises(ExtractionError) as caught:
        server.extract(corpus.pdf(tmp_path, pages=[corpus.SPANISH] * 200), Limits(timeout_s=0.01))
    assert caught.value.kind is FailureKind.TIMEOUT


def test_the_server_limit_is_a_failure(server: TikaServerExtractor, tmp_path: Path) -> None:
    path = corpus.docx(tmp_path, paragraphs=[corpus.SPANISH] * 50)
    with pytest.raises(ExtractionError) as caught:
        server.extract(path, Limits(max_text_chars=2_000))
    assert caught.value.kind is FailureKind.TEXT_LIMIT

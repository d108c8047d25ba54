"""The Tika server adapter when the server is absent or silent (real sockets on loopback)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import ExtractionError, FailureKind, Limits
from ingest.adapters import TikaServerExtractor
from tests import corpus


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections, reads, and never answers: a hung Tika."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(10)
    accepted: list[socket.socket] = []

    def accept() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        thread.join(timeout=10)
        for conn in accepted:
            conn.close()


def test_nothing_listening(tmp_path: Path) -> None:
    with (
        TikaServerExtractor(f"http://127.0.0.1:{_free_port()}") as extractor,
        pytest.raises(ExtractionError) as caught,
    ):
        extractor.extract(corpus.pdf(tmp_path), Limits())
    assert caught.value.kind is FailureKind.UNAVAILABLE
    assert caught.value.reason == "Tika server unreachable: ConnectError"


def test_a_silent_server_times_out(tmp_path: Path, silent_server: str) -> None:
    with (
        TikaServerExtractor(silent_server) as extractor,
        pytest.raises(ExtractionError) as caught,
    ):
        extractor.extract(corpus.pdf(tmp_path), Limits(timeout_s=1))
    assert caught.value.kind is FailureKind.TIMEOUT
    assert caught.value.reason == "timed out after 1 s"


def test_the_check_names_a_server_that_is_not_there() -> None:
    with (
        TikaServerExtractor(f"http://127.0.0.1:{_free_port()}") as extractor,
        pytest.raises(ExtractionError) as caught,
    ):
        extractor.check(1.0)
    assert caught.value.kind is FailureKind.UNAVAILABLE
    assert caught.value.reason == "Tika server unreachable: ConnectError"


def test_the_check_gives_up_on_a_silent_server_in_time(silent_server: str) -> None:
    started = time.monotonic()
    with (
        TikaServerExtractor(silent_server) as extractor,
        pytest.raises(ExtractionError) as caught,
    ):
        extractor.check(0.5)
    assert time.monotonic() - started < 2.0
    assert caught.value.kind is FailureKind.UNAVAILABLE
    assert caught.value.reason == "Tika server unreachable: ReadTimeout"


def test_hostile_files_fail_before_any_request(tmp_path: Path) -> None:
    # The container check and the empty-file check run here, so nothing is sent.
    with TikaServerExtractor(f"http://127.0.0.1:{_free_port()}") as extractor:
        for path, kind in (
            (corpus.zip_bomb_docx(tmp_path), FailureKind.ZIP_BOMB),
            (corpus.empty(tmp_path), FailureKind.EMPTY),
            (corpus.nested_docx(tmp_path, 5), FailureKind.NESTING),
        ):
            with pytest.raises(ExtractionError) as caught:
                extractor.extract(path, Limits())
            assert caught.value.kind is kind

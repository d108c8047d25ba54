"""The parser process pool: crashes, hangs and memory stay in the child; the pool recovers."""

from __future__ import annotations

import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from ingest import Extraction, ExtractionError, FailureKind, Limits
from ingest.adapters import NativeTikaExtractor
from tests import corpus
from tests.services import unavailable

HOSTILE = "tests.integration.hostile_child"


@pytest.fixture
def pool() -> Iterator[NativeTikaExtractor]:
    with NativeTikaExtractor(workers=1, child_module=HOSTILE) as extractor:
        yield extractor


def _marker(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / f"{secrets.token_hex(4)}.txt"
    path.write_bytes(content)
    return path


def _works(pool: NativeTikaExtractor, tmp_path: Path) -> None:
    assert "tortura" in pool.extract(corpus.docx(tmp_path), Limits()).text


def _wait_until_dead(pid: int) -> None:
    """Wait until every thread of `pid` has exited (a zombie the pool has not reaped yet).

    The leader of a killed multi-threaded process shows state Z while its other threads still
    tear down and hold its pipes open.
    """
    for _ in range(1000):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:  # already reaped
            return
        if "\nState:\tZ" in status and "\nThreads:\t1\n" in status:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not die")


def _fails(pool: NativeTikaExtractor, path: Path, limits: Limits) -> ExtractionError:
    with pytest.raises(ExtractionError) as caught:
        pool.extract(path, limits)
    return caught.value


@pytest.mark.parametrize(
    ("marker", "reason"),
    [(b"EXIT", "parser crashed: exit status 3"), (b"SEGV", "parser crashed: killed by SIGSEGV")],
)
def test_a_crash_stays_in_the_child(
    pool: NativeTikaExtractor, tmp_path: Path, marker: bytes, reason: str
) -> None:
    _works(pool, tmp_path)
    [before] = pool.pids()
    error = _fails(pool, _marker(tmp_path, marker), Limits())
    assert error.kind is FailureKind.CRASHED
    assert error.reason == reason
    _works(pool, tmp_path)
    [after] = pool.pids()
    assert after != before


def test_a_hang_is_killed_at_the_deadline(pool: NativeTikaExtractor, tmp_path: Path) -> None:
    _works(pool, tmp_path)
    [hung] = pool.pids()
    error = _fails(pool, _marker(tmp_path, b"HANG"), Limits(timeout_s=1.5))
    assert error.kind is FailureKind.TIMEOUT
    assert error.reason == "timed out after 1.5 s"
    with pytest.raises(ProcessLookupError):
        os.kill(hung, 0)  # killed and reaped, not left running
    _works(pool, tmp_path)


@pytest.mark.parametrize("sandbox", [True, False])
def test_spooled_files_of_a_killed_child_are_removed(tmp_path: Path, sandbox: bool) -> None:
    # Sandboxed, the file is in the parser's own tmpfs; plain, the pool sweeps /tmp.
    name = secrets.token_hex(8)
    spooled = Path("/tmp") / f"apache-tika-{name}.docx"
    marker = _marker(tmp_path, b"SPOOL" + name.encode())
    try:
        with NativeTikaExtractor(child_module=HOSTILE, sandbox=sandbox) as extractor:
            error = _fails(extractor, marker, Limits(timeout_s=2))
            assert error.kind is FailureKind.TIMEOUT
            assert not spooled.exists()
    finally:
        spooled.unlink(missing_ok=True)


def test_memory_limit(pool: NativeTikaExtractor, tmp_path: Path) -> None:
    limits = Limits(max_memory_bytes=512 << 20)
    error = _fails(pool, _marker(tmp_path, b"ALLOC"), limits)
    assert error.kind is FailureKind.MEMORY
    assert error.reason == "the parser ran out of its 512 MiB memory limit"
    assert "tortura" in pool.extract(corpus.docx(tmp_path), limits).text


@pytest.mark.parametrize(
    "marker",
    [b"RUSTOOM", b"PYO3OOM"],
    ids=["rust-allocator-abort", "pyo3-string-panic"],
)
def test_native_out_of_memory_is_reported_as_such(
    pool: NativeTikaExtractor, tmp_path: Path, marker: bytes
) -> None:
    # The two ways (measured) that the native parser runs out of its limit far from the 90 %
    # mark: Rust's allocator aborts the process, or pyo3 panics building the text's string.
    limits = Limits(max_memory_bytes=512 << 20)
    error = _fails(pool, _marker(tmp_path, marker), limits)
    assert error.kind is FailureKind.MEMORY
    assert error.reason == "the parser ran out of its 512 MiB memory limit"
    _works(pool, tmp_path)


def test_a_child_killed_between_jobs_is_replaced(pool: NativeTikaExtractor, tmp_path: Path) -> None:
    _works(pool, tmp_path)
    [pid] = pool.pids()
    os.kill(pid, signal.SIGKILL)
    _wait_until_dead(pid)
    _works(pool, tmp_path)
    assert pool.pids() != [pid]


def test_answers_over_the_limit_are_refused_by_the_parent(
    pool: NativeTikaExtractor, tmp_path: Path
) -> None:
    error = _fails(pool, _marker(tmp_path, b"FLOOD"), Limits(max_text_chars=100))
    assert error.kind is FailureKind.TEXT_LIMIT
    _works(pool, tmp_path)


def test_output_of_native_code_cannot_corrupt_the_answer(
    pool: NativeTikaExtractor, tmp_path: Path
) -> None:
    assert pool.extract(_marker(tmp_path, b"PRINT"), Limits()).text == "clean answer"
    _works(pool, tmp_path)


def test_the_child_gets_no_secrets(
    pool: NativeTikaExtractor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TVAULT_PASSPHRASE", "correct horse battery staple")
    names = pool.extract(_marker(tmp_path, b"ENV"), Limits()).text.split()
    assert "TVAULT_PASSPHRASE" not in names
    assert "PATH" in names


def test_workers_run_side_by_side(tmp_path: Path) -> None:
    files = [corpus.docx(tmp_path, f"{n}.docx") for n in range(6)]
    results: list[str] = []
    with NativeTikaExtractor(workers=2) as extractor:

        def work(path: Path) -> None:
            results.append(extractor.extract(path, Limits()).text)

        threads = [threading.Thread(target=work, args=(path,)) for path in files]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(extractor.pids()) == 2
    assert len(results) == 6 and all("tortura" in text for text in results)


def test_close_stops_every_child(tmp_path: Path) -> None:
    extractor = NativeTikaExtractor(workers=2)
    extractor.warm_up()
    pids = extractor.pids()
    assert len(pids) == 2
    extractor.close()
    extractor.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RuntimeError):
        extractor.extract(corpus.docx(tmp_path), Limits())


def test_a_missing_file_is_the_callers_error(pool: NativeTikaExtractor, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        pool.extract(tmp_path / "nowhere.pdf", Limits())


def test_tika_out_of_memory_is_reported_as_such(tmp_path: Path) -> None:
    # Measured: 6-8 M characters of text need about 256 MiB in the parser (20 M: ~370 MB).
    path = corpus.long_text(tmp_path, 10_000_000)
    limits = Limits(max_memory_bytes=256 << 20, max_text_chars=20_000_000)
    with NativeTikaExtractor() as extractor:
        error = _fails(extractor, path, limits)
        assert error.kind is FailureKind.MEMORY
        assert error.reason == "the parser ran out of its 256 MiB memory limit"
        assert "tortura" in extractor.extract(corpus.docx(tmp_path), limits).text


def test_a_hung_job_does_not_hold_up_the_other_worker(tmp_path: Path) -> None:
    with NativeTikaExtractor(workers=2, child_module=HOSTILE) as extractor:
        extractor.warm_up()
        hung: list[ExtractionError] = []

        def hang() -> None:
            try:
                extractor.extract(_marker(tmp_path, b"HANG"), Limits(timeout_s=120))
            except ExtractionError as exc:
                hung.append(exc)

        thread = threading.Thread(target=hang)
        thread.start()
        try:
            for _ in range(3):  # served by the other process while the first one hangs
                _works(extractor, tmp_path)
            assert thread.is_alive()
        finally:
            pids = extractor.pids()
            for pid in pids:  # end the hang from outside, as an OOM killer would
                os.kill(pid, signal.SIGKILL)
            thread.join()
            for pid in pids:
                _wait_until_dead(pid)
        assert [error.reason for error in hung] == [
            "parser crashed: killed by SIGKILL (possibly out of memory)"
        ]
        _works(extractor, tmp_path)


def _in_thread(pool: NativeTikaExtractor, path: Path, limits: Limits) -> list[object]:
    """Extract `path` on a new thread; the list gets the extraction or the error."""
    out: list[object] = []

    def work() -> None:
        try:
            out.append(pool.extract(path, limits))
        except ExtractionError as exc:
            out.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    out.append(thread)
    return out


def test_the_next_request_waits_in_the_pipe_of_a_busy_process(
    pool: NativeTikaExtractor, tmp_path: Path
) -> None:
    pool.warm_up()
    [pid] = pool.pids()
    slow = _in_thread(pool, _marker(tmp_path, b"SLOW"), Limits())
    time.sleep(0.3)  # the slow request is being parsed
    quick = _in_thread(pool, corpus.docx(tmp_path), Limits())
    # Written while the process still parses the first: it starts the second the moment it
    # answers, with no round trip through this process in between.
    deadline = time.monotonic() + 5
    while pool._children[0].jobs < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool._children[0].jobs == 2
    assert pool.pids() == [pid]
    for out in (slow, quick):
        cast(threading.Thread, out[0]).join()
    assert cast(Extraction, slow[1]).text == "slow answer"
    assert "tortura" in cast(Extraction, quick[1]).text
    assert pool.pids() == [pid]


def test_a_request_queued_behind_a_killed_parse_goes_to_a_fresh_process(
    pool: NativeTikaExtractor, tmp_path: Path
) -> None:
    pool.warm_up()
    [pid] = pool.pids()
    hung = _in_thread(pool, _marker(tmp_path, b"HANG"), Limits(timeout_s=2))
    time.sleep(0.3)
    queued = _in_thread(pool, corpus.docx(tmp_path), Limits())
    for out in (hung, queued):
        cast(threading.Thread, out[0]).join()
    error = cast(ExtractionError, hung[1])
    assert error.kind is FailureKind.TIMEOUT
    # Not blamed on the document that waited: it was parsed again, by the process that
    # replaced the killed one.
    assert "tortura" in cast(Extraction, queued[1]).text
    assert pool.pids() != [pid] and len(pool.pids()) == 1


def test_processes_are_recycled(tmp_path: Path) -> None:
    with NativeTikaExtractor(workers=1, recycle_after=2) as extractor:
        seen = []
        for _ in range(4):
            _works(extractor, tmp_path)
            seen.append(tuple(extractor.pids()))
    assert seen[0] != seen[2]


def _sandboxed(pool: NativeTikaExtractor) -> None:
    pool.warm_up()
    if not pool.sandboxed():
        unavailable("userns", "the kernel refuses user, mount or network namespaces here")


def test_the_parser_has_no_network(pool: NativeTikaExtractor, tmp_path: Path) -> None:
    _sandboxed(pool)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # reachable from here
        answer = pool.extract(_marker(tmp_path, b"NET%d" % port), Limits()).text
    assert answer.startswith("blocked: ")


def test_the_parser_cannot_start_processes_or_programs(
    pool: NativeTikaExtractor, tmp_path: Path
) -> None:
    if platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip(f"the no-spawn filter knows no system call numbers for {platform.machine()}")
    pool.warm_up()
    assert pool.spawn_blocked()
    answer = pool.extract(_marker(tmp_path, b"SPAWN"), Limits()).text.splitlines()
    assert answer == [
        "fork: refused (Operation not permitted)",
        "program: refused (Operation not permitted)",
        "thread: ran",
    ]
    _works(pool, tmp_path)  # Tika still parses, with its threads


def test_fields_kept_in_the_clear_take_only_their_shape(
    pool: NativeTikaExtractor, tmp_path: Path
) -> None:
    # Spanish alone: the default document is half Spanish, half English, and either answer
    # would be right for it.
    honest = pool.extract(corpus.docx(tmp_path, paragraphs=(corpus.SPANISH,)), Limits())
    assert honest.language == "es"
    assert honest.mime_type == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    # Last: the lying child keeps lying about the language for the rest of its life.
    lied = pool.extract(_marker(tmp_path, b"LIE"), Limits())
    assert (lied.mime_type, lied.language, lied.text) == ("application/octet-stream", None, "texto")


def test_sandbox_can_be_turned_off(tmp_path: Path) -> None:
    with NativeTikaExtractor(child_module=HOSTILE, sandbox=False) as extractor:
        extractor.warm_up()
        assert not extractor.sandboxed()
        _works(extractor, tmp_path)


def test_the_parsers_tmp_is_private(pool: NativeTikaExtractor, tmp_path: Path) -> None:
    _sandboxed(pool)
    name = secrets.token_hex(8)
    listing = pool.extract(_marker(tmp_path, b"TMP" + name.encode()), Limits()).text.split()
    # The parser sees only its own tmpfs, plus the code directories bound back into it when the
    # checkout or virtualenv itself lives under /tmp (as a CI clone may).
    code_roots = {
        Path(entry).resolve().parts[2]
        for entry in (sys.prefix, os.getcwd(), *sys.path)
        if entry and str(Path(entry).resolve()).startswith("/tmp/")
    }
    assert sorted(listing) == sorted([f"apache-tika-{name}.docx", *code_roots])
    assert not (Path("/tmp") / f"apache-tika-{name}.docx").exists()
    _works(pool, tmp_path)  # and still reads files under the host's /tmp (pytest's tmp_path)


_ORPHAN_SCRIPT = """
import os, sys, threading
from pathlib import Path
from ingest import Limits
from ingest.adapters import NativeTikaExtractor
pool = NativeTikaExtractor(child_module=sys.argv[2])
pool.warm_up()
print(pool.pids()[0], flush=True)
# The parent dies mid-job, without closing anything, as a SIGKILLed worker would.
threading.Timer(0.5, lambda: os._exit(0)).start()
pool.extract(Path(sys.argv[1]), Limits(timeout_s=1))
"""


def test_a_parser_outliving_its_parent_ends_itself(tmp_path: Path) -> None:
    marker = _marker(tmp_path, b"HANG")
    parent = subprocess.run(
        [sys.executable, "-c", _ORPHAN_SCRIPT, str(marker), HOSTILE],
        capture_output=True,
        check=True,
        timeout=60,
    )
    orphan = int(parent.stdout.split()[0])
    # The orphan's alarm fires 1 s + grace after its job began; wait for it, bounded.
    for _ in range(300):
        try:
            status = Path(f"/proc/{orphan}/status").read_text()
        except FileNotFoundError:
            return  # ended and reaped
        if "\nState:\tZ" in status:
            return  # ended; whoever adopted it has not reaped it yet
        time.sleep(0.1)
    os.kill(orphan, signal.SIGKILL)
    raise AssertionError("the orphaned parser process kept running")

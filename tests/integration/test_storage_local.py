"""The local directory adapter's crash safety against a writer in another process: killed, its
half-written temporary file goes at the next open; alive, it is left alone."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

from vault.storage import LocalObjectStore

_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from vault.storage import LocalObjectStore
    store = LocalObjectStore(Path(sys.argv[1]))
    out = store.writer("items/crashed").__enter__()
    out.write(b"half of a testimony")
    print("writing", flush=True)
    time.sleep(60)
    """
)


def _temp_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".tmp").iterdir() if p.name != ".lock")


@contextlib.contextmanager
def _writer_process(root: Path) -> Iterator[subprocess.Popen[str]]:
    """A process that has written half an object into `root` and hangs; killed on exit."""
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "writing\n"
            yield proc
        finally:
            proc.kill()
            proc.wait()


def test_killed_writer_leaves_only_a_temp_file_that_the_next_open_removes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with _writer_process(root) as proc:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(_temp_files(root)) == 1
    store = LocalObjectStore(root)
    assert _temp_files(root) == []
    assert not store.exists("items/crashed")
    assert list(store.names()) == []


def test_open_leaves_a_live_writer_of_another_process_alone(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with _writer_process(root):
        LocalObjectStore(root)
        assert len(_temp_files(root)) == 1
    LocalObjectStore(root)
    assert _temp_files(root) == []

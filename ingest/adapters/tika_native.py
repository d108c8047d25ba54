"""Apache Tika in-process (iscc-tika), run in a pool of warm parser processes with limits.

iscc-tika has no timeout and no memory limit, and a parser bug can crash the process it runs in.
Each job therefore runs in a separate process (`ingest.adapters._tika_child`) that this module
starts with `subprocess`, limits with `setrlimit`, and kills when the wall-clock limit passes; a
crashed, killed or retired process is replaced on the next job. The server or worker that calls
`extract` never loads the parser.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ingest._tika import memory_error, shaped_language, shaped_mime, text_limit
from ingest.containers import check_container
from ingest.ports import Extraction, ExtractionError, FailureKind, Limits

__all__ = ["NativeTikaExtractor"]

CHILD_MODULE = "ingest.adapters._tika_child"
# Variables the parser process inherits; secrets such as TVAULT_PASSPHRASE never reach it.
_CHILD_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "HOME", "PYTHONHASHSEED")
# Tika writes embedded documents to java.io.tmpdir, which the native image fixes at /tmp.
_TIKA_TEMP_DIR = Path("/tmp")  # noqa: S108 - where Tika writes, not where we write
_TIKA_TEMP_PREFIX = "apache-tika-"


class _Child:
    """One parser process and the pipes to it."""

    def __init__(
        self, module: str, memory_bytes: int, start_timeout_s: float, *, sandbox: bool
    ) -> None:
        self.memory_bytes = memory_bytes
        self.jobs = 0
        env = {key: os.environ[key] for key in _CHILD_ENV if key in os.environ}
        # The child imports the same `ingest` as this process, installed or not.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
        # The child's stderr: in memory, never a log or a file (a JVM fatal-error dump can hold
        # pieces of the document), read here only to tell an out-of-memory death from a crash.
        self._stderr = os.memfd_create("tika-child-stderr")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, str(memory_bytes), "sandbox" if sandbox else "plain"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            close_fds=True,
            start_new_session=True,  # its own process group, so a kill reaches any helper
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._out, False)
        self._buffer = bytearray()
        try:
            line = self._read_line(time.monotonic() + start_timeout_s)
        except ExtractionError:
            self.kill()
            raise
        words = line.split()
        if words[:1] != [b"ready"] or not set(words[1:]) <= {b"sandboxed", b"nospawn"}:
            self.kill()
            raise ExtractionError(FailureKind.CRASHED, "parser process failed to start")
        self.sandboxed = b"sandboxed" in words
        self.spawn_blocked = b"nospawn" in words

    @property
    def alive(self) -> bool:
        """True while the process runs and has said nothing unasked (EOF counts as saying)."""
        if self.proc.poll() is not None or self._buffer:
            return False
        with selectors.DefaultSelector() as selector:
            selector.register(self._out, selectors.EVENT_READ)
            return not selector.select(0)

    def kill(self) -> None:
        """Kill the process group and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        if self._stderr >= 0:
            os.close(self._stderr)
            self._stderr = -1

    def _died(self) -> ExtractionError:
        """The error for a process that closed its output."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # closed its output but lingers: end it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        if self._stderr >= 0 and b"OutOfMemoryError" in os.pread(self._stderr, 1 << 16, 0):
            return memory_error(self.memory_bytes)
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (possibly out of memory)" if -code == signal.SIGKILL else ""
            return ExtractionError(FailureKind.CRASHED, f"parser crashed: killed by {name}{hint}")
        return ExtractionError(FailureKind.CRASHED, f"parser crashed: exit status {code}")

    def _fill(self, deadline: float) -> None:
        """Read what the child has written, waiting at most until `deadline`."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        with selectors.DefaultSelector() as selector:
            selector.register(self._out, selectors.EVENT_READ)
            if not selector.select(remaining):
                raise TimeoutError
        chunk = os.read(self._out, 1 << 20)
        if not chunk:
            raise self._died()
        self._buffer += chunk

    def _read_line(self, deadline: float) -> bytes:
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > 1 << 20:
                raise ExtractionError(FailureKind.CRASHED, "parser crashed: it broke the protocol")
            self._fill(deadline)
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    def _read_exact(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._fill(deadline)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def run(self, path: Path, limits: Limits) -> tuple[dict[str, object], str]:
        """Send one job and return (header, text). Raises `ExtractionError` or `TimeoutError`."""
        deadline = time.monotonic() + limits.timeout_s
        self.jobs += 1
        request = {
            "path": str(path),
            "max_text_chars": limits.max_text_chars,
            "timeout_s": limits.timeout_s,
        }
        try:
            self._in.write(json.dumps(request).encode() + b"\n")
            self._in.flush()
        except (BrokenPipeError, ValueError):
            raise self._died() from None
        try:
            header = json.loads(self._read_line(deadline))
            if not header.get("ok"):
                FailureKind(str(header["kind"]))  # refuse a kind we do not know
                return header, ""
            size = int(header["text_bytes"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ExtractionError(
                FailureKind.CRASHED, "parser crashed: it broke the protocol"
            ) from None
        # UTF-8 needs at most 4 bytes a character; more means a broken or hostile child.
        if size > 4 * (limits.max_text_chars + 1):
            raise text_limit(limits.max_text_chars)
        return header, self._read_exact(size, deadline).decode("utf-8")


class NativeTikaExtractor:
    """Extract with Apache Tika compiled to native code, in `workers` parser processes.

    Processes start on first use (or `warm_up()`) and are reused; each job checks zip containers
    first (`ingest.containers`), then runs in a process limited to `Limits.max_memory_bytes`
    and killed after `Limits.timeout_s`, without network and with a private /tmp where the
    kernel allows (`sandbox`; see `sandboxed()`). A process is replaced after `recycle_after`
    jobs: the JVM heap grows with the largest document seen and never shrinks. `child_module`
    is the module the processes run; tests pass one that can crash or hang on demand.
    """

    def __init__(
        self,
        workers: int = 1,
        *,
        child_module: str = CHILD_MODULE,
        start_timeout_s: float = 60.0,
        recycle_after: int = 1000,
        sandbox: bool = True,
    ) -> None:
        if workers < 1 or recycle_after < 1:
            raise ValueError("workers and recycle_after must be at least 1")
        self._recycle_after = recycle_after
        self._sandbox = sandbox
        self._module = child_module
        self._start_timeout_s = start_timeout_s
        self._idle: queue.LifoQueue[_Child | None] = queue.LifoQueue()
        for _ in range(workers):
            self._idle.put(None)
        self._workers = workers
        self._lock = threading.Lock()
        self._live: set[_Child] = set()
        self._closed = False

    def __enter__(self) -> NativeTikaExtractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def warm_up(self, limits: Limits | None = None) -> None:
        """Start every parser process now rather than on first use."""
        limits = limits or Limits()
        taken = [self._take(limits.max_memory_bytes) for _ in range(self._workers)]
        for child in taken:
            self._give(child)

    def sandboxed(self) -> bool:
        """Return True when every live parser process runs without network and with a private
        /tmp (see `ingest.adapters._sandbox`); False when none runs, or one lacks either."""
        with self._lock:
            live = [child for child in self._live if child.proc.poll() is None]
        return bool(live) and all(child.sandboxed for child in live)

    def spawn_blocked(self) -> bool:
        """Return True when every live parser process is barred from starting processes and
        programs (`ingest.adapters._nospawn`); False when none runs, or one is not."""
        with self._lock:
            live = [child for child in self._live if child.proc.poll() is None]
        return bool(live) and all(child.spawn_blocked for child in live)

    def pids(self) -> list[int]:
        """Return the process ids of the live parser processes."""
        with self._lock:
            return [child.proc.pid for child in self._live if child.proc.poll() is None]

    def extract(self, path: Path, limits: Limits) -> Extraction:
        """Extract `path` within `limits`. Raises `ExtractionError` on any failure.

        `path` must be a plaintext regular file readable by this process; the parser process
        opens it by name (see docs/ingest.md for how the vault provides it). A missing file
        raises `FileNotFoundError`: that is the caller's fault, not the document's.
        """
        if path.stat().st_size == 0:
            raise ExtractionError(FailureKind.EMPTY, "empty file")
        check_container(path, limits)
        child = self._take(limits.max_memory_bytes)
        started = time.time()
        try:
            header, text = child.run(path.resolve(), limits)
        except TimeoutError:
            self._discard(child, since=started)
            raise ExtractionError(
                FailureKind.TIMEOUT, f"timed out after {limits.timeout_s:g} s"
            ) from None
        except BaseException:
            # A crash, or a half-read answer: the process cannot be trusted with the next job.
            self._discard(child, since=started)
            raise
        if header.get("retire") or child.jobs >= self._recycle_after:
            self._discard(child, since=started)
        else:
            self._give(child)
        if not header.get("ok"):
            raise ExtractionError(FailureKind(str(header["kind"])), str(header["reason"]))
        if len(text) > limits.max_text_chars:
            raise text_limit(limits.max_text_chars)
        metadata = header.get("metadata")
        return Extraction(
            text=text,
            # Both come from the process that parsed a hostile file: shapes only.
            mime_type=shaped_mime(header.get("mime_type")),
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
            # Detected in the parser process (`_tika_child._language`), off this process's GIL.
            language=shaped_language(header.get("language")),
        )

    def close(self) -> None:
        """Stop every parser process. Idempotent; jobs still running finish, then stop."""
        with self._lock:
            self._closed = True
            children = list(self._live)
        for child in children:
            with contextlib.suppress(OSError):
                child._in.close()
        while True:
            try:
                child_or_none = self._idle.get_nowait()
            except queue.Empty:
                break
            if child_or_none is not None:
                self._forget(child_or_none)

    # -- pool ------------------------------------------------------------------------------

    def _take(self, memory_bytes: int) -> _Child:
        if self._closed:
            raise RuntimeError("extractor is closed")
        child = self._idle.get()
        if child is not None and (not child.alive or child.memory_bytes != memory_bytes):
            self._forget(child)
            child = None
        if child is None:
            try:
                child = _Child(
                    self._module, memory_bytes, self._start_timeout_s, sandbox=self._sandbox
                )
            except BaseException:
                self._idle.put(None)
                raise
            with self._lock:
                self._live.add(child)
        return child

    def _give(self, child: _Child) -> None:
        if self._closed:
            self._forget(child)
            return
        self._idle.put(child)

    def _forget(self, child: _Child) -> None:
        child.kill()
        with self._lock:
            self._live.discard(child)

    def _discard(self, child: _Child, *, since: float) -> None:
        """Kill `child`, free its slot, and remove temp files it may have left behind."""
        self._forget(child)
        if not child.sandboxed:  # a sandboxed child's /tmp vanished with it
            self._sweep_tika_temp(since)
        self._idle.put(None)

    def _sweep_tika_temp(self, since: float) -> None:
        """Delete Tika spool files a killed child left in /tmp, sparing those in use.

        They hold embedded documents in the clear (mode 0600); Tika deletes them itself unless
        its process dies mid-job.
        """
        in_use: set[str] = set()
        for pid in self.pids():
            try:
                fd_dir = Path(f"/proc/{pid}/fd")
                in_use.update(os.readlink(fd) for fd in fd_dir.iterdir())
            except OSError:
                continue
        uid = os.getuid()
        try:
            candidates = list(_TIKA_TEMP_DIR.glob(_TIKA_TEMP_PREFIX + "*"))
        except OSError:
            return
        for candidate in candidates:
            try:
                info = candidate.lstat()
                if (
                    info.st_uid == uid
                    and info.st_mtime >= since - 1
                    and str(candidate) not in in_use
                ):
                    candidate.unlink()
            except OSError:
                continue

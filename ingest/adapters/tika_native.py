"""Apache Tika in-process (iscc-tika), run in a pool of warm parser processes with limits.

iscc-tika has no timeout and no memory limit, and a parser bug can crash the process it runs in.
Each job therefore runs in a separate process (`ingest.adapters._tika_child`) that this module
starts with `subprocess`, limits with `setrlimit`, and kills when the wall-clock limit passes; a
crashed, killed or retired process is replaced on the next job. The server or worker that calls
`extract` never loads the parser.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ingest import lifeline
from ingest._tika import memory_error, shaped_language, shaped_mime, text_limit
from ingest.containers import check_container
from ingest.ocr import OcrOptions, report_from_header
from ingest.ports import Extraction, ExtractionError, FailureKind, Limits

__all__ = ["NativeTikaExtractor"]

CHILD_MODULE = "ingest.adapters._tika_child"
# Variables the parser process inherits; secrets such as TVAULT_PASSPHRASE never reach it.
_CHILD_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "HOME", "PYTHONHASHSEED")
# Tika writes embedded documents to java.io.tmpdir, which the native image fixes at /tmp.
_TIKA_TEMP_DIR = Path("/tmp")  # noqa: S108 - where Tika writes, not where we write
_TIKA_TEMP_PREFIX = "apache-tika-"


# What a parser process that ran out of its limit leaves on stderr: the Java VM's error, or the
# line Rust's allocator prints before it aborts the process (measured: a 10 M-character text
# under a 256 MiB limit ends either way, far from the limit's 90 % mark).
_OUT_OF_MEMORY_SIGNS = (b"OutOfMemoryError", b"memory allocation of ")


class _Child:
    """One parser process and the pipes to it."""

    def __init__(
        self,
        module: str,
        memory_bytes: int,
        start_timeout_s: float,
        *,
        sandbox: bool,
        ocr: OcrOptions | None = None,
    ) -> None:
        self.memory_bytes = memory_bytes
        self.jobs = 0
        env = {key: os.environ[key] for key in _CHILD_ENV if key in os.environ}
        env[lifeline.PARENT_ENV] = str(os.getpid())  # it dies with this process (SIGKILL too)
        # The child imports the same `ingest` as this process, installed or not.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
        # The child's stderr: in memory, never a log or a file (a JVM fatal-error dump can hold
        # pieces of the document), read here only to tell an out-of-memory death from a crash.
        self._stderr = os.memfd_create("tika-child-stderr")
        argv = [sys.executable, "-m", module, str(memory_bytes), "sandbox" if sandbox else "plain"]
        if ocr is not None:
            argv.append(f"ocr={ocr.argument()}")
        # From a thread of its own: the kernel counts the thread that started it as its parent.
        self.proc = lifeline.popen(
            argv,
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
        # One selector for the life of the process: only one thread reads it at a time (the
        # oldest request's, see `receive`), and making one per read cost four system calls.
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._out, selectors.EVENT_READ)
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
        # Guarded by the pool's lock: requests taken and not yet given back, and whether the
        # process takes no more (it retires, failed, or served its `recycle_after` jobs).
        self.inflight = 0
        self.retired = False
        # Requests written and not yet answered, oldest first; only the oldest's taker reads.
        self._turn = threading.Condition()
        self._order: collections.deque[object] = collections.deque()
        self._void: set[object] = set()  # written behind a request the process did not survive
        self._ended = False  # a request was not survived: the process takes no more

    @property
    def alive(self) -> bool:
        """True while the process runs and has said nothing unasked (EOF counts as saying)."""
        if self.proc.poll() is not None or self._buffer:
            return False
        return not self._selector.select(0)

    def kill(self) -> None:
        """Kill the process group and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._selector.close()
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
        if self._stderr >= 0 and any(
            sign in os.pread(self._stderr, 1 << 16, 0) for sign in _OUT_OF_MEMORY_SIGNS
        ):
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
        if not self._selector.select(remaining):
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

    @property
    def ended(self) -> bool:
        """True once the process failed a job, or said it retires: it takes no more requests."""
        return self._ended

    def send(self, ticket: object, path: Path, limits: Limits, language: str | None = None) -> None:
        """Write the request for `path`; `ticket` then waits its turn in `receive`.

        Raises `_Replaced` if the process can take no more requests."""
        request = {
            "path": str(path),
            "max_text_chars": limits.max_text_chars,
            "timeout_s": limits.timeout_s,
            "max_pages": limits.max_pages,
            "max_pixels": limits.max_pixels,
            "language": language,
        }
        line = json.dumps(request).encode() + b"\n"
        with self._turn:
            if self._ended:
                # Taken before a job the process did not survive, written after: the requests
                # written before were voided with it; this one must not wait for its answer.
                raise _Replaced
            try:
                self._in.write(line)
                self._in.flush()
            except (BrokenPipeError, ValueError):
                raise _Replaced from None
            self.jobs += 1
            self._order.append(ticket)

    def receive(self, ticket: object, limits: Limits) -> tuple[dict[str, object], str]:
        """Wait until `ticket`'s request is the oldest unanswered, then read its answer: (header,
        text). The time limit runs from then, when the process is known to be on it.

        Raises `_Replaced` if the process did not survive a request written before this one,
        `ExtractionError` or `TimeoutError` for this request; in both of those cases, and when
        the process says it retires, the requests written after this one are voided.
        """
        with self._turn:
            while ticket not in self._void and self._order[0] is not ticket:
                self._turn.wait()
            if ticket in self._void:
                self._order.remove(ticket)
                self._void.discard(ticket)
                raise _Replaced
        survives = False
        try:
            header, text = self._answer(limits)
            survives = not header.get("retire")
            return header, text
        finally:
            with self._turn:
                self._order.popleft()
                if not survives:
                    self._ended = True
                    self._void.update(self._order)
                self._turn.notify_all()

    def _answer(self, limits: Limits) -> tuple[dict[str, object], str]:
        deadline = time.monotonic() + limits.timeout_s
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


class _Replaced(Exception):
    """The request must go to another parser process: this one stopped before it got to it."""


# Requests a parser process holds at once: the one it parses and the next, already in its
# pipe, so it starts the next the moment it answers instead of waiting for a thread of this
# process to wake up, take it and write (measured ~1 ms a document, a sixth of a parse).
DEPTH = 2
# A document whose process was replaced before it got to it goes to a fresh one; if that
# keeps happening (other documents keep killing processes), it fails for another attempt.
_RESUBMIT = 3


class NativeTikaExtractor:
    """Extract with Apache Tika compiled to native code, in `workers` parser processes.

    Processes start on first use (or `warm_up()`) and are reused; each job checks zip containers
    first (`ingest.containers`), then runs in a process limited to `Limits.max_memory_bytes`
    and killed after `Limits.timeout_s`, without network and with a private /tmp where the
    kernel allows (`sandbox`; see `sandboxed()`). A busy process is handed the next request
    before it has answered (`DEPTH`), so it never waits for the calling threads between two
    jobs; a request waiting behind a job the process does not survive goes to a fresh process.
    A process is replaced after `recycle_after` jobs: the JVM heap grows with the largest
    document seen and never shrinks. `child_module` is the module the processes run; tests pass
    one that can crash or hang on demand. `ocr` turns on OCR of images and scanned PDF pages
    in the same processes (`ingest.ocr`); None leaves them without text.
    """

    def __init__(
        self,
        workers: int = 1,
        *,
        child_module: str = CHILD_MODULE,
        start_timeout_s: float = 60.0,
        recycle_after: int = 1000,
        sandbox: bool = True,
        ocr: OcrOptions | None = None,
    ) -> None:
        if workers < 1 or recycle_after < 1:
            raise ValueError("workers and recycle_after must be at least 1")
        self._recycle_after = recycle_after
        self._sandbox = sandbox
        self._ocr = ocr
        self._module = child_module
        self._start_timeout_s = start_timeout_s
        self._workers = workers
        self._cond = threading.Condition()
        self._children: list[_Child] = []
        self._starting = 0
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

    def _running(self) -> list[_Child]:
        with self._cond:
            return [child for child in self._children if child.proc.poll() is None]

    def sandboxed(self) -> bool:
        """Return True when every live parser process runs without network and with a private
        /tmp (see `ingest.adapters._sandbox`); False when none runs, or one lacks either."""
        live = self._running()
        return bool(live) and all(child.sandboxed for child in live)

    def spawn_blocked(self) -> bool:
        """Return True when every live parser process is barred from starting processes and
        programs (`ingest.adapters._nospawn`); False when none runs, or one is not."""
        live = self._running()
        return bool(live) and all(child.spawn_blocked for child in live)

    def pids(self) -> list[int]:
        """Return the process ids of the live parser processes."""
        return [child.proc.pid for child in self._running()]

    def extract(self, path: Path, limits: Limits, *, language: str | None = None) -> Extraction:
        """Extract `path` within `limits`. Raises `ExtractionError` on any failure.

        With `ocr`, images and PDF pages without text are recognised too, in `language` (the
        item's, ISO 639-1) when a model reads it (docs/ingest.md, "OCR").

        `path` must be a plaintext regular file readable by this process; the parser process
        opens it by name (see docs/ingest.md for how the vault provides it). A missing file
        raises `FileNotFoundError`: that is the caller's fault, not the document's.
        """
        if path.stat().st_size == 0:
            raise ExtractionError(FailureKind.EMPTY, "empty file")
        check_container(path, limits)
        header, text = self._parse(path.resolve(), limits, language)
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
            ocr=report_from_header(header.get("ocr")),
        )

    def _parse(
        self, path: Path, limits: Limits, language: str | None
    ) -> tuple[dict[str, object], str]:
        """Have a parser process parse `path`: (header, text). Raises `ExtractionError`."""
        for _ in range(_RESUBMIT):
            child = self._take(limits.max_memory_bytes)
            ticket = object()
            started = time.time()
            try:
                child.send(ticket, path, limits, shaped_language(language))
                header, text = child.receive(ticket, limits)
            except _Replaced:
                self._give(child)
                continue
            except TimeoutError:
                self._discard(child, since=started)
                raise ExtractionError(
                    FailureKind.TIMEOUT, f"timed out after {limits.timeout_s:g} s"
                ) from None
            except BaseException:
                # A crash, or a half-read answer: the process cannot be trusted with the next job.
                self._discard(child, since=started)
                raise
            if header.get("retire"):
                self._discard(child, since=started)
            else:
                self._give(child)
            return header, text
        raise ExtractionError(
            FailureKind.CRASHED, "parser crashed: its process was replaced while this file waited"
        )

    def check(self, timeout_s: float) -> None:
        """Raise `ExtractionError` (`UNAVAILABLE`) once closed; an open extractor starts its
        parser processes on demand, so it can always take work (`timeout_s` is not needed)."""
        with self._cond:
            if self._closed:
                raise ExtractionError(FailureKind.UNAVAILABLE, "the extractor is closed")

    def close(self) -> None:
        """Stop every parser process. Idempotent; jobs still running finish, then stop."""
        with self._cond:
            self._closed = True
            idle = [child for child in self._children if child.inflight == 0]
            busy = [child for child in self._children if child.inflight > 0]
            for child in idle:
                self._children.remove(child)
            for child in busy:
                child.retired = True  # killed by the `_give` that ends its last job
            self._cond.notify_all()
        for child in busy:
            with contextlib.suppress(OSError):
                child._in.close()
        for child in idle:
            child.kill()

    # -- pool ------------------------------------------------------------------------------

    def _take(self, memory_bytes: int) -> _Child:
        """Return a parser process for one more request (`inflight` counted): an idle one, else
        a new one while there are fewer than `workers`, else one whose pipe holds fewer than
        `DEPTH` requests; wait when none is."""
        dead: list[_Child] = []
        chosen: _Child | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("extractor is closed")
                for child in list(self._children):
                    # Only an idle process can be judged alive: with a request in its pipe it
                    # may well have said something since.
                    if child.inflight == 0 and (
                        child.retired or child.memory_bytes != memory_bytes or not child.alive
                    ):
                        self._children.remove(child)
                        dead.append(child)
                usable = [
                    child
                    for child in self._children
                    if not child.retired
                    and not child.ended
                    and child.memory_bytes == memory_bytes
                    and child.jobs + child.inflight < self._recycle_after
                ]
                idle = [child for child in usable if child.inflight == 0]
                if idle:
                    chosen = idle[0]
                    break
                if len(self._children) + self._starting < self._workers:
                    self._starting += 1
                    break
                queued = [child for child in usable if child.inflight < DEPTH]
                if queued:
                    chosen = min(queued, key=lambda child: child.inflight)
                    break
                self._cond.wait()
            if chosen is not None:
                chosen.inflight += 1
        for child in dead:
            child.kill()
        if chosen is not None:
            return chosen
        try:
            child = _Child(
                self._module,
                memory_bytes,
                self._start_timeout_s,
                sandbox=self._sandbox,
                ocr=self._ocr,
            )
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._starting -= 1
            child.inflight = 1
            self._children.append(child)
            if self._closed:
                child.retired = True
        return child

    def _give(self, child: _Child) -> None:
        """End one request of `child`; a retired process is stopped after its last one."""
        with self._cond:
            child.inflight -= 1
            if child.jobs >= self._recycle_after:
                child.retired = True
            finished = child.retired and child.inflight == 0
            if finished and child in self._children:
                self._children.remove(child)
            self._cond.notify_all()
        if finished:
            child.kill()

    def _discard(self, child: _Child, *, since: float) -> None:
        """Kill `child` now, end its request, and remove temp files it may have left behind."""
        with self._cond:
            child.retired = True
        child.kill()
        self._give(child)
        if not child.sandboxed:  # a sandboxed child's /tmp vanished with it
            self._sweep_tika_temp(since)

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

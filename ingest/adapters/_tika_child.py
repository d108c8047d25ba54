"""The parser process: runs iscc-tika on one file at a time, under resource limits.

Started by `NativeTikaExtractor` as `python -m ingest.adapters._tika_child MEMORY_BYTES MODE
[ocr=ENGINE:LANGUAGES]`; with the last, images and scanned PDF pages are also recognised
(`ingest.ocr`, through the runner `ingest.adapters._ocr_runner`).
Protocol on its standard input and output (nothing else is written to them):

- parent -> child, one line per job: `{"path": "...", "max_text_chars": N, "timeout_s": T}`,
  and for OCR `"max_pages"`, `"max_pixels"`, `"language"` (the item's, or null)
- child -> parent: a JSON header line, then, on success, `text_bytes` bytes of UTF-8 text:
  `{"ok": true, "mime_type": ..., "metadata": {...}, "language": "es" | null, "text_bytes": N}`
  (with `"ocr": {...}`, `ingest.ocr.report_to_header`, when OCR read some of the text)
  or
  `{"ok": false, "kind": ..., "reason": ..., "retire": bool}` (`retire`: the process exits next).

The text goes back over the pipe and is never written to disk: the vault seals it.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ingest import lifeline
from ingest._tika import classify_failure, interpret, memory_error
from ingest.adapters import _nospawn, _sandbox
from ingest.ports import ExtractionError, FailureKind, OcrReport

if TYPE_CHECKING:
    from ingest.ocr import Recogniser

__all__ = ["Handler", "Result", "extract", "main", "serve", "visible"]

visible = _sandbox.visible

# A job's outcome: (mime_type, metadata, text).
Result = tuple[str, dict[str, str], str]
Handler = Callable[[str, int], Result]

_diagnostics_fd = -1
_memory_limit = 0
_recogniser: Recogniser | None = None  # set when this process does OCR
# Seconds past a job's deadline after which the process ends itself (SIGALRM's default action):
# the parent kills it at the deadline, unless the parent itself died meanwhile.
_ALARM_GRACE_S = 5
# The Java side failed outside Tika's own exceptions (iscc-tika's JNI error types). Measured:
# an OutOfMemoryError under RLIMIT_DATA often surfaces only as one of these, with nothing on
# stderr, and the native VM is not reliable afterwards.
_JNI_FAILURES = ("JniError", "JniEnvCall")
# pyo3 panics with this when a Python object it builds cannot be made; measured: building the
# string of a 10 M-character text under a 256 MiB limit, with the process below 90 % of it.
_PYO3_ALLOCATION_PANIC = "Python API call failed"


def _limit_self(memory_bytes: int) -> None:
    """Apply the limits to this process before any parser code is loaded.

    RLIMIT_DATA, not RLIMIT_AS: the GraalVM native image reserves ~32 GB of address space for its
    heap at start (measured: VmSize 33.8 GB, RSS 85 MB), so any useful RLIMIT_AS stops it from
    starting, while RLIMIT_DATA bounds the memory it actually commits. RLIMIT_CORE 0: a core dump
    would write the document's text to disk.
    """
    global _memory_limit
    _memory_limit = memory_bytes
    resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Tika spools embedded documents (an e-mail's attachment) to /tmp; keep them private.
    os.umask(0o077)


def _isolate_stdio() -> tuple[BinaryIO, BinaryIO]:
    """Keep the protocol on private descriptors; send fd 1 to fd 2.

    Native code may print to stdout, which would corrupt the protocol. The parent gives fd 2 as
    an in-memory file (memfd): the JVM prints `OutOfMemoryError` and its fatal-error dumps there,
    off disk, where this process and, after a crash, the parent can read them.
    """
    global _diagnostics_fd
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    _diagnostics_fd = 2
    return proto_in, proto_out


def _diagnostics() -> str:
    """Return and clear what native code printed during the last job (at most 64 KiB)."""
    if _diagnostics_fd < 0:
        return ""
    try:
        size = os.lseek(_diagnostics_fd, 0, os.SEEK_END)
        data = os.pread(_diagnostics_fd, min(size, 1 << 16), max(0, size - (1 << 16)))
        os.ftruncate(_diagnostics_fd, 0)
        os.lseek(_diagnostics_fd, 0, os.SEEK_SET)
    except OSError:  # not a regular file (a terminal, when run by hand)
        return ""
    return data.decode("utf-8", "replace")


def _near_memory_limit() -> bool:
    """True when this process's data segment is within 10 % of its limit."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024 >= 0.9 * _memory_limit
    return False


_extractors: dict[int, Any] = {}


def extract(path: str, max_text_chars: int) -> Result:
    """Extract `path` with iscc-tika. Raises `ExtractionError` on any failure."""
    import iscc_tika

    extractor = _extractors.get(max_text_chars)
    if extractor is None:
        # The setters return a new Extractor and leave the receiver unchanged. One character
        # more than the limit: a text that long was cut by Tika, and `check_text` refuses it.
        extractor = iscc_tika.Extractor().set_extract_string_max_length(max_text_chars + 1)
        _extractors.clear()
        _extractors[max_text_chars] = extractor
    try:
        text, meta = extractor.extract_file_to_string(visible(path))
    except Exception as exc:
        # iscc-tika raises TypeError("ParseError(...)") or TypeError("JniError(...)").
        message = f"{exc}\n{_diagnostics()}"
        if "OutOfMemoryError" in message or (
            any(name in message for name in _JNI_FAILURES) and _near_memory_limit()
        ):
            raise memory_error(_memory_limit) from None
        if any(name in message for name in _JNI_FAILURES):
            raise ExtractionError(
                FailureKind.CRASHED, "parser crashed: error in the Java runtime"
            ) from None
        raise classify_failure(message) from None
    return interpret(Path(visible(path)), text, meta, max_text_chars)


def _warm_up() -> None:
    """Start the native VM and the language detector now, so the first real job does not pay
    for them."""
    import iscc_tika

    iscc_tika.Extractor().extract_bytes_to_string(bytearray(b"warm up"))
    _language("La declaración fue firmada por la testigo. The statement was signed. " * 3)


def _language(text: str) -> str | None:
    """The language of `text` (`ingest.language`), detected here, in the sandboxed process that
    already holds the text, rather than in the worker. A failure of detection is no failure of
    the extraction: the answer is then None."""
    from ingest.language import detect_language

    try:
        return detect_language(text)
    except Exception:  # MemoryError included
        return None


def serve(
    proto_in: BinaryIO,
    proto_out: BinaryIO,
    handle: Handler,
    *,
    sandboxed: bool,
    spawn_blocked: bool = False,
) -> None:
    """Answer jobs from `proto_in` until it closes, or until a failure retires this process.

    The first line says what confines this process: `ready`, then `sandboxed` (namespaces)
    and `nospawn` (`_nospawn`) where they hold."""
    words = [b"ready"] + [b"sandboxed"] * sandboxed + [b"nospawn"] * spawn_blocked
    proto_out.write(b" ".join(words) + b"\n")
    for line in proto_in:
        request = json.loads(line)
        retire = False
        header: dict[str, object]
        # iscc-tika holds the GIL while it parses, so no watchdog thread could run; the kernel's
        # alarm needs none. It ends an orphaned parser stuck in a hostile file.
        signal.alarm(math.ceil(float(request.get("timeout_s", 60))) + _ALARM_GRACE_S)
        report = None
        try:
            mime, metadata, text = handle(request["path"], int(request["max_text_chars"]))
            if _recogniser is not None:
                text, report = _recognise(request, mime, text)
        except ExtractionError as exc:
            retire = exc.kind in (FailureKind.MEMORY, FailureKind.CRASHED)
            header = {"ok": False, "kind": exc.kind.value, "reason": exc.reason, "retire": retire}
            payload = b""
        except MemoryError:
            retire = True
            error = memory_error(_memory_limit)
            header = {"ok": False, "kind": error.kind.value, "reason": error.reason, "retire": True}
            payload = b""
        except BaseException as exc:  # pyo3's PanicException derives from BaseException
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            retire = True
            error = (
                memory_error(_memory_limit)
                if _near_memory_limit() or _PYO3_ALLOCATION_PANIC in str(exc)
                else ExtractionError(FailureKind.CRASHED, f"parser crashed: {type(exc).__name__}")
            )
            header = {"ok": False, "kind": error.kind.value, "reason": error.reason, "retire": True}
            payload = b""
        else:
            # A Java string may hold an unpaired surrogate, which UTF-8 cannot encode.
            payload = text.encode("utf-8", "replace")
            header = {
                "ok": True,
                "mime_type": mime,
                "metadata": metadata,
                "language": _language(text),
                "text_bytes": len(payload),
            }
            if report is not None:
                from ingest.ocr import report_to_header

                header["ocr"] = report_to_header(report)
        signal.alarm(0)
        proto_out.write(json.dumps(header).encode() + b"\n")
        if payload:
            proto_out.write(payload)
        if retire:
            return


def _recognise(request: dict[str, Any], mime: str, text: str) -> tuple[str, OcrReport | None]:
    """Run OCR on what needs it (`ingest.ocr.Recogniser.apply`): (text, report or None)."""
    assert _recogniser is not None
    done = _recogniser.apply(request, visible(request["path"]), mime, text)
    return done if done is not None else (text, None)


def _start_ocr(argv: list[str]) -> None:
    """Start OCR when `argv` asks for it: fork the runner, which may start programs, before
    this process is barred from doing so."""
    global _recogniser
    option = next((arg for arg in argv[3:] if arg.startswith("ocr=")), None)
    if option is None:
        return
    from ingest.adapters import _ocr_runner
    from ingest.ocr import OcrOptions, Recogniser

    options = OcrOptions.from_argument(option.removeprefix("ocr="))
    _recogniser = Recogniser(_ocr_runner.start(options.engine), options)


def main(argv: list[str], handle: Handler = extract) -> int:
    """Run the parser process: `argv[1]` is the memory limit in bytes, `argv[2]` `sandbox`
    (namespaces where the kernel allows them) or `plain`."""
    parent = os.environ.get(lifeline.PARENT_ENV)
    if parent is not None:
        # First: an orphan must not parse, and a parent killed with SIGKILL ends this too.
        lifeline.die_with_parent(int(parent))
    memory_bytes = int(argv[1])
    wanted = len(argv) < 3 or argv[2] == "sandbox"
    # First, while this process is single-threaded (a condition of unshare(CLONE_NEWUSER)).
    sandboxed = wanted and _sandbox.enter(tmpfs_bytes=memory_bytes)
    _limit_self(memory_bytes)
    _start_ocr(argv)
    # Before Tika first runs: from here this process can start no other process or program.
    spawn_blocked = _nospawn.install()
    proto_in, proto_out = _isolate_stdio()
    if handle is extract:
        _warm_up()
        _diagnostics()
    try:
        serve(proto_in, proto_out, handle, sandboxed=sandboxed, spawn_blocked=spawn_blocked)
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

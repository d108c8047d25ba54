"""The OCR runner: the one helper process the parser process may use, for the OCR engine.

The parser process may start no program (`ingest.adapters._nospawn`), and Tesseract is a
program. So the parser process forks this runner at start, after it entered its sandbox and
took its limits and before it installs that filter: the runner shares its network and mount
namespaces (no network, the private tmpfs `/tmp`), inherits its `RLIMIT_DATA` and
`RLIMIT_CORE` 0, and sits in its process group, which the pool kills when a job's time is up;
`PR_SET_PDEATHSIG` ends it if the parser process dies otherwise.

The runner never opens the deposited file. The parser process decodes the image or renders the
PDF page (the hostile part, under the filter) and sends plain 8-bit grayscale pixels of a
checked size; the runner builds the engine's input from them alone. Language codes are checked
against a fixed shape before they reach a command line. A parser taken over by a hostile file
can make the runner do nothing but OCR of pixels it sends.

Protocol over a socket pair, both ways: one JSON line, then `size` bytes of payload.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import io
import json
import os
import re
import signal
import socket
import tempfile
from typing import Any, Final

from ingest.ports import ExtractionError, FailureKind, OcrEngine, PageImage, RecognisedPage

__all__ = ["ENGINES", "RunnerClient", "start"]

# Engines by the name a deployment configures (`TVAULT_OCR`): "module:class" implementing
# `ingest.OcrEngine`. Another engine is one more entry here.
ENGINES: Final = {"tesseract": "ingest.adapters.tesseract:TesseractEngine"}
LANGUAGE: Final = re.compile(r"[a-z]{3}(?:_[a-z]{3,4})?")  # Tesseract's names: spa, chi_sim
_PR_SET_PDEATHSIG: Final = 1
_MAX_HEADER: Final = 1 << 16
# A page of pixels at most (the parser process holds pages to `Limits.max_pixels`).
MAX_PAYLOAD: Final = 1 << 31


def _send(stream: io.BufferedRWPair, header: dict[str, Any], payload: bytes = b"") -> None:
    stream.write(json.dumps({**header, "size": len(payload)}).encode() + b"\n" + payload)
    stream.flush()


def _receive(stream: io.BufferedRWPair, max_payload: int) -> tuple[dict[str, Any], bytes]:
    line = stream.readline(_MAX_HEADER)
    if not line.endswith(b"\n"):
        raise EOFError
    header = json.loads(line)
    size = int(header["size"])
    if not 0 <= size <= max_payload:
        raise ValueError("payload too large")
    payload = stream.read(size)
    if len(payload) != size:
        raise EOFError
    return header, payload


def _engine(name: str) -> OcrEngine:
    module, _, attribute = ENGINES[name].partition(":")
    engine: OcrEngine = getattr(importlib.import_module(module), attribute)()
    return engine


def _answer(engine: OcrEngine, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
    op = header.get("op")
    if op == "info":
        return {
            "ok": True,
            "engine": engine.name,
            "version": engine.version(),
            "languages": sorted(engine.languages()),
        }
    page = PageImage(int(header["width"]), int(header["height"]), payload)
    if op == "script":
        return {"ok": True, "script": engine.script(page)}
    languages = tuple(str(code) for code in header["languages"])
    if not languages or not all(LANGUAGE.fullmatch(code) for code in languages):
        raise ExtractionError(FailureKind.MALFORMED, "OCR refused: malformed language codes")
    result = engine.recognise(page, languages)
    return {"ok": True, "text": result.text, "confidences": list(result.confidences)}


def _serve(sock: socket.socket, engine_name: str) -> None:
    """The runner's loop: one answer per request until the parser process goes away."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # Off the parser's protocol pipes, so the pool still sees the parser's end as an EOF.
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    # The engine's temporary files go to a memory file system or nowhere (`TesseractEngine`).
    from ingest.adapters.tesseract import THREADS, memory_directory

    tempfile.tempdir = memory_directory()
    os.environ["OMP_THREAD_LIMIT"] = THREADS
    stream = sock.makefile("rwb")
    engine: OcrEngine | None = None
    failure: ExtractionError | None = None
    while True:
        try:
            header, payload = _receive(stream, MAX_PAYLOAD)
        except (EOFError, OSError, ValueError, KeyError):
            return
        try:
            if engine is None and failure is None:
                try:
                    engine = _engine(engine_name)
                except ExtractionError as exc:
                    failure = exc
            if failure is not None:
                raise failure
            assert engine is not None
            answer = _answer(engine, header, payload)
        except ExtractionError as exc:
            answer = {"ok": False, "kind": exc.kind.value, "reason": exc.reason}
        except MemoryError:
            answer = {"ok": False, "kind": "memory", "reason": "OCR ran out of memory"}
        except Exception as exc:
            answer = {
                "ok": False,
                "kind": "crashed",
                "reason": f"OCR crashed: {type(exc).__name__}",
            }
        try:
            _send(stream, answer)
        except OSError:
            return


def start(engine_name: str) -> RunnerClient:
    """Fork the runner for `engine_name` and return the parser process's end of it.

    Call while the process is single-threaded and before `_nospawn.install()`. Raises KeyError
    for an engine not in `ENGINES`.
    """
    if engine_name not in ENGINES:  # refused here, not in the runner
        raise KeyError(engine_name)
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the runner
        ours.close()
        try:
            _serve(theirs, engine_name)
        finally:
            os._exit(0)
    theirs.close()
    return RunnerClient(ours, pid)


class RunnerClient:
    """The parser process's end of the runner; an `ingest.OcrEngine` itself."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self._sock = sock
        self._stream = sock.makefile("rwb")
        self.pid = pid
        self._info: dict[str, Any] | None = None
        self.name = "unknown"

    def _call(self, header: dict[str, Any], payload: bytes = b"") -> dict[str, Any]:
        try:
            _send(self._stream, header, payload)
            answer, _ = _receive(self._stream, 0)
        except (OSError, EOFError, ValueError, KeyError):
            raise ExtractionError(FailureKind.CRASHED, "OCR crashed: its runner ended") from None
        if not answer.get("ok"):
            raise ExtractionError(FailureKind(str(answer["kind"])), str(answer["reason"]))
        return answer

    def _describe(self) -> dict[str, Any]:
        if self._info is None:
            self._info = self._call({"op": "info"})
            self.name = str(self._info["engine"])
        return self._info

    def version(self) -> str:
        """Return the engine's version. Raises `ExtractionError` when it is unavailable."""
        return str(self._describe()["version"])

    def languages(self) -> frozenset[str]:
        """Return the languages the engine has models for."""
        return frozenset(str(code) for code in self._describe()["languages"])

    def script(self, page: PageImage) -> str | None:
        """Return the script of `page`, or None."""
        answer = self._call(
            {"op": "script", "width": page.width, "height": page.height}, page.pixels
        )
        script = answer.get("script")
        return str(script) if script else None

    def recognise(self, page: PageImage, languages: tuple[str, ...]) -> RecognisedPage:
        """Read `page` in `languages`. Raises `ExtractionError`."""
        header = {
            "op": "recognise",
            "width": page.width,
            "height": page.height,
            "languages": list(languages),
        }
        answer = self._call(header, page.pixels)
        return RecognisedPage(
            str(answer["text"]), tuple(float(c) for c in answer.get("confidences", ()))
        )

    def close(self) -> None:
        """Close the socket; the runner exits when it reads the end."""
        with contextlib.suppress(OSError):
            self._stream.close()
            self._sock.close()

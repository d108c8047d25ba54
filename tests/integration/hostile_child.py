"""A parser process for tests: misbehaves when the file starts with a marker, else runs Tika."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ingest.adapters import _tika_child

SPOOL = Path("/tmp")


class _PanicException(BaseException):
    """Stands for pyo3's PanicException, which derives from BaseException."""


def _try_to_spawn() -> list[str]:
    """What a hostile document could make the parser do: start a process, a program, a thread."""
    seen = []
    try:
        pid = os.fork()
    except OSError as exc:
        seen.append(f"fork: refused ({exc.strerror})")
    else:
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        seen.append("fork: started")
    try:
        subprocess.run(["/bin/true"], check=True)
    except OSError as exc:
        seen.append(f"program: refused ({exc.strerror})")
    else:
        seen.append("program: started")
    ran: list[str] = []
    thread = threading.Thread(target=lambda: ran.append("ran"))
    thread.start()
    thread.join()
    seen.append(f"thread: {ran[0] if ran else 'did not run'}")
    return seen


def handle(path: str, max_text_chars: int) -> _tika_child.Result:
    """Run the real extraction unless the file's first bytes name a misbehaviour."""
    head = Path(_tika_child.visible(path)).read_bytes()[:32]
    if head.startswith(b"EXIT"):
        os._exit(3)
    if head.startswith(b"SEGV"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if head.startswith(b"HANG"):
        time.sleep(3600)
    if head.startswith(b"SLOW"):
        time.sleep(1)
        return "text/plain", {}, "slow answer"
    if head.startswith(b"SPOOL"):
        # What Tika does with an embedded document, then a hang: the file must not outlive us.
        name = head[5:].decode().strip()
        (SPOOL / f"apache-tika-{name}.docx").write_bytes(b"embedded plaintext")
        time.sleep(3600)
    if head.startswith(b"ALLOC"):
        # Beyond the process's RLIMIT_DATA: Python raises MemoryError.
        blocks = [bytearray(64 << 20) for _ in range(64)]
        return "text/plain", {}, str(len(blocks))
    if head.startswith(b"RUSTOOM"):
        # What Rust's allocator does when an allocation fails under the limit: say so, abort.
        os.write(2, b"memory allocation of 10371601 bytes failed\n")
        os.abort()
    if head.startswith(b"PYO3OOM"):
        # pyo3 panics when building the Python string of a long text fails for want of memory.
        raise _PanicException("Python API call failed")
    if head.startswith(b"ENV"):
        return "text/plain", {}, "\n".join(sorted(os.environ))
    if head.startswith(b"PRINT"):
        # Native code writing to stdout must not reach the protocol.
        print("noise on stdout", flush=True)
        os.write(1, b"{not json\n")
        os.write(2, b"noise on stderr\n")
        return "text/plain", {}, "clean answer"
    if head.startswith(b"NET"):
        port = int(head[3:].decode().strip())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError as exc:
            return "text/plain", {}, f"blocked: {exc.strerror}"
        return "text/plain", {}, "reachable"
    if head.startswith(b"TMP"):
        name = head[3:].decode().strip()
        (SPOOL / f"apache-tika-{name}.docx").write_bytes(b"embedded plaintext")
        return "text/plain", {}, "\n".join(sorted(os.listdir(SPOOL)))
    if head.startswith(b"SPAWN"):
        return "text/plain", {}, "\n".join(_try_to_spawn())
    if head.startswith(b"LIE"):
        # A parser taken over by the file: free text where the vault keeps fields in the clear.
        _tika_child._language = lambda text: "La testigo Rosa Mamani declaró"  # type: ignore[assignment]
        return "La testigo Rosa Mamani declaró", {}, "texto"
    if head.startswith(b"FLOOD"):
        # A child that ignores the limit: the parent must refuse the answer.
        return "text/plain", {}, "x" * (max_text_chars + 10)
    return _tika_child.extract(path, max_text_chars)


if __name__ == "__main__":
    sys.exit(_tika_child.main(sys.argv, handle))

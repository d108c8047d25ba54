"""Helper processes die with the process that started them (Linux's parent-death signal).

A worker or server killed with SIGKILL runs no cleanup, so its parser processes (and the
search helper) would live on, orphaned, holding memory and perhaps a document. A helper calls
`die_with_parent` first thing: the kernel then sends it SIGKILL when its parent dies
(prctl(2) `PR_SET_PDEATHSIG`), and if the parent already died before the signal was armed (the
child is then an orphan, its parent id changed), it exits at once.

Caveat (prctl(2)): the kernel's "parent" is the thread that started the child, not the whole
process, so start helpers from a thread that lives as long as they should (the main thread, a
worker's own threads, or a launcher thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import Any, Final

__all__ = ["PARENT_ENV", "die_with_parent", "popen"]

# linux/prctl.h
_PR_SET_PDEATHSIG: Final = 1
# The environment variable through which a parent tells a child its process id.
PARENT_ENV: Final = "TVAULT_PARENT_PID"


def die_with_parent(parent_pid: int) -> None:
    """Have this process killed (SIGKILL) when its parent, `parent_pid`, dies; if it is already
    gone, exit now (status 1). Raises `OSError` if the kernel refuses the setting."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    # Checked after arming: a parent that dies from here on sends the signal.
    if os.getppid() != parent_pid:
        os._exit(1)


def popen(argv: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
    """Start `argv` as `subprocess.Popen(argv, **options)` does, from a thread of its own that
    stays until the process ends (without reaping it), so that the process's parent-death
    signal fires when this process dies, not when the calling thread ends. Raises what
    `Popen` raises."""
    started: list[subprocess.Popen[bytes] | BaseException] = []
    ready = threading.Event()

    def parent() -> None:
        try:
            started.append(subprocess.Popen(argv, **options))
        except BaseException as exc:
            started.append(exc)
            return
        finally:
            ready.set()
        process = started[0]
        assert isinstance(process, subprocess.Popen)
        with contextlib.suppress(OSError):  # ECHILD: its owner reaped it already
            # WNOWAIT: wait for the end, leave the reaping to the process's owner.
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)

    threading.Thread(target=parent, name="tvault-helper-parent", daemon=True).start()
    ready.wait()
    result = started[0]
    if isinstance(result, BaseException):
        raise result
    return result

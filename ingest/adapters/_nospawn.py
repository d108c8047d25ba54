"""A seccomp filter that keeps the parser process from starting any other process or program.

Tika runs external tools when it finds them (`tesseract` for OCR, `ffmpeg`, `exiftool`), and
looks for `tesseract` by running it: iscc-tika builds a new Tika configuration for every
document, so each extraction forked the parser process about four times, a copy of a Java heap
each time. Under this filter `fork`, `vfork`, `execve` and `execveat` fail with EPERM, and
`clone` too unless it makes a thread, so Tika's probe fails at once and it carries on without
the tool (the text is the same: OCR is off). A hostile document can no longer make the parser
run a program either. `clone3` answers ENOSYS: its flags live in memory a filter cannot read,
and glibc then makes its threads with `clone`.

Linux only (x86_64 and aarch64); elsewhere `install` returns False and changes nothing.
"""

from __future__ import annotations

import ctypes
import platform
import struct
from typing import Final

__all__ = ["install"]

_PR_SET_NO_NEW_PRIVS: Final = 38
_PR_SET_SECCOMP: Final = 22
_SECCOMP_MODE_FILTER: Final = 2
_SECCOMP_RET_ALLOW: Final = 0x7FFF0000
_SECCOMP_RET_ERRNO: Final = 0x00050000
_EPERM: Final = 1
_ENOSYS: Final = 38
_CLONE_THREAD: Final = 0x00010000
# Classic BPF opcodes (linux/filter.h): BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K,
# BPF_JMP|BPF_JSET|BPF_K, BPF_RET|BPF_K.
_LD_ABS: Final = 0x20
_JEQ: Final = 0x15
_JSET: Final = 0x45
_RET: Final = 0x06
# struct seccomp_data: nr at 0, arch at 4, args[0] at 16 (its low 32 bits: little-endian).
_NR, _ARCH, _ARG0 = 0, 4, 16

# AUDIT_ARCH_* and the system call numbers the filter names, per machine.
_MACHINES: Final[dict[str, tuple[int, dict[str, int]]]] = {
    "x86_64": (
        0xC000003E,
        {"clone": 56, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "clone3": 435},
    ),
    "aarch64": (0xC00000B7, {"clone": 220, "execve": 221, "execveat": 281, "clone3": 435}),
}


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str) -> bytes:
    """Return the filter for `machine` as packed `struct sock_filter`s.

    Raises KeyError for a machine it has no system call numbers for."""
    arch, numbers = _MACHINES[machine]
    refuse = _SECCOMP_RET_ERRNO | _EPERM
    ops = [
        _op(_LD_ABS, _ARCH),
        _op(_JEQ, arch, 1, 0),
        _op(_RET, _SECCOMP_RET_ALLOW),  # another ABI (none is expected): not this filter's
        _op(_LD_ABS, _NR),
        _op(_JEQ, numbers["clone3"], 0, 1),
        _op(_RET, _SECCOMP_RET_ERRNO | _ENOSYS),
    ]
    for name in ("fork", "vfork", "execve", "execveat"):
        if name in numbers:
            ops += [_op(_JEQ, numbers[name], 0, 1), _op(_RET, refuse)]
    ops += [
        _op(_JEQ, numbers["clone"], 0, 3),
        _op(_LD_ABS, _ARG0),
        _op(_JSET, _CLONE_THREAD, 1, 0),
        _op(_RET, refuse),
        _op(_RET, _SECCOMP_RET_ALLOW),
    ]
    return b"".join(ops)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> bool:
    """Forbid this process and its threads, from now on, to start processes or programs.

    Irreversible, and inherited by nothing (it can start nothing). Returns False, changing
    nothing, where the machine or the kernel does not allow it.
    """
    try:
        code = program(platform.machine())
    except KeyError:
        return False
    buffer = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    # Required of an unprivileged process; it also keeps set-uid programs from gaining rights.
    if prctl(_PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        return False
    return bool(prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) == 0)

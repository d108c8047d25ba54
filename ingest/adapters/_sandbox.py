"""Namespaces for the parser process: no network, and a private in-memory /tmp.

Tika writes embedded documents (an e-mail's attachment) to /tmp in the clear, and follows
references a hostile document may carry (XML external entities, remote images). Inside new
mount and network namespaces, /tmp is a tmpfs that vanishes with the process and there is no
network but a loopback that is down. Unprivileged users get the namespaces through a user
namespace (mapping only their own uid); where the kernel refuses, the parser runs without them
and the pool falls back to sweeping /tmp after a killed job.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["enter", "visible"]

# linux/sched.h and linux/mount.h
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_NOEXEC = 0x8

_host_tmp_fd = -1


def _check(result: int) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def enter(tmpfs_bytes: int) -> bool:
    """Move this (single-threaded) process into its sandbox; return False where refused.

    Call before any thread starts: the kernel refuses a user namespace to a threaded process.
    """
    global _host_tmp_fd
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWNS | _CLONE_NEWNET | (_CLONE_NEWUSER if uid != 0 else 0)
    try:
        _check(libc.unshare(flags))
        if uid != 0:
            # user_namespaces(7): setgroups must be denied before an unprivileged gid_map.
            for name, value in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1")):
                with open(f"/proc/self/{name}", "w") as handle:
                    handle.write(value)
            with open("/proc/self/gid_map", "w") as handle:
                handle.write(f"0 {gid} 1")
        # Keep a way to the host's /tmp, where the file to parse may be, before hiding it.
        host_tmp = os.open("/tmp", os.O_PATH | os.O_DIRECTORY)  # noqa: S108
        # mount_namespaces(7): make every mount private so nothing propagates to the host.
        _check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None))
        options = f"mode=700,size={max(tmpfs_bytes, 1 << 20)}".encode()
        _check(
            libc.mount(b"tmpfs", b"/tmp", b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, options)
        )
        _keep_code_reachable(libc, host_tmp)
    except OSError:
        return False
    _host_tmp_fd = host_tmp
    return True


def _keep_code_reachable(libc: ctypes.CDLL, host_tmp: int) -> None:
    """Bind back the host's /tmp directories this interpreter imports from.

    A checkout or virtualenv under /tmp (a CI clone, say) would otherwise vanish under the new
    tmpfs, and every later import or read of package data (Tika's native image, the language
    models) would fail. Only the top directories that hold code are bound, never /tmp itself.
    """
    roots: set[str] = set()
    for entry in (sys.prefix, sys.exec_prefix, os.getcwd(), *sys.path):
        real = os.path.realpath(entry) if entry else ""
        if real.startswith("/tmp/"):  # noqa: S108
            roots.add(real.split("/")[2])
    for name in sorted(roots):
        target = f"/tmp/{name}"  # noqa: S108
        os.mkdir(target, 0o700)
        source = f"/proc/self/fd/{host_tmp}/{name}"
        # A bind mount keeps the flags of its source mount, so code stays executable although
        # the tmpfs around it is noexec.
        _check(libc.mount(source.encode(), target.encode(), None, _MS_BIND | _MS_REC, None))


def visible(path: str) -> str:
    """Return a name under which this process reaches the host's `path`."""
    if _host_tmp_fd >= 0 and (path == "/tmp" or path.startswith("/tmp/")):  # noqa: S108
        # /proc/self/fd/N of a directory descriptor resolves to that directory (proc(5)).
        return f"/proc/self/fd/{_host_tmp_fd}{path[4:]}"
    return path

"""Helper processes die with the process that started them, even one killed with SIGKILL.

A helper that is not reading its pipe (a parser in a long parse, the search helper on a big
page; here: stopped) never sees the pipe close when its parent is killed, and lived on as an
orphan. With the parent-death signal (`ingest.lifeline`) the kernel kills it with its parent.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

TIKA_PARENT = """
import sys
from ingest import Limits
from ingest.adapters import NativeTikaExtractor

extractor = NativeTikaExtractor(workers=1)
extractor.warm_up(Limits())
print("ready", flush=True)
sys.stdin.read()
"""

# The helper is started from a thread that ends at once (as a request's thread may): the kernel
# counts that thread as its parent, so the helper must not die with it.
SEARCH_PARENT = """
import sys, threading, time
from pathlib import Path
from vault.compose import child_store
from vault.search_helper import SearchHelper
from vault.settings import load_settings

helper = SearchHelper(load_settings(Path(sys.argv[1])), child_store)
thread = threading.Thread(target=helper.start)
thread.start()
thread.join()
while not helper.alive:
    time.sleep(0.05)
time.sleep(1)
assert helper.alive, "the helper died with the thread that started it"
print("ready", flush=True)
sys.stdin.read()
"""


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # dead; not reaped yet
    except psutil.NoSuchProcess:
        return True


def kill_parent_of_stopped_helpers(script: str, *args: str) -> list[psutil.Process]:
    """Run `script`, stop its helper processes, SIGKILL it; return the helpers after 10 s."""
    parent = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    helpers: list[psutil.Process] = []
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == b"ready"
        # Not the multiprocessing resource tracker: it ends by itself when its pipe closes.
        helpers = [
            child
            for child in psutil.Process(parent.pid).children()
            if "resource_tracker" not in " ".join(child.cmdline())
        ]
        assert helpers, "no helper process started"
        for helper in helpers:
            helper.send_signal(signal.SIGSTOP)  # busy: it will not read its end of the pipe
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while not all(gone(helper) for helper in helpers) and time.monotonic() < deadline:
            time.sleep(0.05)
        return [helper for helper in helpers if not gone(helper)]
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for stream in (parent.stdin, parent.stdout):
            if stream is not None:
                stream.close()
        for helper in helpers:
            if not gone(helper):
                helper.kill()


def test_a_parser_process_dies_with_its_killed_worker() -> None:
    assert kill_parent_of_stopped_helpers(TIKA_PARENT) == []


def test_the_search_helper_dies_with_its_killed_server(tmp_path: Path) -> None:
    (tmp_path / "vault").mkdir()
    assert kill_parent_of_stopped_helpers(SEARCH_PARENT, str(tmp_path / "vault")) == []

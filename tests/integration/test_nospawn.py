"""The parser process's no-spawn filter (`ingest.adapters._nospawn`), in processes of its own."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.adapters import NativeTikaExtractor
from tests import corpus

pytestmark = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "aarch64"),
    reason=f"the filter knows no system call numbers for {platform.machine()}",
)

_PROBE = """
import json, os, subprocess, sys, threading
from ingest.adapters import _nospawn
installed = _nospawn.install() if sys.argv[1] == "on" else False
seen = {"installed": installed}
try:
    pid = os.fork()
except OSError as exc:
    seen["fork"] = exc.errno
else:
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    seen["fork"] = 0
try:
    subprocess.run(["/bin/true"], check=True)
    seen["program"] = 0
except OSError as exc:
    seen["program"] = exc.errno
try:
    os.posix_spawn("/bin/true", ["/bin/true"], dict(os.environ))
    seen["posix_spawn"] = 0
except OSError as exc:
    seen["posix_spawn"] = exc.errno
ran = []
threads = [threading.Thread(target=ran.append, args=(n,)) for n in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
seen["threads"] = sorted(ran)
print(json.dumps(seen))
"""

_EXTRACT = """
import json, sys
import iscc_tika
from ingest.adapters import _nospawn
if sys.argv[1] == "on":
    assert _nospawn.install()
extractor = iscc_tika.Extractor()
print(json.dumps([extractor.extract_file_to_string(path)[0] for path in sys.argv[2:]]))
"""


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_processes_and_programs_are_refused_threads_are_not() -> None:
    before = json.loads(_run(_PROBE, "off"))
    assert before == {
        "installed": False,
        "fork": 0,
        "program": 0,
        "posix_spawn": 0,
        "threads": [0, 1, 2, 3],
    }
    after = json.loads(_run(_PROBE, "on"))
    assert after == {
        "installed": True,
        "fork": 1,  # EPERM
        "program": 1,
        "posix_spawn": 1,
        "threads": [0, 1, 2, 3],
    }


def test_tika_extracts_the_same_text_under_the_filter(tmp_path: Path) -> None:
    files = [
        corpus.pdf(tmp_path, pages=["Primera página de la declaración.", "Segunda página."]),
        corpus.docx(tmp_path),
        corpus.odt(tmp_path),
        corpus.xlsx(tmp_path),
        corpus.html(tmp_path),
        corpus.text(tmp_path, "latin1.txt", "Declaración en Latin-1", encoding="latin-1"),
    ]
    paths = [str(path) for path in files]
    plain = json.loads(_run(_EXTRACT, "off", *paths))
    filtered = json.loads(_run(_EXTRACT, "on", *paths))
    assert filtered == plain
    assert all(text.strip() for text in filtered)


def test_the_vaults_parser_processes_run_under_the_filter() -> None:
    with NativeTikaExtractor(workers=2) as extractor:
        extractor.warm_up()
        assert extractor.spawn_blocked()
        for pid in extractor.pids():
            status = Path(f"/proc/{pid}/status").read_text()
            assert "\nSeccomp:\t2\n" in status  # SECCOMP_MODE_FILTER
            assert "\nNoNewPrivs:\t1\n" in status

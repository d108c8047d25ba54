"""vault.allocator: the malloc settings of the server processes, and their measurable effect."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Buffers of 16-256 KiB made and dropped as an upload's socket reads are, a few alive at a
# time; prints the page faults it took. Deterministic (seeded), so both runs do the same work.
_CHURN = textwrap.dedent(
    """
    import random, resource, sys
    from vault import allocator
    applied = allocator.tune() if sys.argv[1] == "tuned" else None
    rnd = random.Random(1)
    keep = []
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4000):
        keep.append(bytes(rnd.randrange(16 * 1024, 256 * 1024)))
        while len(keep) > rnd.randrange(1, 24):
            keep.pop(0)
    print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _churn(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    done = subprocess.run(
        [sys.executable, "-c", _CHURN, mode],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    applied, faults = done.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuned_heap_reuses_memory_instead_of_faulting_it_in_again() -> None:
    applied, tuned = _churn("tuned")
    _, default = _churn("default")
    assert applied == "True"
    # Measured: about 14,600 faults with glibc's defaults, 860 tuned.
    assert tuned * 5 < default, (tuned, default)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_operator_settings_are_left_alone() -> None:
    applied, _ = _churn("tuned", MALLOC_TOP_PAD_="131072")
    assert applied == "False"
    applied, _ = _churn("tuned", GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072")
    assert applied == "False"

"""Time `policies.decide` and `policies.search_scope` with the shipped policy (one thread).

Run: .venv/bin/python bench/policies_decide.py
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import policies
from policies import Principal, Resource

N = 200_000


def per_call(fn: Callable[[], object], n: int = N) -> float:
    """Return the mean seconds per call of `fn` over `n` calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    engine = policies.default_engine()
    cases = [f"case-{i}" for i in range(1000)]
    lawyer = Principal(
        "lena", frozenset({"lawyer"}), {c: frozenset({"lawyer"}) for c in cases[:50]}
    )
    advocate = Principal("ava", frozenset({"advocate"}), {})
    allowed = Resource("item", "case-7", "i", depositor="dora", consent=frozenset({"legal"}))
    denied = Resource("item", "case-7", "i", depositor="dora", consent=frozenset({"therapy"}))
    baseline = per_call(lambda: frozenset({"legal"}) & frozenset({"legal", "therapy"}))
    figures = {
        "decide, allowed item.read": per_call(lambda: engine.decide(lawyer, "item.read", allowed)),
        "decide, denied item.read": per_call(lambda: engine.decide(lawyer, "item.read", denied)),
        "search_scope, lawyer on 50 cases": per_call(
            lambda: engine.search_scope(lawyer, "item.search", cases), 5_000
        ),
        "search_scope, advocate over 1000 cases": per_call(
            lambda: engine.search_scope(advocate, "item.search", cases), 2_000
        ),
    }
    print(f"python {platform.python_version()}, {platform.machine()}")
    print(f"baseline (one frozenset intersection): {baseline * 1e6:.2f} us")
    for name, seconds in figures.items():
        print(f"{name}: {seconds * 1e6:.1f} us ({seconds / baseline:.0f}x baseline)")


if __name__ == "__main__":
    main()

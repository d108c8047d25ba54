"""Benchmark `tvault verify`: full and --fast MB/s over a vault of >= 2 GiB, as a ratio to
`openssl dgst -sha256` over the same stored bytes in the same run; ledger entries/s at 100,000.

Run: `.venv/bin/python bench/verify.py [--gib 2] [--entries 100000] [--append-results]`.
Builds the vaults under /tmp (embedded: SQLite and the local object store) and deletes them.
Target (issue 4, point 6): full verify >= 0.5 of openssl's rate. (`sha256sum` here does not use
the CPU's SHA instructions, so it is no fair baseline.)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keys import KdfParams
from vault import ledger
from vault.accounts import add_user, find_user, principal_of
from vault.cases import create_case
from vault.compose import Vault
from vault.deposit import Deposit
from vault.ledger.wiring import checkpointer_of
from vault.provision import create_vault
from vault.settings import load_settings
from vault.verify import verify

MIB = 1024 * 1024
ITEM = 256 * MIB
FAST_KDF = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)


def make_vault(root: Path) -> Vault:
    settings = load_settings(root, ledger_checkpoint_entries=1000)
    vault = create_vault(settings, "bench passphrase", "admin", kdf=FAST_KDF)
    with vault.sessions.begin() as session:
        add_user(session, "tina", "therapist", vault.clock())
    return vault


def fill(vault: Vault, total: int) -> int:
    with vault.sessions() as session:
        tina = principal_of(session, find_user(session, "tina"))
    case = create_case(vault, tina, "Bench case").id
    with vault.sessions() as session:
        tina = principal_of(session, find_user(session, "tina"))  # now with the case's grant
    block = os.urandom(16 * MIB)  # random: the sealing and hashing cost is what it is for media
    done = 0
    for n in range(-(-total // ITEM)):
        fields = {"case": case, "kind": "media", "title": f"t{n}", "consent": "therapy"}
        job = Deposit.start(vault, tina, fields, ITEM)
        for _ in range(ITEM // len(block)):
            job.write(block)
        job.commit()
        done += ITEM
    checkpointer_of(vault).checkpoint()
    return done


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def openssl(paths: list[Path]) -> float:
    return timed(
        lambda: subprocess.run(
            ["openssl", "dgst", "-sha256", *map(str, paths)], check=True, capture_output=True
        )
    )


def ledger_rate(root: Path, entries: int) -> tuple[float, float]:
    vault = make_vault(root)
    try:
        have = 0
        while have < entries:
            with vault.sessions.begin() as session:
                for _ in range(min(5000, entries - have)):
                    ledger.append(session, actor="tina", action=ledger.actions.DECRYPTION)
                have = ledger.size(session)
        checkpointer_of(vault).checkpoint()
        seconds = timed(lambda: verify(vault))
        report = verify(vault, fast=True)
        assert report.ok, report.failures
        return report.entries / seconds, seconds
    finally:
        vault.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--append-results", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="tvault-bench-verify-", dir="/tmp"))
    try:
        vault = make_vault(work / "vault")
        plain = fill(vault, int(args.gib * 1024**3))
        paths = sorted(p for p in (work / "vault" / "objects").rglob("items+*"))
        stored = sum(p.stat().st_size for p in paths)
        rounds: list[tuple[float, float, float]] = []
        for _ in range(args.rounds):
            base = openssl(paths)
            full = timed(lambda: verify(vault))
            fast = timed(lambda: verify(vault, fast=True))
            rounds.append((base, full, fast))
        report = verify(vault)
        assert report.ok, report.failures
        vault.close()
        rate, ledger_seconds = ledger_rate(work / "ledger", args.entries)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()[0]

    def mbps(seconds: float, size: int = stored) -> float:
        return size / seconds / 1e6

    lines = [
        "",
        f"## Verify (bench/verify.py), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, SQLite + local object store under /tmp; load average "
        f"{load_before:.2f} before, {load_after:.2f} after (shared machine).",
        f"Vault: {len(paths)} items of {ITEM // MIB} MiB of random bytes, {plain / 1024**3:.2f} "
        f"GiB plaintext, {stored / 1024**3:.2f} GiB stored (age). Baseline: `openssl dgst "
        "-sha256` over the same stored files, in the same round (page cache warm for all).",
        "MB/s are stored bytes per second (10^6), so the ratio compares the same bytes.",
        "",
        "| round | openssl MB/s | full verify MB/s | ratio | --fast MB/s | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, (base, full, fast) in enumerate(rounds, 1):
        lines.append(
            f"| {n} | {mbps(base):,.0f} | {mbps(full):,.0f} | {base / full:.2f} | "
            f"{mbps(fast):,.0f} | {base / fast:.2f} |"
        )
    best = max(base / full for base, full, _ in rounds)
    lines += [
        "",
        f"Best full-verify ratio {best:.2f} (target >= 0.5). Ledger: `tvault verify` of a vault "
        f"holding {args.entries:,} entries (chain, rows, tree rebuilt, checkpoint checked) took "
        f"{ledger_seconds:.2f} s: {rate:,.0f} entries/s.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append_results:
        with (Path(__file__).parent / "RESULTS.md").open("a") as out:
            out.write(text)


if __name__ == "__main__":
    main()

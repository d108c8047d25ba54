"""Benchmark `tvault verify`: full and --fast MB/s over a vault of >= 2 GiB, as a ratio to
`openssl dgst -sha256` over the same stored bytes in the same run; ledger entries/s at 100,000,
and the cost per 100,000 entries of the ledger MAC check and of the state replay (grants, consent,
holds and shreds replayed from the entries' own JSON, as `tvault verify` does).

Run: `.venv/bin/python bench/verify.py [--gib 2] [--entries 100000] [--append-results]`.
Builds the vaults under /tmp (embedded: SQLite and the local object store) and deletes them.
Target (issue 4, point 6): full verify >= 0.5 of openssl's rate. (`sha256sum` here does not use
the CPU's SHA instructions, so it is no fair baseline.)
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keys import KdfParams
from vault import ledger
from vault.accounts import add_user, find_user, principal_of
from vault.cases import create_case
from vault.deposit import Deposit
from vault.ledger import integrity, mac
from vault.parts import Vault
from vault.provision import create_vault
from vault.replay import history
from vault.settings import load_settings
from vault.verify import verify

MIB = 1024 * 1024
ITEM = 256 * MIB
FAST_KDF = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
PER = 100_000


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
    vault.checkpointer.checkpoint()
    return done


@dataclass(frozen=True)
class Took:
    """Wall-clock seconds, and CPU seconds of this process and its children (openssl).

    On a busy shared machine the wall clock measures the queue for the CPU as much as the work;
    CPU time measures the work, so the ratios are given both ways.
    """

    wall: float
    cpu: float


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(action: Callable[[], object]) -> Took:
    start, cpu = time.perf_counter(), _cpu()
    action()
    return Took(time.perf_counter() - start, _cpu() - cpu)


def openssl(paths: list[Path]) -> Took:
    return timed(
        lambda: subprocess.run(
            ["openssl", "dgst", "-sha256", *map(str, paths)], check=True, capture_output=True
        )
    )


def mac_check_seconds(entries: int) -> Took:
    """Seconds `verify`'s per-entry MAC check takes for `entries` entries (MACs all valid)."""
    key = os.urandom(32)
    hashes = [os.urandom(32) for _ in range(entries)]
    macs = [mac.entry_mac(key, h) for h in hashes]
    checker = integrity.EntryMacs(key)

    def check() -> None:
        for seq, (digest, stored) in enumerate(zip(hashes, macs, strict=True)):
            checker.check(seq, digest, stored)

    return min((timed(check) for _ in range(3)), key=lambda took: took.cpu)


def append_many(vault: Vault, count: int, append: Callable[[Session, int], object]) -> None:
    """Append `count` ledger entries, 5,000 to a transaction; `append(session, n)` adds the n-th."""
    for start in range(0, count, 5000):
        with vault.sessions.begin() as session:
            for n in range(start, min(start + 5000, count)):
                append(session, n)


def replay_rate(root: Path, entries: int) -> Took:
    """Seconds `vault.replay.history` takes over a ledger of `entries` state-changing entries.

    The worst case for the replay: every entry is one it applies (a consent change, each with
    its full scopes, as `vault.consent` writes them); a real ledger is mostly reads and searches,
    which the replay's query skips by their action. The best of three passes.
    """
    vault = make_vault(root)
    try:
        append_many(
            vault,
            entries,
            lambda session, n: ledger.append(
                session,
                actor="tina",
                action=ledger.actions.CONSENT_CHANGE,
                item_id=f"{n:032x}",
                details={"version": 2, "scopes": ["legal", "therapy"]},
            ),
        )

        def replay() -> None:
            with vault.sessions() as session:
                assert history(session).entries == entries

        return min((timed(replay) for _ in range(3)), key=lambda took: took.cpu)
    finally:
        vault.close()


def ledger_rate(root: Path, entries: int) -> Took:
    vault = make_vault(root)
    try:
        with vault.sessions() as session:
            missing = entries - ledger.size(session)
        append_many(
            vault,
            missing,
            lambda session, _: ledger.append(
                session, actor="tina", action=ledger.actions.DECRYPTION
            ),
        )
        vault.checkpointer.checkpoint()
        took = timed(lambda: verify(vault))
        report = verify(vault, fast=True)
        assert report.ok and report.entries == entries, report.failures
        return took
    finally:
        vault.close()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


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
        rounds: list[tuple[Took, Took, Took]] = []
        for _ in range(args.rounds):
            base = openssl(paths)
            full = timed(lambda: verify(vault))
            fast = timed(lambda: verify(vault, fast=True))
            rounds.append((base, full, fast))
        report = verify(vault)
        assert report.ok, report.failures
        vault.close()
        ledger_took = ledger_rate(work / "ledger", args.entries)
        replay_took = replay_rate(work / "replay", args.entries)
        mac_took = mac_check_seconds(args.entries)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()[0]

    def mbps(seconds: float, size: int = stored) -> float:
        return size / seconds / 1e6

    lines = [
        "",
        f"## Verify (bench/verify.py), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}, {cpu_model()}), Python "
        f"{platform.python_version()}, SQLite + local object store under /tmp; load average "
        f"{load_before:.2f} before, {load_after:.2f} after (shared machine).",
        f"Vault: {len(paths)} items of {ITEM // MIB} MiB of random bytes, {plain / 1024**3:.2f} "
        f"GiB plaintext, {stored / 1024**3:.2f} GiB stored (age). Baseline: `openssl dgst "
        "-sha256` over the same stored files, in the same round (page cache warm for all).",
        "MB/s are stored bytes per second (10^6), so the ratio compares the same bytes.",
        "",
        "Ratios are openssl's time over verify's: wall clock, and CPU seconds (the work alone).",
        "",
        "| round | openssl MB/s | full verify MB/s | ratio | ratio (CPU) | --fast MB/s | ratio "
        "| ratio (CPU) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, (base, full, fast) in enumerate(rounds, 1):
        lines.append(
            f"| {n} | {mbps(base.wall):,.0f} | {mbps(full.wall):,.0f} | "
            f"{base.wall / full.wall:.2f} | {base.cpu / full.cpu:.2f} | {mbps(fast.wall):,.0f} | "
            f"{base.wall / fast.wall:.2f} | {base.cpu / fast.cpu:.2f} |"
        )
    wall = statistics.median(base.wall / full.wall for base, full, _ in rounds)
    cpu = statistics.median(base.cpu / full.cpu for base, full, _ in rounds)
    per = PER / args.entries
    replay = (
        f"{replay_took.wall * per:.2f} s ({replay_took.cpu * per:.2f} s CPU), every entry a "
        "consent change it applies (its worst case)."
    )
    lines += [
        "",
        f"Median full-verify ratio {wall:.2f} by wall clock, {cpu:.2f} by CPU time (target "
        f">= 0.5). Ledger: `tvault verify` of a vault holding {args.entries:,} entries (chain, "
        f"rows, MACs, tree rebuilt, checkpoint checked) took {ledger_took.wall:.2f} s "
        f"({ledger_took.cpu:.2f} s CPU): {args.entries / ledger_took.wall:,.0f} entries/s.",
        "",
        f"Per {PER:,} entries: the ledger MAC check (HMAC-SHA-256 of each entry hash, compared "
        f"in constant time) {mac_took.wall * per:.3f} s ({mac_took.cpu * per:.3f} s CPU); the "
        f"whole ledger part of verify {ledger_took.wall * per:.2f} s ({ledger_took.cpu * per:.2f}"
        f" s CPU); the state replay {replay}",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.append_results:
        with (Path(__file__).parent / "RESULTS.md").open("a") as out:
            out.write(text)


if __name__ == "__main__":
    main()

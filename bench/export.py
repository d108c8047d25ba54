"""Benchmark an export bag build: its rate as a ratio to a raw pipeline doing the same
cryptographic work on the same stored objects, and its peak RSS growth.

Run: `.venv/bin/python bench/export.py [--gib 4] [--rounds 3] [--append-results]`.

Builds an embedded vault under /tmp (SQLite, local object store), deposits `--gib` GiB through
the deposit use case (items of 256 MiB, consent `truth_commission`), registers a commission
with an age recipient and a grant on the case, then per round, interleaved (the order rotates):

- use case: a commission's request approved by a second custodian, then the export built by
  `vault.export_build.build_pending` (selection, custody proofs, `write_bag`, the sealed bag
  written into the object store with fsync); only the build is timed;
- raw (store): for each stored object, read it, age-decrypt it (`keys.open_stream`, the item's
  own key unwrapped from the keyring), SHA-256 and SHA-512 of the plaintext, ChaCha20-Poly1305
  on 64 KiB chunks (`cryptography`, counter nonces), written into one object of the same store;
- `write_bag` and raw again, both writing to /dev/null: the format's own cost, without the
  disk write-back that swamps figures on the shared machine.

Each pipeline runs in a fresh child process so its peak RSS growth (VmHWM reset before, minus
RSS then) is its own. Ratios are raw time over export time, by wall clock and by CPU time (user
+ system) of the child. Target (issue 18, point 10): ratio >= 0.5; RSS growth < 100 MiB.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

import keys
from keys import KdfParams
from vault import exports, ledger, recipients
from vault.accounts import add_user, find_user, principal_of
from vault.cases import create_case, grant
from vault.compose import open_vault
from vault.db.models import Item, ItemKey
from vault.deposit import Deposit
from vault.export_bag import BagInfo, BagItem, CustodyRecord, write_bag
from vault.export_build import build_pending
from vault.item_keys import open_identity
from vault.parts import Vault
from vault.provision import create_vault
from vault.settings import load_settings

MIB = 1024 * 1024
ITEM = 256 * MIB
CHUNK = 64 * 1024
PASSPHRASE = "bench passphrase"  # noqa: S105 (a throwaway vault under /tmp)
FAST_KDF = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> int:
    """Reset VmHWM to the current RSS and return that RSS (proc(5): clear_refs "5")."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def principal(vault: Vault, name: str) -> Any:
    with vault.sessions() as session:
        return principal_of(session, find_user(session, name))


def build(home: Path, total: int) -> None:
    """Create the vault, a commission with a recipient and a grant, and deposit `total` bytes
    of random media; sign a checkpoint."""
    settings = load_settings(home, ledger_checkpoint_entries=1000)
    vault = create_vault(settings, PASSPHRASE, "admin", kdf=FAST_KDF)
    with vault.sessions.begin() as session:
        add_user(session, "tina", "therapist", vault.clock())
        add_user(session, "cleo", "custodian", vault.clock())
        add_user(session, "truth", "commission", vault.clock())
    case = create_case(vault, principal(vault, "tina"), "Bench case").id
    grant(vault, principal(vault, "admin"), case, "truth", "commission")
    recipients.add(vault, principal(vault, "admin"), "truth", keys.generate_identity()[1])
    tina = principal(vault, "tina")
    block = os.urandom(16 * MIB)  # random: sealing and hashing cost what they cost for media
    for n in range(-(-total // ITEM)):
        fields = {
            "case": case,
            "kind": "media",
            "title": f"t{n}",
            "consent": "truth_commission",
            "filename": f"video {n}.mp4",
        }
        job = Deposit.start(vault, tina, fields, ITEM)
        for _ in range(ITEM // len(block)):
            job.write(block)
        job.commit()
    vault.checkpointer.checkpoint()
    vault.close()


def _stored(vault: Vault) -> list[tuple[Item, str]]:
    """Every item with its age identity, unwrapped from the keyring."""
    with vault.sessions() as session:
        rows = session.query(Item).order_by(Item.id).all()
        return [
            (item, open_identity(vault.keyring, item.id, session.get(ItemKey, item.id).wrapped))
            for item in rows
        ]


def _opener(vault: Vault, name: str, identity: str) -> Any:
    @contextlib.contextmanager
    def opened() -> Iterator[Iterable[bytes]]:
        with vault.store.open(name) as src:
            yield keys.open_stream(src, identity)

    return opened


def run_raw_store(vault: Vault) -> int:
    """The raw pipeline, writing into one object of the vault's store (committed: fsync)."""
    with vault.store.writer("bench/raw") as writer:
        size = run_raw(vault, writer)
        writer.commit()
    return size


def _case(vault: Vault) -> str:
    with vault.sessions() as session:
        return str(session.query(Item.case_id).first()[0])


def request_export(vault: Vault) -> str:
    """The commission asks, a second custodian approves: the export is queued."""
    request = exports.ExportRequest(
        case_id=_case(vault), purpose="Bench purpose", legal_basis="Bench basis"
    )
    asked = exports.request(vault, principal(vault, "truth"), request)
    exports.approve(vault, principal(vault, "cleo"), asked.id)
    return asked.id


def run_use_case(vault: Vault) -> int:
    """Build the queued export (selection, custody, `write_bag` into the store)."""
    assert build_pending(vault) == 1
    total = 0
    with vault.sessions() as session:
        for row in session.query(Item).all():
            total += row.size
    return total


def run_raw(vault: Vault, sink: Any) -> int:
    """Read, age-decrypt, SHA-256 + SHA-512, ChaCha20-Poly1305, write: the same work, bare."""
    cipher = ChaCha20Poly1305(os.urandom(32))
    out = memoryview(bytearray(CHUNK + 16))
    counter = 0
    total = 0
    for item, identity in _stored(vault):
        sha256, sha512 = hashlib.sha256(), hashlib.sha512()
        with vault.store.open(item.object_name) as src:
            for chunk in keys.open_stream(src, identity):
                sha256.update(chunk)
                sha512.update(chunk)
                # Chunks from open_stream are whole 64 KiB ones but for each object's last.
                size = len(chunk) + 16
                cipher.encrypt_into(counter.to_bytes(12, "big"), chunk, None, out[:size])
                sink.write(out[:size])
                counter += 1
                total += len(chunk)
        assert sha256.hexdigest() == item.sha256
    return total


def run_export(vault: Vault, sink: Any) -> int:
    """`write_bag` of every item with its ingestion entries' proofs."""
    stored = _stored(vault)
    with vault.sessions() as session:
        signed = ledger.checkpoints.latest(session)
        assert signed is not None
        ingestions = [
            e.seq
            for e in ledger.entries(session)
            if e.action == ledger.actions.INGESTION and e.item_id is not None
        ]
        proofs = list(ledger.inclusions(session, ingestions, signed.size))
    custody = CustodyRecord(
        proofs=proofs, checkpoint=signed.note, log_key=vault.checkpointer.verifier_key()
    )
    items = [
        BagItem(
            item_id=item.id,
            kind=item.kind,
            filename=f"{item.id}.bin",
            size=item.size,
            sha256=item.sha256,
            open_original=_opener(vault, item.object_name, identity),
            metadata={"case_id": item.case_id, "consent": sorted(item.consent)},
        )
        for item, identity in stored
    ]
    _, recipient = keys.generate_identity()
    info = BagInfo("Bench organisation", "export-bench", date.today())
    summary = write_bag(sink, [recipient], items, custody, info)
    return summary.payload_bytes


def child(home: Path, kind: str) -> None:
    """Run one pipeline in this (fresh) process and print its figures as JSON."""
    vault = open_vault(load_settings(home), PASSPHRASE)
    if kind == "use-case":
        request_export(vault)
    with open(os.devnull, "wb") as sink:
        before = _reset_peak()
        start, cpu = time.perf_counter(), time.process_time()
        if kind == "use-case":
            size = run_use_case(vault)
        elif kind == "raw-store":
            size = run_raw_store(vault)
        else:
            size = (run_raw if kind == "raw" else run_export)(vault, sink)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        peak = _status("VmHWM")
    # Free the disk for the next round (not timed).
    for name in [*vault.store.names(exports.PREFIX), *vault.store.names("bench/")]:
        vault.store.delete(name)
    vault.close()
    print(json.dumps({"size": size, "seconds": elapsed, "cpu": cpu, "rss": peak - before}))


def measure(home: Path, kind: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--home", str(home)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--append-results", action="store_true")
    parser.add_argument(
        "--child", choices=["raw", "export", "raw-store", "use-case"], help=argparse.SUPPRESS
    )
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.home, args.child)
        return
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="tvault-bench-export-", dir="/tmp"))
    rounds: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {
        "use case, into the object store": [],
        "write_bag, to /dev/null": [],
    }
    try:
        home = work / "vault"
        build(home, int(args.gib * 1024**3))
        for n in range(args.rounds):
            # Rotate the order, so load from other processes falls on all alike.
            for (label, got), (raw_kind, bag_kind) in zip(
                rounds.items(), [("raw-store", "use-case"), ("raw", "export")], strict=True
            ):
                pair = [raw_kind, bag_kind] if n % 2 == 0 else [bag_kind, raw_kind]
                figures = {kind: measure(home, kind) for kind in pair}
                got.append((figures[raw_kind], figures[bag_kind]))
                raw, bag = got[-1]
                print(
                    f"round {n + 1} {label}: raw {raw['size'] / raw['seconds'] / 1e6:.1f} MB/s, "
                    f"export {bag['size'] / bag['seconds'] / 1e6:.1f} MB/s, ratio "
                    f"{raw['seconds'] / bag['seconds']:.2f} (CPU {raw['cpu'] / bag['cpu']:.2f}),"
                    f" export RSS growth {bag['rss'] / MIB:.1f} MiB",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    report(args, rounds, load_before, load_after)


def report(
    args: argparse.Namespace,
    rounds: dict[str, list[tuple[dict[str, float], dict[str, float]]]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    lines = [
        "",
        f"## Export bag build (bench/export.py), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}, {cpu_model()}), Python "
        f"{platform.python_version()}; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after (shared machine). Vault: embedded (SQLite, local object "
        f"store under /tmp), {args.gib:g} GiB deposited as {ITEM // MIB} MiB items of random "
        "bytes, consent truth_commission. Raw: read the same stored objects, age-decrypt them "
        "with their item keys, SHA-256 and SHA-512, ChaCha20-Poly1305, write. Use case: a "
        "request approved by a second custodian, then `export_build.build_pending` (custody "
        "proofs, `write_bag`, the sealed bag into the store); raw then writes into the store "
        "too. `write_bag` alone and raw both write to /dev/null. Each run in its own process.",
        "",
        "| pipeline | round | raw MB/s | export MB/s | ratio (wall) | ratio (CPU) | export RSS "
        "growth |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    summary = []
    for label, got in rounds.items():
        for n, (raw, bag) in enumerate(got, 1):
            lines.append(
                f"| {label} | {n} | {raw['size'] / raw['seconds'] / 1e6:.1f} | "
                f"{bag['size'] / bag['seconds'] / 1e6:.1f} | "
                f"{raw['seconds'] / bag['seconds']:.2f} | {raw['cpu'] / bag['cpu']:.2f} | "
                f"{bag['rss'] / MIB:.1f} MiB |"
            )
        if not got:
            continue
        ratios = [raw["seconds"] / bag["seconds"] for raw, bag in got]
        cpu_ratios = [raw["cpu"] / bag["cpu"] for raw, bag in got]
        summary.append(
            f"- {label}: median ratio {statistics.median(ratios):.2f} by wall clock "
            f"({min(ratios):.2f}-{max(ratios):.2f}), {statistics.median(cpu_ratios):.2f} by CPU "
            f"time; export peak RSS growth {max(b['rss'] for _, b in got) / MIB:.1f} MiB (raw "
            f"{max(r['rss'] for r, _ in got) / MIB:.1f} MiB)."
        )
    lines += ["", *summary, "- Target: >= 0.5, RSS growth < 100 MiB.", ""]
    text = "\n".join(lines)
    print(text)
    if args.append_results:
        with (Path(__file__).parent / "RESULTS.md").open("a", encoding="utf-8") as out:
            out.write(text)


if __name__ == "__main__":
    main()

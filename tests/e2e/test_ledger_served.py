"""The custody ledger end to end: a served vault signs checkpoints on its own; `tvault ledger`
proves a download's entry to an outsider's verifier; `tvault verify` passes, then names tampering.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import keys
from tests import ledger_verifier
from tests.e2e.conftest import Server, start_server, tvault

BODY = b"Statement taken at the shelter, third session.\n" * 3000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("ledger") / "vault"
    # A checkpoint after every entry, so the service (not a request) signs the one we prove.
    running = start_server(
        home, TVAULT_LEDGER_CHECKPOINT_ENTRIES="1", TVAULT_LEDGER_CHECKPOINT_SECONDS="1"
    )
    try:
        yield running
    finally:
        running.stop()


def _wait_for_checkpoint(env: dict[str, str], covering: int) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while True:
        body = json.loads(tvault("ledger", "checkpoint", "--json", env=env).stdout)
        if int(body["size"]) > covering or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.5)


def test_deposit_download_prove_and_verify_then_tamper(served: Server, tmp_path: Path) -> None:
    env = served.env
    tvault("users", "add", "audrey", "--role", "auditor", env=env)
    tina = {**env, "TVAULT_URL": served.url, "TVAULT_TOKEN": served.token("tina")}
    audrey = {**env, "TVAULT_URL": served.url, "TVAULT_TOKEN": served.token("audrey")}
    case = tvault("cases", "create", "Case of the shelter", env=tina).stdout.strip()
    source = tmp_path / "statement.txt"
    source.write_bytes(BODY)
    deposited = json.loads(
        tvault(
            "deposit", str(source), "--case", case, "--consent", "therapy,legal", "--json",
            env=tina,
        ).stdout
    )  # fmt: skip
    item = deposited["id"]
    out = tmp_path / "copy.txt"
    tvault("get", item, "-o", str(out), env=tina)
    assert out.read_bytes() == BODY

    with served.client("audrey") as client:
        entries = client.get("/v1/ledger/entries", params={"limit": 1000}).json()
    download = next(e for e in entries if e["item"] == item and e["action"] == "decryption")
    seq = download["seq"]
    checkpoint = _wait_for_checkpoint(audrey, seq)
    assert int(str(checkpoint["size"])) > seq, "the checkpoint service signed nothing"
    vkey = tvault("ledger", "key", env=audrey).stdout.strip()
    proof = json.loads(
        tvault("ledger", "proof", str(seq), "--key", vkey, "--json", env=audrey).stdout
    )
    # The outsider's verifier: only the verifier key and the proof, no code of the vault.
    proved = ledger_verifier.check_inclusion(proof, vkey, keys.verify_ed25519)
    assert (proved["seq"], proved["item"], proved["action"]) == (seq, item, "decryption")
    printed = tvault("ledger", "proof", str(seq), "--key", vkey, env=audrey).stdout
    assert f"entry {seq} is included" in printed
    # A proof against another log's key is refused.
    other = keys.LogSigner.generate()
    from vault.ledger import verifier_key

    wrong = verifier_key(vkey.split("+")[0], other.public_key_bytes())
    refused = tvault("ledger", "proof", str(seq), "--key", wrong, env=audrey, check=False)
    assert refused.returncode == 1

    served.stop()  # verify reads the vault where it lives
    clean = tvault("verify", "--json", env=env)
    report = json.loads(clean.stdout)
    assert report["ok"] and report["items"] == 1 and report["checkpoints"] >= 1

    # Tamper: one flipped byte in the stored object.
    [path] = [p for p in (served.home / "objects").rglob("items+*")]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.chmod(0o600)
    path.write_bytes(bytes(data))
    for mode in ([], ["--fast"]):
        broken = tvault("verify", *mode, env=env, check=False)
        assert broken.returncode == 1, broken.stdout
        assert f"{item}: " in broken.stdout
    assert "ciphertext digest differs" in tvault("verify", "--fast", env=env, check=False).stdout
    # Tamper: an edited ledger row (after dropping the append-only trigger, as the database
    # owner could).
    with sqlite3.connect(served.home / "vault.db") as db:
        db.execute("DROP TRIGGER ledger_entries_no_update")
        db.execute("UPDATE ledger_entries SET actor = 'mallory' WHERE seq = ?", (seq,))
    broken = tvault("verify", "--fast", env=env, check=False)
    assert broken.returncode == 1 and f"entry {seq}: ledger row disagrees" in broken.stdout

"""History cannot be rewritten without the keys: attacks on the database and the object store.

The attacker holds the database and the object store but not the passphrase. Each test makes the
vault's history, rewrites it in SQL (and on the store's files) as that attacker would, and runs
the real `tvault verify`, which must exit 1 with a line naming what disagrees.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

import keys
from keys import Keyring
from tests.unit.vault.conftest import PASSPHRASE
from tests.unit.vault.ledger.conftest import allow_tampering, rewrite_from
from vault import ledger, verify
from vault.db.session import MIGRATIONS
from vault.ledger import actions, mac, note
from vault.ledger.entry import entry_hash
from vault.ledger.tables import EMPTY_ROOT
from vault.parts import LOG_SIGNING, Vault

TAIL = 4  # entries appended after the last checkpoint


def append(vault: Vault, count: int) -> None:
    with vault.sessions.begin() as session:
        for n in range(count):
            ledger.append(
                session, actor="tina", action=actions.DECRYPTION, details={"n": n}, case_id="c_1"
            )


@pytest.fixture
def history(vault: Vault) -> int:
    """A ledger with a signed checkpoint and an unsigned tail; returns the checkpoint's size."""
    append(vault, 6)
    signed = vault.checkpointer.checkpoint()
    append(vault, TAIL)
    return signed.size


def rows(vault: Vault) -> list[Any]:
    with vault.engine.connect() as connection:
        return list(connection.execute(text("SELECT seq, entry FROM ledger_entries ORDER BY seq")))


def drop_tail(vault: Vault, size: int) -> None:
    """Delete the entries from `size` on and point the head at the last one kept, in SQL."""
    allow_tampering(vault.engine)
    keep = rows(vault)[size - 1]
    with vault.engine.begin() as connection:
        connection.execute(text("DELETE FROM ledger_entries WHERE seq >= :n"), {"n": size})
        connection.execute(
            text("UPDATE ledger_state SET size = :n, hash = :h WHERE name = 'head'"),
            {"n": size, "h": entry_hash(bytes(keep.entry))},
        )


def checkpoint_files(vault: Vault) -> list[Path]:
    # The attacker works beside the port, on the files the local adapter keeps.
    return sorted(vault.settings.objects_path.rglob("ledger+checkpoints+*"))


def delete_checkpoints(vault: Vault, *, reset_state: bool) -> None:
    """Delete every checkpoint record and stored copy; with `reset_state`, the state row too."""
    with vault.engine.begin() as connection:
        connection.execute(text("DELETE FROM ledger_checkpoints"))
        if reset_state:
            connection.execute(
                text("UPDATE ledger_state SET size = 0, hash = :root WHERE name = 'checkpoint'"),
                {"root": EMPTY_ROOT},
            )
    for path in checkpoint_files(vault):
        path.unlink()


def failed_with(result: Any, *lines: str) -> None:
    assert result.exit_code == 1, result.output
    for line in lines:
        assert line in result.output, result.output


def test_untouched_history_verifies_and_reports_its_unsigned_tail(
    vault: Vault, history: int, run_verify: Callable[..., Any]
) -> None:
    result = run_verify()
    assert result.exit_code == 0, result.output
    assert f"unsigned tail: {TAIL} entries after checkpoint {history}" in result.output
    report = verify.verify(vault)
    assert report.ok and report.unsigned_tail == TAIL


def test_attack_a_rewrite_after_deleting_every_checkpoint(
    vault: Vault, history: int, run_verify: Callable[..., Any]
) -> None:
    delete_checkpoints(vault, reset_state=True)
    rewrite_from(vault.engine, vault.sessions, 2, lambda details: details.update(n=99))
    failed_with(
        run_verify(),
        f"entry 2-{history + TAIL - 1}: {verify.ENTRY_MAC}",
        f"checkpoint state: {verify.STATE_MAC}",
    )


def test_deleting_every_checkpoint_alone_is_found(
    vault: Vault, history: int, run_verify: Callable[..., Any]
) -> None:
    delete_checkpoints(vault, reset_state=False)
    failed_with(run_verify(), f"checkpoint {history}: {verify.CHECKPOINT_GONE}")


def test_attack_b_dropped_tail_with_the_head_fixed(
    vault: Vault, history: int, run_verify: Callable[..., Any]
) -> None:
    drop_tail(vault, history)
    failed_with(run_verify(), f"ledger head: {verify.HEAD_MAC}")


def test_attack_c_rewrite_after_the_last_checkpoint(
    vault: Vault, history: int, run_verify: Callable[..., Any]
) -> None:
    rewrite_from(vault.engine, vault.sessions, history + 1, lambda details: details.update(n=99))
    failed_with(
        run_verify(),
        f"entry {history + 1}-{history + TAIL - 1}: {verify.ENTRY_MAC}",
        f"ledger head: {verify.HEAD_MAC}",
    )


def test_deleted_locked_checkpoint_objects(
    vault: Vault, history: int, run_verify: Callable[..., Any]
) -> None:
    for path in checkpoint_files(vault):
        path.unlink()
    failed_with(run_verify(), f"checkpoint {history}: {verify.CHECKPOINT_COPY}")


def test_blanked_macs_are_missing_not_refilled(
    vault: Vault, history: int, run_verify: Callable[..., Any]
) -> None:
    # Blanking the MACs does not make the next open compute them again: the key exists.
    allow_tampering(vault.engine)
    with vault.engine.begin() as connection:
        connection.execute(text("UPDATE ledger_entries SET mac = NULL WHERE seq >= 3"))
    failed_with(run_verify(), f"entry 3-{history + TAIL - 1}: {verify.ENTRY_MAC}")
    failed_with(run_verify(), f"entry 3-{history + TAIL - 1}: {verify.ENTRY_MAC}")


def test_checkpointer_refuses_to_sign_a_forged_tail(vault: Vault, history: int) -> None:
    rewrite_from(vault.engine, vault.sessions, history + 1, lambda details: details.update(n=99))
    with pytest.raises(ledger.LedgerError, match="no valid MAC: refusing to sign"):
        vault.checkpointer.checkpoint()


def test_append_needs_the_ledger_key(vault: Vault) -> None:
    bare = type(vault.sessions)(vault.engine)
    with bare.begin() as session, pytest.raises(ledger.LedgerError, match="ledger MAC key"):
        ledger.append(session, actor="tina", action=actions.DECRYPTION)


# --- trusted checkpoints ----------------------------------------------------------------------


def pinned(vault: Vault, tmp_path: Path, signed: str, name: str = "seen.note") -> str:
    path = tmp_path / name
    path.write_text(signed, encoding="utf-8")
    return str(path)


def test_trusted_checkpoint_consistent_with_the_ledger(
    vault: Vault, history: int, tmp_path: Path, run_verify: Callable[..., Any]
) -> None:
    with vault.sessions() as session:
        seen = ledger.checkpoints.get(session, history).note
    result = run_verify("--trusted-checkpoint", pinned(vault, tmp_path, seen))
    assert result.exit_code == 0, result.output
    assert f"trusted checkpoint {history}: consistent" in result.output


def test_trusted_checkpoint_larger_than_the_ledger(
    vault: Vault, history: int, tmp_path: Path, run_verify: Callable[..., Any]
) -> None:
    # The auditor saw the whole ledger signed; then the attacker dropped the tail, its
    # checkpoint and its copy.
    seen = vault.checkpointer.checkpoint()
    allow_tampering(vault.engine)
    with vault.engine.begin() as connection:
        connection.execute(text("DELETE FROM ledger_entries WHERE seq >= :n"), {"n": history})
        connection.execute(text("DELETE FROM ledger_checkpoints WHERE size = :n"), {"n": seen.size})
    checkpoint_files(vault)[-1].unlink()
    failed_with(
        run_verify("--trusted-checkpoint", pinned(vault, tmp_path, seen.note)),
        f"trusted checkpoint {seen.size}: {verify.TRUSTED_AHEAD}",
    )


def test_trusted_checkpoint_of_a_forked_history(
    vault: Vault, history: int, tmp_path: Path, run_verify: Callable[..., Any]
) -> None:
    # A checkpoint signed by the log key over other entries (a fork shown to the auditor).
    log = vault.checkpointer
    fork = note.Checkpoint(origin=log.origin, size=history, root=bytes(32))
    signer = keys_signer(vault)
    forked = note.sign(fork.text(), log.origin, signer)
    failed_with(
        run_verify("--trusted-checkpoint", pinned(vault, tmp_path, forked)),
        f"trusted checkpoint {history}: {verify.TRUSTED_FORK}",
    )


def test_trusted_checkpoint_not_signed_by_the_log_key(
    vault: Vault, history: int, tmp_path: Path, run_verify: Callable[..., Any]
) -> None:
    log = vault.checkpointer
    with vault.sessions() as session:
        root = ledger.checkpoints.get(session, history).root
    body = note.Checkpoint(origin=log.origin, size=history, root=root).text()
    other = note.sign(body, log.origin, keys.LogSigner.generate())
    failed_with(
        run_verify("--trusted-checkpoint", pinned(vault, tmp_path, other)),
        f"trusted checkpoint: {verify.TRUSTED_SIGNATURE}",
    )


def keys_signer(vault: Vault) -> keys.LogSigner:
    return keys.LogSigner.from_bytes(vault.keyring.secret(LOG_SIGNING))


def test_a_vault_made_before_macs_gets_them_on_its_first_open(
    vault: Vault, history: int, run_verify: Callable[..., Any]
) -> None:
    # Back to the code before MACs: its schema (revision 0006) and a keyring without the key.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with vault.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006_jobs_claim_order")
    vault.keyring._mutate(lambda content: content.secrets.__delitem__(mac.SECRET))
    assert not vault.keyring.has_secret(mac.SECRET)
    # The first open with the passphrase (here `tvault verify`'s) migrates, keys and MACs.
    result = run_verify()
    assert result.exit_code == 0, result.output
    assert f"unsigned tail: {TAIL} entries after checkpoint {history}" in result.output
    reopened = Keyring.open(vault.settings.keyring_path, PASSPHRASE)
    key = reopened.secret(mac.SECRET)
    with vault.engine.connect() as connection:
        stored = connection.execute(text("SELECT entry_hash, mac FROM ledger_entries")).all()
    assert stored and all(bytes(m) == mac.entry_mac(key, bytes(h)) for h, m in stored)


def test_checkpointer_refuses_to_sign_over_a_dropped_tail(vault: Vault, history: int) -> None:
    drop_tail(vault, history + 1)
    with pytest.raises(ledger.LedgerError, match="head has no valid MAC"):
        vault.checkpointer.checkpoint()


def test_checkpointer_refuses_to_sign_over_a_reset_checkpoint_state(
    vault: Vault, history: int
) -> None:
    delete_checkpoints(vault, reset_state=True)
    with pytest.raises(ledger.LedgerError, match="checkpoint state has no valid MAC"):
        vault.checkpointer.checkpoint()


def test_a_keyring_older_than_the_macs_is_refused(vault: Vault, history: int) -> None:
    # A keyring without the ledger key, beside a ledger that has MACs: no new key may bless it.
    vault.keyring._mutate(lambda content: content.secrets.__delitem__(mac.SECRET))
    with pytest.raises(ledger.LedgerError, match="keyring is older than the database"):
        mac.ensure_key(vault.keyring, type(vault.sessions)(vault.engine))
    assert not vault.keyring.has_secret(mac.SECRET)

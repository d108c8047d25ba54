"""Key rotation in the ledger and recovery shares (client-side signing of statements, which
runs `ssh-keygen`: tests/integration/test_signed_ssh.py)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import keys
from tests.unit.vault.conftest import PASSPHRASE, principal
from tests.unit.vault.deposit_support import deposit, fields
from vault import approvals, item_keys, ledger, verify
from vault.accounts import add_user
from vault.cases import create_case
from vault.cli import app
from vault.db import ItemKey
from vault.errors import Forbidden
from vault.parts import Vault
from vault.rotation import rotate

SHARE = re.compile(r"^share \d+: (.+)$", re.M)


@pytest.fixture
def items(vault: Vault) -> list[str]:
    case = create_case(vault, principal(vault, "tina"), "Case 1").id
    return [
        deposit(vault, "tina", b"testimony %d " % n * 999, fields(case)).item_id for n in range(3)
    ]


def versions(vault: Vault) -> set[int]:
    with vault.sessions() as session:
        rows = session.execute(select(ItemKey.item_id, ItemKey.wrapped))
        return {
            keys.Keyring.version_of(item_keys.master_wrapped(vault.keyring, i, w)) for i, w in rows
        }


def test_rotation_rewraps_every_item_key_in_batches_and_is_a_ledger_entry(
    vault: Vault, items: list[str]
) -> None:
    assert versions(vault) == {1}
    done = rotate(vault, "admin", batch=2)
    assert (done.version, done.previous, done.rewrapped, done.approval) == (2, 1, 3, None)
    assert versions(vault) == {2}
    assert vault.keyring.versions == (1, 2)
    with vault.sessions() as session:
        last = list(ledger.entries(session))[-1]
    assert (last.action, last.actor) == (ledger.actions.KEY_ROTATION, "admin")
    assert last.details["version"] == 2 and last.details["rewrapped"] == 3
    # Retiring after a second rotation leaves one master key, and every item still opens.
    # (DESIGN.md promise 10: retiring needs a second custodian's approval.)
    done = rotate(vault, "admin", retire=True)
    assert done.approval is not None and vault.keyring.versions == (1, 2, 3)
    with vault.sessions.begin() as session:
        add_user(session, "cleo", "custodian", vault.clock())
    approvals.approve(vault, principal(vault, "cleo"), done.approval)
    assert vault.keyring.versions == (3,)
    report = verify.verify(vault)
    assert report.ok, report.failures
    assert report.items == 3


def test_only_key_managers_rotate(vault: Vault, items: list[str]) -> None:
    with pytest.raises(Forbidden):
        rotate(vault, "tina")
    assert vault.keyring.versions == (1,) and versions(vault) == {1}


def test_split_and_recover_through_the_cli(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    home = str(vault.settings.home)
    monkeypatch.setenv("TVAULT_PASSPHRASE", PASSPHRASE)
    runner = CliRunner()
    split = runner.invoke(
        app, ["keys", "split", "--shares", "3", "--threshold", "2", "--vault", home]
    )
    assert split.exit_code == 0, split.output
    shares = SHARE.findall(split.output)
    assert len(shares) == 3
    vault.keyring.reload()  # the split sealed the file under a fresh keyring key
    assert keys.combine_shares(shares[1:]) == vault.keyring.recovery_key()
    one = runner.invoke(app, ["keys", "recover", "--share", shares[0], "--vault", home])
    assert one.exit_code == 1 and "needed" in one.output
    monkeypatch.setenv("TVAULT_PASSPHRASE", "a new passphrase for the trustees")
    done = runner.invoke(
        app, ["keys", "recover", "--share", shares[0], "--share", shares[2], "--vault", home]
    )
    assert done.exit_code == 0, done.output
    reopened = keys.Keyring.open(vault.settings.keyring_path, "a new passphrase for the trustees")
    assert reopened.recovery_key() == vault.keyring.recovery_key()
    with pytest.raises(keys.KeyringError):
        keys.Keyring.open(vault.settings.keyring_path, PASSPHRASE)
    bad = runner.invoke(
        app, ["keys", "split", "--shares", "2", "--threshold", "3", "--vault", home]
    )
    assert bad.exit_code == 2


def test_a_new_split_makes_every_earlier_share_set_useless(
    vault: Vault, items: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, path = str(vault.settings.home), vault.settings.keyring_path
    monkeypatch.setenv("TVAULT_PASSPHRASE", PASSPHRASE)
    runner = CliRunner()
    split = ["keys", "split", "--shares", "3", "--threshold", "2", "--vault", home]
    old = SHARE.findall(runner.invoke(app, split).output)
    new = SHARE.findall(runner.invoke(app, split).output)
    assert len(old) == len(new) == 3
    # Every pair of the old set rebuilds a key that opens nothing any more.
    for pair in ([old[0], old[1]], [old[0], old[2]], [old[1], old[2]]):
        with pytest.raises(keys.KeyringError, match="does not open"):
            keys.Keyring.recover(path, keys.combine_shares(pair), "a trustee's new passphrase")
    monkeypatch.setenv("TVAULT_PASSPHRASE", "a trustee's new passphrase")
    stale = runner.invoke(
        app, ["keys", "recover", "--share", old[0], "--share", old[1], *split[-2:]]
    )
    assert stale.exit_code == 1 and "cannot recover" in stale.output
    keys.Keyring.open(path, PASSPHRASE)  # the refused attempts left the file as it was
    # A process that opened the vault before the re-split still changes the keyring...
    assert rotate(vault, "admin").version == 2
    # ...and the new set recovers everything, items included.
    done = runner.invoke(
        app, ["keys", "recover", "--share", new[1], "--share", new[2], *split[-2:]]
    )
    assert done.exit_code == 0, done.output
    recovered = keys.Keyring.open(path, "a trustee's new passphrase")
    assert recovered.versions == (1, 2)
    with vault.sessions() as session:
        for item_id, wrapped in session.execute(select(ItemKey.item_id, ItemKey.wrapped)):
            item_keys.open_identity(recovered, item_id, wrapped)

"""Passwords of local accounts (issue 19 point 2): Argon2id hashes, `tvault users passwd`,
one-time links; each change a ledger entry (promise 9)."""

from __future__ import annotations

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from typer.testing import CliRunner

from tests.unit.vault.conftest import PASSPHRASE
from vault import ledger, passwords
from vault.accounts import OFFLINE, OFFLINE_ACTOR
from vault.cli import app as cli
from vault.cli import common
from vault.db import User
from vault.db.web_tables import AccountSecret
from vault.errors import NotFound, Unauthenticated
from vault.parts import Vault


@pytest.fixture
def fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The weakest Argon2id parameters, for tests of the commands rather than of the hash: the
    first test stores and checks one at production parameters (0.1-0.2 s of CPU each here)."""
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def _env(vault: Vault) -> dict[str, str]:
    env = {"TVAULT_HOME": str(vault.settings.home), "TVAULT_PASSPHRASE": PASSPHRASE}
    if vault.settings.database_url:
        env["TVAULT_DATABASE_URL"] = vault.settings.database_url
    return env


def _stored(vault: Vault, name: str) -> str | None:
    with vault.sessions() as session:
        user = session.scalar(select(User).where(User.name == name))
        assert user is not None
        row = session.get(AccountSecret, user.id)
        return None if row is None else row.password_hash


def _changes(vault: Vault) -> list[ledger.LedgerEntry]:
    with vault.sessions() as session:
        return [e for e in ledger.entries(session) if e.action == ledger.actions.PASSWORD_CHANGE]


def test_passwd_reads_one_line_from_stdin_and_stores_an_argon2id_hash(vault: Vault) -> None:
    done = CliRunner().invoke(
        cli, ["users", "passwd", "tina"], env=_env(vault), input="a piped password\n"
    )
    assert done.exit_code == 0, done.output
    stored = _stored(vault, "tina")
    # argon2-cffi's defaults: Argon2id, 64 MiB, 3 passes (RFC 9106's second recommendation).
    assert stored is not None and stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert "a piped password" not in stored
    assert passwords.check_password(vault, "tina", "a piped password").name == "tina"
    with pytest.raises(Unauthenticated):
        passwords.check_password(vault, "tina", "a piped password ")
    [change] = _changes(vault)
    assert change.actor == OFFLINE_ACTOR and change.details["via"] == OFFLINE
    assert change.details["account"] == "tina"


@pytest.mark.usefixtures("fast_hashes")
def test_passwd_asks_twice_on_a_terminal(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "terminal", lambda: True)
    done = CliRunner().invoke(
        cli,
        ["users", "passwd", "tina"],
        env=_env(vault),
        input="typed twice here\ntyped twice here\n",
    )
    assert done.exit_code == 0, done.output
    assert done.output.count("New password") == 1 and "Repeat for confirmation" in done.output
    assert passwords.check_password(vault, "tina", "typed twice here").name == "tina"


def test_passwd_refuses_a_short_password_or_no_line_and_changes_nothing(vault: Vault) -> None:
    short = CliRunner().invoke(cli, ["users", "passwd", "tina"], env=_env(vault), input="short\n")
    assert short.exit_code == 2 and "10 to 256 characters" in short.output
    empty = CliRunner().invoke(cli, ["users", "passwd", "tina"], env=_env(vault), input="")
    assert empty.exit_code == 2 and "Traceback" not in empty.output
    nobody = CliRunner().invoke(
        cli, ["users", "passwd", "nobody"], env=_env(vault), input="long enough pw\n"
    )
    assert nobody.exit_code == 1 and "no account" in nobody.output
    assert _stored(vault, "tina") is None and not _changes(vault)


@pytest.mark.usefixtures("fast_hashes")
def test_a_link_is_printed_once_and_spent_by_its_use(vault: Vault) -> None:
    done = CliRunner().invoke(
        cli, ["users", "link", "tina", "--url", "https://vault.example/"], env=_env(vault)
    )
    assert done.exit_code == 0, done.output
    url = done.stdout.strip()
    assert url.startswith("https://vault.example/set-password/")
    secret = url.rsplit("/", 1)[1]
    assert passwords.link_account(vault, secret) == "tina"
    passwords.use_link(vault, secret, "chosen via the link")
    with pytest.raises(NotFound):
        passwords.use_link(vault, secret, "and once more please")
    # A newer link supersedes an unused older one.
    _, first, _ = passwords.issue_link(vault, "tina", actor=OFFLINE_ACTOR, via=OFFLINE)
    passwords.issue_link(vault, "tina", actor=OFFLINE_ACTOR, via=OFFLINE)
    with pytest.raises(NotFound):
        passwords.link_account(vault, first)


def test_totp_off_turns_a_lost_second_factor_off_offline(vault: Vault) -> None:
    secret = passwords.new_totp_secret()
    passwords.enable_totp(vault, "tina", secret, pyotp.TOTP(secret).at(vault.clock()))
    done = CliRunner().invoke(cli, ["users", "totp-off", "tina"], env=_env(vault))
    assert done.exit_code == 0 and "second factor of tina turned off" in done.stdout, done.output
    with vault.sessions() as session:
        account = session.scalar(select(User).where(User.name == "tina"))
        assert account is not None and not passwords.has_totp(vault, account.id)
        changes = [
            e for e in ledger.entries(session) if e.action == ledger.actions.SECOND_FACTOR_CHANGE
        ]
    assert [(e.actor, e.details["enabled"], e.details["via"]) for e in changes][-1] == (
        OFFLINE_ACTOR,
        False,
        OFFLINE,
    )
    again = CliRunner().invoke(cli, ["users", "totp-off", "tina"], env=_env(vault))
    assert again.exit_code == 0 and "tina had no second factor" in again.stdout
    nobody = CliRunner().invoke(cli, ["users", "totp-off", "nobody"], env=_env(vault))
    assert nobody.exit_code == 1

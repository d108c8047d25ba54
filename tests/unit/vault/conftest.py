"""Fixtures of the vault core tests: a fresh vault on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from keys import KdfParams
from keys import keyring as keyring_module
from policies import Principal
from tests.unit.vault.template_support import (
    FAST_KDF,
    PASSPHRASE,
    copy_vault,
    template,
    working_schema,
)
from vault.accounts import find_user, principal_of
from vault.cli.verify import verify as verify_command
from vault.parts import Vault

__all__ = ["FAST_KDF", "PASSPHRASE", "principal", "stored_path"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own TVAULT_* settings must not leak into a test vault."""
    import os

    for name in list(os.environ):
        if name.startswith("TVAULT_") and not name.startswith("TVAULT_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True, scope="session")
def _fast_kdf_derived_once() -> Iterator[None]:
    """Every test vault is a copy of one template: one keyring file, one salt, one passphrase.
    Its key is derived once per process and remembered; a pure function's result, so opening
    still checks the passphrase. Only for the tests' own weak parameters (`FAST_KDF`): any
    other derivation runs in full, as in production."""
    derive = keyring_module._derive
    derived: dict[tuple[str, bytes], bytes] = {}

    def remembered(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
        if params != FAST_KDF:
            return derive(passphrase, salt, params)
        if (passphrase, salt) not in derived:
            derived[passphrase, salt] = derive(passphrase, salt, params)
        return derived[passphrase, salt]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keyring_module, "_derive", remembered)
        yield


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Each use-case test runs on the embedded SQLite (None) and on PostgreSQL."""
    if request.param == "sqlite":
        yield None
        return
    # One schema, put back to the template's rows after each test (template_support.py).
    working = working_schema(request)
    yield working.acquire()
    working.restore()


@pytest.fixture
def vault(
    tmp_path: Path, database_url: str | None, request: pytest.FixtureRequest
) -> Iterator[Vault]:
    """A fresh vault with the custodian `admin`, therapists `tina` and `theo`, a lawyer: a
    copy of the session's template (tests/unit/vault/template_support.py), its own home under
    `tmp_path` and, on PostgreSQL, its own schema."""
    made = template(request, "sqlite" if database_url is None else "postgres")
    created = copy_vault(made, tmp_path / "vault", database_url)
    yield created
    created.close()


def principal(vault: Vault, name: str) -> Principal:
    """Return the current principal of the account `name` (grants read from the database)."""
    with vault.sessions() as session:
        return principal_of(session, find_user(session, name))


def stored_path(vault: Vault, name: str) -> Path:
    """The local store's file of object `name`, for tests that tamper beside the port."""
    [path] = list(vault.settings.objects_path.rglob(name.replace("/", "+")))
    return path


@pytest.fixture
def run_verify(vault: Vault) -> Callable[..., Result]:
    """Run `tvault verify ARGS` on `vault` as an operator would: it opens the vault itself."""
    app = typer.Typer()
    app.command()(verify_command)
    app.command("noop")(lambda: None)  # keep `verify` a named sub-command, as in `tvault`
    env = {"TVAULT_HOME": str(vault.settings.home), "TVAULT_PASSPHRASE": PASSPHRASE}
    if vault.settings.database_url:
        env["TVAULT_DATABASE_URL"] = vault.settings.database_url

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["verify", *args], env=env)

    return run

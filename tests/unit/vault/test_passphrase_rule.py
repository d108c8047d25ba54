"""`tvault init` refuses a weak passphrase unless told to (issue 20, point 3), and tells the
custodian to make recovery shares."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from vault import passphrases
from vault.cli import app


@pytest.mark.parametrize(
    "weak",
    ["short", "password1234567", "aaaaaaaaaaaaaaaaaaaa", "admin admin admin 1"],
)
def test_the_rule_names_what_is_weak(weak: str) -> None:
    why = passphrases.weakness(weak, ["admin"])
    assert why is not None and ("characters" in why or "guesses" in why)


def test_a_long_unusual_passphrase_meets_the_rule() -> None:
    assert passphrases.weakness("river stone quiet lantern forty two", ["admin"]) is None


def _init(home: Path, secret: str, *args: str) -> tuple[int, str]:
    env = {"TVAULT_HOME": str(home), "TVAULT_PASSPHRASE": secret}
    done = CliRunner().invoke(app, ["init", "--admin", "admin", *args], env=env)
    return done.exit_code, done.output


def test_init_refuses_a_weak_passphrase_and_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "vault"
    code, output = _init(home, "password1234567")
    assert code == 2
    assert "too weak" in output and "--allow-weak-passphrase" in output
    assert "Traceback" not in output
    assert not home.exists() or not any(home.iterdir())


def test_init_with_the_flag_takes_it_and_tells_how_to_make_shares(tmp_path: Path) -> None:
    home = tmp_path / "vault"
    code, output = _init(home, "password1234567", "--allow-weak-passphrase")
    assert code == 0, output
    assert (home / "tvault.toml").exists()
    assert f"tvault keys split --shares 5 --threshold 3 --vault {home}" in output
    assert "lost for good" in output

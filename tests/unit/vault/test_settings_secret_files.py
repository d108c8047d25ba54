"""Secrets from files (Docker secrets): TVAULT_PASSPHRASE_FILE and TVAULT_S3_SECRET_KEY_FILE."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from vault.settings import load_settings


def _secret(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_the_passphrase_and_s3_secret_are_read_from_their_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passphrase = _secret(tmp_path, "passphrase", "correct horse battery\n")
    s3 = _secret(tmp_path, "s3", "s3-secret-value\n")
    monkeypatch.setenv("TVAULT_PASSPHRASE_FILE", str(passphrase))
    monkeypatch.setenv("TVAULT_S3_SECRET_KEY_FILE", str(s3))
    settings = load_settings(tmp_path)
    assert settings.passphrase is not None and settings.s3_secret_key is not None
    # One trailing newline stripped (what `echo` and most editors leave), nothing else.
    assert settings.passphrase.get_secret_value() == "correct horse battery"
    assert settings.s3_secret_key.get_secret_value() == "s3-secret-value"
    assert "correct horse" not in repr(settings)


def test_only_one_trailing_newline_is_stripped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _secret(tmp_path, "passphrase", " spaced \n\n")
    monkeypatch.setenv("TVAULT_PASSPHRASE_FILE", str(path))
    settings = load_settings(tmp_path)
    assert settings.passphrase is not None
    assert settings.passphrase.get_secret_value() == " spaced \n"


def test_the_file_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _secret(tmp_path, "passphrase", "first\n")
    monkeypatch.setenv("TVAULT_PASSPHRASE_FILE", str(path))
    settings = load_settings(tmp_path)
    path.write_text("second\n")
    assert settings.passphrase is not None
    assert settings.passphrase.get_secret_value() == "first"


@pytest.mark.parametrize("variable", ["TVAULT_PASSPHRASE_FILE", "TVAULT_S3_SECRET_KEY_FILE"])
def test_an_unreadable_file_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    missing = tmp_path / "no-such-secret"
    monkeypatch.setenv(variable, str(missing))
    with pytest.raises(ValidationError) as caught:
        load_settings(tmp_path)
    message = str(caught.value)
    assert str(missing) in message
    assert variable.removeprefix("TVAULT_").lower() in message


def test_an_empty_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _secret(tmp_path, "passphrase", "\n")
    monkeypatch.setenv("TVAULT_PASSPHRASE_FILE", str(path))
    with pytest.raises(ValidationError, match="empty"):
        load_settings(tmp_path)


def test_a_value_and_a_file_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _secret(tmp_path, "passphrase", "from-file\n")
    monkeypatch.setenv("TVAULT_PASSPHRASE_FILE", str(path))
    monkeypatch.setenv("TVAULT_PASSPHRASE", "from-env")
    with pytest.raises(ValidationError, match="not both"):
        load_settings(tmp_path)

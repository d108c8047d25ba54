"""Settings: defaults, tvault.toml in the vault directory, TVAULT_* variables winning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from vault.settings import SETTINGS_FILE, load_settings


def test_defaults_give_the_embedded_vault(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.home == tmp_path
    assert settings.effective_database_url == f"sqlite+pysqlite:///{tmp_path / 'vault.db'}"
    assert settings.object_store == "local"
    assert settings.passphrase is None


def test_the_toml_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / SETTINGS_FILE).write_text('max_upload_bytes = 1234\ntoken_audience = "a"\n')
    assert load_settings(tmp_path).max_upload_bytes == 1234
    monkeypatch.setenv("TVAULT_MAX_UPLOAD_BYTES", "99")
    settings = load_settings(tmp_path)
    assert settings.max_upload_bytes == 99
    assert settings.token_audience == "a"


def test_home_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TVAULT_HOME", str(tmp_path))
    assert load_settings().home == tmp_path


def test_a_malformed_setting_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TVAULT_OBJECT_STORE", "floppy")
    with pytest.raises(ValidationError):
        load_settings(tmp_path)


def test_the_passphrase_is_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TVAULT_PASSPHRASE", "hunter2-secret")
    settings = load_settings(tmp_path)
    assert settings.passphrase is not None
    assert "hunter2-secret" not in repr(settings)
    assert settings.passphrase.get_secret_value() == "hunter2-secret"


def test_docs_ingest_names_exactly_the_extraction_settings_the_vault_reads() -> None:
    from vault.settings import Settings

    docs = (Path(__file__).parents[3] / "docs" / "ingest.md").read_text()
    named = set(re.findall(r"TVAULT_(EXTRACT_[A-Z0-9_]+)", docs))
    read = {name.upper() for name in Settings.model_fields if name.startswith("extract_")}
    # A setting the page names must exist (a reader sets it and expects an effect), and each
    # extraction setting the vault reads must be on the page.
    assert named == read

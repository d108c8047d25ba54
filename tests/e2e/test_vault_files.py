"""Through the CLI: sealed metadata never in a URL; every file of the vault private (0600/0700).

The CLI sends titles and filenames in `Tvault-*` headers and notes in a multipart body: the
server refuses them in the query string, so a deposit that succeeds proves they were not there.
After deposits are extracted and indexed, the vault directory holds nothing another local
user could read: the database and its WAL, the index, objects, keyring and settings.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, settled, start_server, tvault

TITLE = "Declaración de Rosa Quispe"
TEXT = "Declaración sobre la detención en la comisaría de Ayacucho. " * 40


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("e2e-files") / "vault"
    server = start_server(home)
    yield server
    server.stop()


def _env(server: Server) -> dict[str, str]:
    return {**server.env, "TVAULT_URL": server.url, "TVAULT_TOKEN": server.token("tina")}


def _deposit(server: Server, case: str, file: Path, *extra: str) -> str:
    done = tvault(
        *("deposit", str(file), "--case", case, "--consent", "therapy,legal", "--json"),
        *extra,
        env=_env(server),
    )
    item: str = json.loads(done.stdout)["id"]
    return item


def test_cli_deposits_carry_sealed_fields_outside_the_url(served: Server, tmp_path: Path) -> None:
    with served.client("tina") as tina:
        case = tina.post("/v1/cases", json={"name": "Caso"}).json()["id"]
        file = tmp_path / "declaración.txt"
        file.write_text(TEXT, encoding="utf-8")
        plain = _deposit(served, case, file, "--title", TITLE, "--language", "ES-419")
        noted = _deposit(served, case, file, "--title", TITLE, "--notes", "Llamar — María " * 500)
        first, second = (tina.get(f"/v1/items/{i}").json() for i in (plain, noted))
    assert (first["title"], first["filename"], first["language"]) == (
        TITLE,
        "declaración.txt",
        "es-419",
    )
    assert second["notes"] == "Llamar — María " * 500 and second["title"] == TITLE
    # An old client that puts the title in the URL is refused, and told where it goes.
    with served.client("tina") as tina:
        old = tina.post(
            f"/v1/cases/{case}/items",
            params={"kind": "testimony", "title": TITLE, "consent": "therapy"},
            content=b"x",
        )
    assert old.status_code == 400 and "Tvault-Title" in old.json()["detail"]


def test_the_cli_refuses_an_unknown_language_before_sending(served: Server, tmp_path: Path) -> None:
    file = tmp_path / "a.txt"
    file.write_text("a", encoding="utf-8")
    done = tvault(
        *("deposit", str(file), "--case", "a" * 26, "--consent", "therapy"),
        *("--language", "es-Rosa-Quispe"),
        env=_env(served),
        check=False,
    )
    assert done.returncode == 2 and "--language" in done.stderr


def test_every_file_of_the_vault_is_private_after_deposit_and_index(
    served: Server, tmp_path: Path
) -> None:
    with served.client("tina") as tina:
        case = tina.post("/v1/cases", json={"name": "Caso de archivos"}).json()["id"]
        file = tmp_path / "t.txt"
        file.write_text(TEXT, encoding="utf-8")
        item = _deposit(served, case, file, "--title", "T")
        assert settled(tina, item)["state"] == "indexed"
    loose: list[str] = []
    seen = {"vault.db": False, "index": False, "keyring": False, "objects": False}
    for path in [served.home, *served.home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        top = path.relative_to(served.home).parts[:1]
        if top and top[0] in seen:
            seen[top[0]] = True
        if (path.is_dir() and mode != 0o700) or (not path.is_dir() and mode & 0o077):
            loose.append(f"{path.relative_to(served.home)} {oct(mode)}")
    assert loose == []
    assert all(seen.values()), seen

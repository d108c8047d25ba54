"""OCR end to end: deposit generated scans through the API, the embedded worker recognises them,
search finds a word that exists only as pixels and shows it in a snippet; the item view and
`tvault status` say the text came from OCR; a decompression bomb ends as a clear failure."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import httpx
import pytest

from tests import scans
from tests.e2e.conftest import settled, start_server, tvault
from vault.headers import to_headers

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="needs Debian's tesseract-ocr (make tools)"
)


def _png(text: str) -> bytes:
    buffer = io.BytesIO()
    scans.render(text).save(buffer, "PNG")
    return buffer.getvalue()


def _deposit(client: httpx.Client, case: str, data: bytes) -> str:
    response = client.post(
        f"/v1/cases/{case}/items",
        content=data,
        headers={
            "Content-Type": "image/png",
            **to_headers({"kind": "document", "title": "Escaneo", "consent": "legal,therapy"}),
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    item: str = response.json()["id"]
    return item


def test_a_scan_is_recognised_found_and_shown(tmp_path: Path) -> None:
    server = start_server(tmp_path / "vault")
    try:
        with server.client("tina") as tina:
            case = tina.post("/v1/cases", json={"name": "Escaneos"}).json()["id"]
            scan = _deposit(tina, case, _png(scans.SPANISH))
            bomb = scans.bomb_png(tmp_path / "bomb.png").read_bytes()
            hostile = _deposit(tina, case, bomb)

            view = settled(tina, scan)
            assert view["state"] == "indexed", view
            assert view["ocr"]["engine"] == "tesseract"
            assert view["ocr"]["languages"] == "spa+eng" and view["ocr"]["pages"] == 1
            assert view["ocr"]["confidence"] > 80
            assert {"step": "ocr", "state": "done"} in view["steps"]
            ingest = tina.get(f"/v1/items/{scan}/ingest").json()
            assert (
                ingest["steps"]
                == view["steps"]
                == [
                    {"step": "extract", "state": "done"},
                    {"step": "ocr", "state": "done"},
                    {"step": "index", "state": "done"},
                ]
            )

            found = tina.post("/v1/search", json={"q": "comisaria"}).json()
            assert [hit["item_id"] for hit in found["hits"]] == [scan], found
            assert "<mark>comisaría</mark>" in found["hits"][0]["snippet"]

            failed = settled(tina, hostile)
            assert failed["state"] == "failed"
            assert failed["state_reason"].startswith("OCR refused: an image")
            assert "50,000,000-pixel limit" in failed["state_reason"]
            assert {"step": "ocr", "state": "failed"} in failed["steps"]
            # The deposit itself is untouched.
            content = tina.get(f"/v1/items/{hostile}/content")
            assert hashlib.sha256(content.content).digest() == hashlib.sha256(bomb).digest()

        env = {**server.env, "TVAULT_URL": server.url, "TVAULT_TOKEN": server.token("tina")}
        shown = tvault("status", scan, env=env).stdout
        assert "steps: extract done, ocr done, index done" in shown
        assert "text: from OCR (tesseract" in shown and "mean confidence" in shown
    finally:
        server.stop()
    assert "comisar" not in server.log.read_text(errors="replace")

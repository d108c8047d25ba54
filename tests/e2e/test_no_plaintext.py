"""DESIGN.md promise 1: nothing readable at rest, and nothing sealed in the server's log.

Markers go into the content, the title, the original filename, the notes and the case name;
then every file under the vault directory (objects, the SQLite database and its WAL, temporary
directories) and the server's log is searched for each marker in every encoding it could take.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from tests.e2e.conftest import Server, start_server
from tests.e2e.scan_support import every_file, findings
from vault.headers import to_headers


def test_the_scan_finds_markers_it_should(tmp_path: Path) -> None:
    # The control: the scan sees a marker in each encoding, anywhere in a file.
    marker = f"ctl{secrets.token_hex(8)}"
    for n, form in enumerate(
        [
            marker.encode(),
            marker.encode("utf-16-le"),
            marker.encode("utf-16-be"),
            base64.b64encode(b"ab" + marker.encode() + b"cd"),
            base64.b64encode(b"a" + marker.encode()),
            base64.b64encode(marker.encode()),
        ]
    ):
        path = tmp_path / f"f{n}"
        path.write_bytes(b"prefix " + form + b" suffix")
        assert findings([path], {"control": marker}), form


def test_nothing_readable_at_rest_or_in_the_log(tmp_path: Path) -> None:
    server: Server = start_server(tmp_path / "vault")
    markers = {
        where: f"{where}mk{secrets.token_hex(10)}"
        for where in ("content", "title", "filename", "notes", "case")
    }
    try:
        with server.client("tina") as client:
            case = client.post("/v1/cases", json={"name": f"Case {markers['case']}"}).json()
            body = (f"Testimony {markers['content']} ".encode() * 20_000) + markers[
                "content"
            ].encode("utf-16-le")
            meta = {
                "kind": "testimony",
                "consent": "therapy",
                "title": f"Title {markers['title']}",
                "filename": f"{markers['filename']}.pdf",
                "notes": f"Notes {markers['notes']}",
            }
            raw = client.post(
                f"/v1/cases/{case['id']}/items", headers=to_headers(meta), content=body
            )
            assert raw.status_code == 201
            form = {k: v for k, v in meta.items() if k != "filename"}
            multi = client.post(
                f"/v1/cases/{case['id']}/items",
                data=form,
                files={"file": (f"{markers['filename']}.pdf", body, "application/pdf")},
            )
            assert multi.status_code == 201
            # A refused deposit must not leak either (its metadata reached the server).
            refused = client.post(
                f"/v1/cases/{case['id']}/items",
                headers=to_headers({**meta, "kind": "bad"}),
                content=body,
            )
            assert refused.status_code == 422
            # Those allowed still see the sealed fields.
            listed = client.get(f"/v1/cases/{case['id']}/items").json()
            assert {i["title"] for i in listed} == {meta["title"]}
            shown = client.get(f"/v1/items/{raw.json()['id']}").json()
            assert (shown["filename"], shown["notes"]) == (meta["filename"], meta["notes"])
            assert client.get("/v1/cases").json()[0]["name"] == f"Case {markers['case']}"
            assert client.get(f"/v1/items/{raw.json()['id']}/content").content == body
        # While the server runs (the SQLite WAL holds recent writes), and after it stops.
        running = findings(every_file(server.home, server.log), markers)
        assert running == []
    finally:
        server.stop()
    assert findings(every_file(server.home, server.log), markers) == []
    assert server.log.read_text(errors="replace").count("POST /v1/cases/") >= 2

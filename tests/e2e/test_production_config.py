"""The same vault on PostgreSQL and S3 (object lock), chosen by configuration alone."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest

from tests.e2e.conftest import start_server
from tests.s3server import S3Server, admin_client, moto_s3, s3_bucket
from vault.headers import to_headers

__all__ = ["moto_s3", "s3_bucket"]  # fixtures, registered by importing them

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def test_deposit_and_get_on_postgres_and_s3(
    tmp_path: Path, pg_schema_url: str, moto_s3: S3Server, s3_bucket: str
) -> None:
    settings = {
        "TVAULT_DATABASE_URL": pg_schema_url,
        "TVAULT_OBJECT_STORE": "s3",
        "TVAULT_S3_ENDPOINT": moto_s3.endpoint,
        "TVAULT_S3_ACCESS_KEY": moto_s3.access_key,
        "TVAULT_S3_SECRET_KEY": moto_s3.secret_key,
        "TVAULT_S3_BUCKET": s3_bucket,
        "TVAULT_S3_SECURE": "true",
        "TVAULT_S3_OBJECT_LOCK": "true",
        "TVAULT_S3_RETENTION_DAYS": "1",
    }
    if moto_s3.ca_file is not None:
        settings["TVAULT_S3_CA_FILE"] = str(moto_s3.ca_file)
    server = start_server(tmp_path / "vault", **settings)
    try:
        assert not (server.home / "vault.db").exists()
        assert not (server.home / "objects").exists()
        body = secrets.token_bytes(3 * 1024 * 1024 + 17)
        meta = {"kind": "media", "title": "Clip", "consent": "therapy"}
        with server.client("tina") as client:
            case = client.post("/v1/cases", json={"name": "S3 case"}).json()["id"]
            refused = client.post(
                f"/v1/cases/{case}/items", headers=to_headers({**meta, "kind": "x"}), content=body
            )
            assert refused.status_code == 422
            made = client.post(f"/v1/cases/{case}/items", headers=to_headers(meta), content=body)
            assert made.status_code == 201, made.text
            assert made.json()["sha256"] == hashlib.sha256(body).hexdigest()
            assert client.get(f"/v1/items/{made.json()['id']}/content").content == body
        with admin_client(moto_s3) as s3:
            # Item objects only (the ledger's signed checkpoints live beside them).
            objects = [
                o.object_name for o in s3.list_objects(s3_bucket, prefix="items/", recursive=True)
            ]
            assert len(objects) == 1
            stored = s3.get_object(s3_bucket, objects[0])
            try:
                assert stored.read(22) == b"age-encryption.org/v1\n"
            finally:
                stored.close()
                stored.release_conn()
            # Locked once the deposit committed (moto answers retention in headers readably).
            headers = s3.stat_object(s3_bucket, objects[0]).metadata
            assert headers.get("x-amz-object-lock-mode") == "GOVERNANCE"
            assert headers.get("x-amz-object-lock-retain-until-date")
    finally:
        server.stop()

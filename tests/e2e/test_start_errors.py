"""`tvault serve` and `tvault worker` refuse to start with one line a person can act on.

A wrong passphrase, an unreachable database, `TVAULT_INDEX=elasticsearch` without
`TVAULT_ES_URL`, and an S3 bucket that is missing or lacks object lock: each stops the start
with exit code 1 and one line on stderr naming the problem and the fix, never a traceback. The
S3 cases run against the moto server the tests start (tests/s3server.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import base_env, free_port, tvault
from tests.s3server import S3Server, admin_client, moto_s3, s3_bucket

__all__ = ["moto_s3", "s3_bucket"]  # fixtures, registered by importing them

COMMANDS = [("serve", "--port", "0"), ("worker",)]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    made = tmp_path_factory.mktemp("e2e-start") / "vault"
    tvault("init", env=base_env(made))
    return made


def _refused(env: dict[str, str], *needles: str) -> None:
    for command in COMMANDS:
        done = tvault(*command, env=env, check=False)
        lines = done.stderr.splitlines()
        assert done.returncode == 1, (command, done.returncode, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("tvault: "), (command, done.stderr)
        assert "Traceback" not in done.stderr + done.stdout
        for needle in needles:
            assert needle in lines[0], (command, lines[0])


def test_a_wrong_passphrase(home: Path) -> None:
    env = base_env(home, TVAULT_PASSPHRASE="not the passphrase")
    _refused(env, "passphrase", "TVAULT_PASSPHRASE")


def test_an_unreachable_database(home: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://tvault:secret-pw@127.0.0.1:{port}/tvault"
    env = base_env(home, TVAULT_DATABASE_URL=url)
    _refused(env, "cannot reach the database", f"127.0.0.1:{port}", "TVAULT_DATABASE_URL")
    assert "secret-pw" not in tvault("worker", env=env, check=False).stderr


def test_elasticsearch_without_its_address(home: Path) -> None:
    _refused(base_env(home, TVAULT_INDEX="elasticsearch"), "TVAULT_ES_URL")


def _s3(server: S3Server, bucket: str) -> dict[str, str]:
    settings = {
        "TVAULT_OBJECT_STORE": "s3",
        "TVAULT_S3_ENDPOINT": server.endpoint,
        "TVAULT_S3_ACCESS_KEY": server.access_key,
        "TVAULT_S3_SECRET_KEY": server.secret_key,
        "TVAULT_S3_BUCKET": bucket,
        "TVAULT_S3_OBJECT_LOCK": "true",
        "TVAULT_S3_RETENTION_DAYS": "1",
    }
    if server.ca_file is not None:
        settings["TVAULT_S3_CA_FILE"] = str(server.ca_file)
    return settings


@pytest.mark.s3
def test_a_missing_bucket(tmp_path: Path, moto_s3: S3Server, s3_bucket: str) -> None:
    home = tmp_path / "vault"
    tvault("init", env=base_env(home, **_s3(moto_s3, s3_bucket)))
    missing = f"missing-{uuid.uuid4().hex[:12]}"
    env = base_env(home, **_s3(moto_s3, missing))
    _refused(env, repr(missing), "does not exist", "mc mb --with-lock")


@pytest.mark.s3
def test_a_bucket_without_object_lock(tmp_path: Path, moto_s3: S3Server, s3_bucket: str) -> None:
    home = tmp_path / "vault"
    tvault("init", env=base_env(home, **_s3(moto_s3, s3_bucket)))
    plain = f"plain-{uuid.uuid4().hex[:12]}"
    with admin_client(moto_s3) as client:
        client.make_bucket(plain)
    env = base_env(home, **_s3(moto_s3, plain))
    _refused(env, repr(plain), "no object lock", "TVAULT_S3_OBJECT_LOCK=false")

"""Fixtures of the integration tests: the S3 test server (see `tests/s3server.py`), and the
vault of the unit tests (a fresh copy of the session's template, on SQLite and PostgreSQL) for
the tests that start processes or servers around one."""

from tests.s3server import moto_s3, real_s3, s3_bucket
from tests.unit.vault.conftest import database_url, vault

__all__ = ["database_url", "moto_s3", "real_s3", "s3_bucket", "vault"]

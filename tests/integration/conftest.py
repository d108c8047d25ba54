"""Fixtures of the integration tests: the S3 test server (see `tests/s3server.py`)."""

from tests.s3server import moto_s3, real_s3, s3_bucket

__all__ = ["moto_s3", "real_s3", "s3_bucket"]

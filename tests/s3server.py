"""An S3-compatible server for the tests: moto on 127.0.0.1 with TLS, or a real endpoint.

`moto_s3` starts `python -m moto.server` once per session on a free loopback port with a
self-signed certificate made at test time (moto refuses PUTs into object-lock buckets over plain
HTTP, because minio-py sends Content-MD5 only over HTTPS), and stops it at the end. `s3_bucket`
makes a fresh object-lock bucket on it for each test. `real_s3` describes the endpoint in
`TVAULT_TEST_S3_ENDPOINT` (with `..._ACCESS_KEY`, `..._SECRET_KEY`, `..._BUCKET`, and optionally
`..._SECURE` (default true), `..._CA_FILE`, `..._OBJECT_LOCK` (default true)).

Register the fixtures in a `conftest.py` by importing them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import urllib3
from minio import Minio

from tests.services import unavailable

_START_SECONDS = 60.0


@dataclass(frozen=True)
class S3Server:
    """Where an S3 server listens and how to reach it."""

    endpoint: str  # host:port
    access_key: str
    secret_key: str
    secure: bool
    ca_file: Path | None
    object_lock: bool  # the bucket(s) have object lock enabled
    bucket: str | None = None  # a given bucket (real endpoint); None: make one per test


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and localhost; return (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tvault-test-s3")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_tls(port: int, ca_file: Path, proc: subprocess.Popen[bytes]) -> str | None:
    """Return None once a TLS handshake succeeds, or why it never did."""
    context = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + _START_SECONDS
    last = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"moto server exited with {proc.returncode}"
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return None
        except OSError as exc:
            last = str(exc)
            time.sleep(0.1)
    return f"no TLS answer on 127.0.0.1:{port} within {_START_SECONDS:.0f}s ({last})"


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A moto S3 server with TLS on a free loopback port, for the whole session."""
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        unavailable("s3", f"moto[server] is not installed: {exc}")
    directory = tmp_path_factory.mktemp("moto-s3")
    cert, key = _self_signed(directory)
    problem = "not started"
    # A free port can be taken between probing and binding: try a few.
    for _attempt in range(3):
        port = _free_port()
        with (directory / "moto.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)),
                    *("--ssl-cert", str(cert), "--ssl-key", str(key)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "MOTO_PORT": str(port)},
            )
        try:
            started = _wait_for_tls(port, cert, proc)
            if started is None:
                yield S3Server(
                    endpoint=f"127.0.0.1:{port}",
                    access_key="testing",
                    secret_key="testing-secret",
                    secure=True,
                    ca_file=cert,
                    object_lock=True,
                )
                return
            problem = started
        finally:
            _stop(proc)
    tail = (directory / "moto.log").read_text(errors="replace")[-2000:]
    unavailable("s3", f"{problem}; moto log: {tail}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def real_s3() -> S3Server:
    """The real S3 endpoint named by `TVAULT_TEST_S3_ENDPOINT`; skipped when it is not set.

    It is optional on purpose: `TVAULT_TEST_REQUIRE=s3` is met by the moto server.
    """
    endpoint = os.environ.get("TVAULT_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.skip("TVAULT_TEST_S3_ENDPOINT is not set (a real S3 endpoint is optional)")
    values = {key: os.environ.get(f"TVAULT_TEST_S3_{key}") for key in ("ACCESS_KEY", "SECRET_KEY")}
    bucket = os.environ.get("TVAULT_TEST_S3_BUCKET")
    missing = [k for k, v in {**values, "BUCKET": bucket}.items() if not v]
    if missing:
        unavailable("s3", "TVAULT_TEST_S3_ENDPOINT is set but not " + ", ".join(missing))
    ca_file = os.environ.get("TVAULT_TEST_S3_CA_FILE")
    return S3Server(
        endpoint=endpoint,
        access_key=str(values["ACCESS_KEY"]),
        secret_key=str(values["SECRET_KEY"]),
        secure=os.environ.get("TVAULT_TEST_S3_SECURE", "true").lower() != "false",
        ca_file=Path(ca_file) if ca_file else None,
        object_lock=os.environ.get("TVAULT_TEST_S3_OBJECT_LOCK", "true").lower() != "false",
        bucket=bucket,
    )


@contextlib.contextmanager
def admin_client(server: S3Server) -> Iterator[Minio]:
    """A raw `minio.Minio` client for `server` (trusting its CA file); its pool closes after."""
    http = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED",
        ca_certs=str(server.ca_file) if server.ca_file else None,
        retries=urllib3.Retry(total=2, backoff_factor=0.1),
    )
    try:
        yield Minio(
            server.endpoint,
            access_key=server.access_key,
            secret_key=server.secret_key,
            secure=server.secure,
            http_client=http,
        )
    finally:
        http.clear()


@pytest.fixture
def s3_bucket(moto_s3: S3Server) -> str:
    """A fresh object-lock bucket on the moto server."""
    bucket = f"tvault-{uuid.uuid4().hex[:12]}"
    with admin_client(moto_s3) as client:
        client.make_bucket(bucket, object_lock=True)
    return bucket


__all__ = ["S3Server", "admin_client", "moto_s3", "real_s3", "s3_bucket"]

"""The docker-compose file is consistent: it cannot run here (no container engine), so check it.

Checked: it parses; only 127.0.0.1 is published; no secret has a default (every `${VAR}` is
`${VAR:?message}`, so compose refuses to start without it); the vault's settings are the ones
DESIGN.md names and `vault.settings.Settings` reads; every service, volume and network a service
refers to exists; URLs point at services on their ports; images are pinned; the bucket the vault
uses is the one the init job creates with object lock.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from vault.settings import Settings

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extra")

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {
    "api",
    "worker",
    "vault-init",
    "postgres",
    "minio",
    "minio-init",
    "elasticsearch",
    "elasticsearch-init",
    "tika",
    "keycloak",  # profile `oidc`: an OpenID Connect provider (docs/access.md)
}
SECRET_WORDS = ("PASSWORD", "PASSPHRASE", "SECRET", "ACCESS_KEY")
INTERPOLATION = re.compile(r"(?<!\$)\$\{([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment must be a mapping"
    return {str(k): str(v) for k, v in env.items()}


def test_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_only_loopback_is_published(compose: dict[str, Any]) -> None:
    published = {
        name: service["ports"]
        for name, service in compose["services"].items()
        if "ports" in service
    }
    # Keycloak (profile `oidc`) is where clients fetch their tokens, on loopback too.
    assert published == {"api": ["127.0.0.1:8000:8000"], "keycloak": ["127.0.0.1:8080:8080"]}
    for name, service in compose["services"].items():
        assert "network_mode" not in service, name  # host networking would bypass the binding
        assert "expose" not in service or name == "api", name


def test_every_interpolation_refuses_to_start_without_its_value() -> None:
    text = COMPOSE.read_text()
    references = INTERPOLATION.findall(text)
    assert references, "the file takes its secrets from the environment"
    for reference in references:
        name, sep, message = reference.partition(":?")
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), reference
        assert sep and message.strip(), f"${{{reference}}} must be ${{{name}:?message}}"
    assert "$VAR" not in text and not re.search(r"(?<!\$)\$[A-Za-z_]", text), (
        "bare $VAR: compose interpolates it at parse time; write $$VAR for the container's shell"
    )


def test_no_secret_has_a_literal_value(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in _env(service).items():
            if any(word in key for word in SECRET_WORDS):
                assert INTERPOLATION.fullmatch(value), f"{name}: {key} must be ${{VAR:?...}}"
            if key.endswith("_URL"):
                password = urlsplit(INTERPOLATION.sub("FROM-ENV", value)).password
                assert password in (None, "FROM-ENV"), f"{name}: literal password in {key}"


def test_vault_settings_are_the_documented_ones(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    for name in ("api", "worker", "vault-init"):
        env = _env(compose["services"][name])
        for key in env:
            if key.startswith("TVAULT_") and key != "TVAULT_ADMIN":
                assert key.removeprefix("TVAULT_").lower() in fields, f"{name}: unknown {key}"
        assert env["TVAULT_OBJECT_STORE"] == "s3"
        assert env["TVAULT_INDEX"] == "elasticsearch"
        assert env["TVAULT_EXTRACTOR"] == "tika-server"
        assert env["TVAULT_S3_OBJECT_LOCK"] == "true"
        assert env["TVAULT_DATABASE_URL"].startswith("postgresql+psycopg://")
        for key in (
            "TVAULT_PASSPHRASE",
            "TVAULT_S3_SECRET_KEY",
            "TVAULT_S3_RETENTION_DAYS",
            "TVAULT_S3_RETENTION_MODE",
        ):
            assert INTERPOLATION.fullmatch(env[key]), key
        assert env["TIKA_CLIENT_ONLY"] == "1"


def test_urls_point_at_services_on_their_ports(compose: dict[str, Any]) -> None:
    env = _env(compose["services"]["api"])
    expected = {
        "TVAULT_DATABASE_URL": ("postgres", 5432),
        "TVAULT_ES_URL": ("elasticsearch", 9200),
        "TVAULT_TIKA_URL": ("tika", 9998),
    }
    for key, (host, port) in expected.items():
        url = urlsplit(INTERPOLATION.sub("secret", env[key]))
        assert (url.hostname, url.port) == (host, port), key
        assert host in compose["services"]
    assert env["TVAULT_S3_ENDPOINT"] == "minio:9000"
    assert "minio:9000" in compose["services"]["minio-init"]["command"][0]


def test_bucket_is_created_with_object_lock_and_no_default_retention(
    compose: dict[str, Any],
) -> None:
    init = compose["services"]["minio-init"]
    script = init["command"][0]
    bucket = _env(compose["services"]["api"])["TVAULT_S3_BUCKET"]
    assert _env(init)["BUCKET"] == bucket == "evidence"
    assert 'mc mb --ignore-existing --with-lock "store/$$BUCKET"' in script
    assert 'mc retention clear --default "store/$$BUCKET"' in script
    assert "BypassGovernanceRetention" not in script


def test_references_resolve(compose: dict[str, Any]) -> None:
    volumes = set(compose["volumes"])
    networks = set(compose["networks"])
    used_volumes: set[str] = set()
    for name, service in compose["services"].items():
        for dependency in service.get("depends_on", {}):
            assert dependency in compose["services"], (name, dependency)
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            assert source in volumes, (name, mount)
            used_volumes.add(source)
        for network in service.get("networks", []):
            assert network in networks, (name, network)
    assert used_volumes == volumes
    assert compose["networks"]["backend"]["internal"] is True


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image.rsplit("/", 1)[-1], (name, image)
        assert not image.endswith((":latest", ":main")), (name, image)
        if "build" in service:
            assert service["build"] == "."


def test_dockerfile_installs_the_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "RUN pip install ." in dockerfile
    assert 'ENTRYPOINT ["tvault"]' in dockerfile
    assert "USER tvault" in dockerfile
    for package in ("vault", "ingest", "search", "keys", "policies"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_init_scripts_are_valid_shell(compose: dict[str, Any], tmp_path: Path) -> None:
    sh = shutil.which("sh")
    assert sh is not None
    scripts = {
        name: service["command"][0]
        for name, service in compose["services"].items()
        if service.get("entrypoint") == ["/bin/sh", "-c"]
    }
    assert set(scripts) == {"vault-init", "minio-init", "elasticsearch-init"}
    for name, script in scripts.items():
        path = tmp_path / f"{name}.sh"
        path.write_text(script.replace("$$", "$"))  # what the container's shell receives
        result = subprocess.run([sh, "-n", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, (name, result.stderr)

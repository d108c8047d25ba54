"""The docker-compose file is consistent: it cannot run here (no container engine), so check it.

Checked: it is valid against the Compose Specification's JSON schema (the public one, read from
the conformance data with the commit it was taken at); it parses; only 127.0.0.1 is published;
no secret has a default (every `${VAR}` is
`${VAR:?message}`, so compose refuses to start without it); the vault's settings are the ones
DESIGN.md names and `vault.settings.Settings` reads; every service, volume and network a service
refers to exists; URLs point at services on their ports; images are pinned; the bucket the vault
uses is the one the init job creates with object lock; decrypted originals go to a tmpfs sized
to the extraction limit; the passphrase and the S3 secret come from Docker secrets, never from an
environment variable; Tika has a heap limit, a memory limit and a healthcheck; the api and worker
healthchecks ask /readyz; the Keycloak profile imports a realm with the vault's client and roles.
The init scripts' shell syntax, checked by `sh -n`: tests/integration/test_compose_file.py.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.services import vectors
from tests.unit.vault.compose_support import COMPOSE, ROOT, compose
from vault.domain import ROLES
from vault.settings import Settings

__all__ = ["compose"]


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
SCRATCH = "/run/tvault-scratch"
SECRET_FILES = {
    "TVAULT_PASSPHRASE_FILE": "tvault_passphrase",
    "TVAULT_S3_SECRET_KEY_FILE": "tvault_s3_secret_key",
}
SECRET_WORDS = ("PASSWORD", "PASSPHRASE", "SECRET", "ACCESS_KEY")
INTERPOLATION = re.compile(r"(?<!\$)\$\{([^}]*)\}")


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
            if key.endswith("_FILE"):  # a Docker secret's path, not the secret
                assert value.startswith("/run/secrets/"), f"{name}: {key}"
            elif any(word in key for word in SECRET_WORDS):
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
            if source.startswith("./"):  # a file of this repository, mounted read-only
                assert (ROOT / source).is_file() and mount.endswith(":ro"), (name, mount)
                continue
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


def _size_bytes(value: str) -> int:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    match = re.fullmatch(r"(\d+)([kmg]?)b?", value.lower())
    assert match, value
    return int(match.group(1)) * units[match.group(2)]


def _tmpfs_options(service: dict[str, Any], target: str) -> dict[str, str]:
    mounts = service.get("tmpfs", [])
    for mount in [mounts] if isinstance(mounts, str) else mounts:
        path, _, options = mount.partition(":")
        if path == target:
            return dict(
                [*option.split("=", 1), ""][:2]  # flags such as `noexec` have no value
                for option in options.split(",")
                if option
            )
    raise AssertionError(f"no tmpfs at {target}")


def _concurrency(command: list[str]) -> int:
    for flag in ("--concurrency", "-c"):
        if flag in command:
            return int(command[command.index(flag) + 1])
    return 1


def test_the_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the test extra")
    spec = vectors("compose-spec")
    assert re.fullmatch(r"[0-9a-f]{40}", (spec / "COMMIT").read_text().strip())
    schema = json.loads((spec / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    # The check can fail: a misspelt key is refused (services allow no unknown properties).
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["tmpfss"] = [SCRATCH]
    assert not validator.is_valid(broken)


def test_decrypted_originals_go_to_a_tmpfs_sized_to_the_extraction_limit(
    compose: dict[str, Any],
) -> None:
    for name in ("api", "worker"):
        service = compose["services"][name]
        env = _env(service)
        assert env["TVAULT_SCRATCH_DIR"] == SCRATCH, name
        limit = int(env["TVAULT_EXTRACT_MEMORY_LIMIT"])
        options = _tmpfs_options(service, SCRATCH)
        size = _size_bytes(options["size"])
        # The api's embedded worker runs one job; the worker as many as --concurrency.
        jobs = _concurrency(service["command"]) if name == "worker" else 1
        assert jobs * limit <= size <= jobs * limit + 16 * 1024**2, (name, size, limit)
        assert options["mode"] == "0700" and options["uid"] == "10001", name
        assert {"noexec", "nosuid", "nodev"} <= set(options), name
        # No volume or bind mount may cover the scratch directory instead.
        for mount in service.get("volumes", []):
            assert SCRATCH not in mount, (name, mount)
    assert "--concurrency" in compose["services"]["worker"]["command"]


def test_the_passphrase_and_s3_secret_come_from_docker_secrets(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key in _env(service):
            assert key not in ("TVAULT_PASSPHRASE", "TVAULT_S3_SECRET_KEY"), (name, key)
    declared = compose["secrets"]
    assert set(declared) == set(SECRET_FILES.values())
    for secret in declared.values():
        assert secret["file"].startswith("./secrets/"), secret
    for name in ("api", "worker", "vault-init"):
        service = compose["services"][name]
        env = _env(service)
        for key, secret in SECRET_FILES.items():
            assert env[key] == f"/run/secrets/{secret}", (name, key)
            assert secret in service["secrets"], (name, secret)
        assert SECRET_FILES.keys() <= {f"TVAULT_{f.upper()}" for f in Settings.model_fields}
    minio_init = compose["services"]["minio-init"]
    assert minio_init["secrets"] == ["tvault_s3_secret_key"]
    assert "$$(cat /run/secrets/tvault_s3_secret_key)" in minio_init["command"][0]
    assert (ROOT / ".gitignore").read_text().splitlines().count("secrets/") == 1


def test_tika_has_a_heap_limit_a_memory_limit_and_a_healthcheck(compose: dict[str, Any]) -> None:
    tika = compose["services"]["tika"]
    heap = re.search(r"-Xmx(\d+[kmg])\b", _env(tika)["JAVA_TOOL_OPTIONS"])
    assert heap, "JAVA_TOOL_OPTIONS must set -Xmx"
    memory = tika.get("mem_limit") or tika["deploy"]["resources"]["limits"]["memory"]
    # Tika's server and the child it forks both take the heap; the limit leaves room for both.
    assert _size_bytes(str(memory)) >= 2 * _size_bytes(heap.group(1)), (memory, heap.group(1))
    check = tika["healthcheck"]
    assert check["test"][0] == "CMD" and "/dev/tcp/127.0.0.1/9998" in check["test"][-1]
    assert "GET /tika" in check["test"][-1]
    for name in ("api", "worker"):
        assert compose["services"][name]["depends_on"]["tika"] == {"condition": "service_healthy"}


def test_api_and_worker_healthchecks_ask_readyz(compose: dict[str, Any]) -> None:
    ports = {"api": 8000, "worker": 8001}
    for name, port in ports.items():
        service = compose["services"][name]
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        assert f"http://127.0.0.1:{port}/readyz" in test[3], name
        compile(test[3], name, "exec")  # the one-liner is valid Python
    worker = compose["services"]["worker"]["command"]
    assert worker[worker.index("--health-port") + 1] == "8001"


def test_keycloak_imports_the_realm_with_the_vault_client_and_roles(
    compose: dict[str, Any],
) -> None:
    keycloak = compose["services"]["keycloak"]
    assert keycloak["profiles"] == ["oidc"]
    assert keycloak["command"][0] in ("start", "start-dev")
    assert "--import-realm" in keycloak["command"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in keycloak["volumes"]}
    source = mounts["/opt/keycloak/data/import/realm.json"]
    realm = json.loads((ROOT / source).read_text())
    assert realm["realm"] == "tvault" and realm["enabled"] is True
    roles = {role["name"] for role in realm["roles"]["realm"]}
    assert roles == {f"tvault-{role}" for role in ROLES}
    (client,) = (c for c in realm["clients"] if c["clientId"] == "tvault-cli")
    assert client["publicClient"] is True and client["enabled"] is True
    audiences = [
        m["config"]["included.custom.audience"]
        for m in client["protocolMappers"]
        if m["protocolMapper"] == "oidc-audience-mapper"
    ]
    assert audiences == ["tvault"]  # the vault's token audience (TVAULT_TOKEN_AUDIENCE default)
    assert Settings.model_fields["token_audience"].default == "tvault"

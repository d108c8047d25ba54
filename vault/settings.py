"""Settings of a vault: `TVAULT_*` environment variables over `tvault.toml` in the vault directory.

Read once, by `vault.compose` (and the CLI that starts it); nothing else reads them. Names are
part of the public interface (DESIGN.md "Configuration"; docs/configuration.md lists them all).
"""

from __future__ import annotations

import functools
import ipaddress
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from vault.domain import ROLES

SETTINGS_FILE = "tvault.toml"
DEFAULT_HOME = Path("./vault-data")
# The tvault.toml that `load_settings` is reading: handed to `settings_customise_sources` this
# way rather than through a subclass made per call (building a pydantic class costs more than
# reading the settings).
_TOML_FILE: ContextVar[Path | None] = ContextVar("tvault_toml_file", default=None)

# The default vocabulary of item tags: violation types (a fixed list keeps tags structural, so
# they may stay in the clear; free text would have to be sealed).
DEFAULT_TAGS = (
    "arbitrary_detention",
    "enforced_disappearance",
    "extrajudicial_execution",
    "forced_displacement",
    "psychological_torture",
    "sexual_violence",
    "torture",
)


class OidcIssuer(BaseModel):
    """One OpenID Connect issuer whose tokens the vault accepts (docs/access.md).

    `algorithms` is pinned per issuer (never "none", never HMAC: the key is public); `role_map`
    maps the values of the `roles_claim` (a dotted path, e.g. Keycloak's `realm_access.roles`)
    to vault roles; `subject_claim` names the claim that holds the vault account name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str
    jwks_url: str
    audience: str
    # python-jose 3.5.0 verifies these (no PS256); never HMAC or "none": the key is public.
    algorithms: tuple[Literal["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"], ...] = (
        "RS256",
    )
    subject_claim: str = "preferred_username"
    roles_claim: str = "realm_access.roles"
    role_map: dict[str, str] = Field(default_factory=dict)
    jwks_timeout_seconds: float = Field(default=5.0, gt=0)
    jwks_cache_seconds: float = Field(default=3600.0, ge=0)
    jwks_min_refetch_seconds: float = Field(default=30.0, ge=0)
    # Web sign-in through this issuer (docs/web.md "OIDC"): the authorization code flow with
    # PKCE, offered on the sign-in page when all three are set. `client_secret` for a
    # confidential client; a public client (PKCE alone) has none.
    authorization_url: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    name: str | None = None  # shown on the sign-in button; the issuer's address otherwise

    @property
    def web_sign_in(self) -> bool:
        """Whether the web sign-in page offers this issuer."""
        return bool(self.authorization_url and self.token_url and self.client_id)

    @field_validator("role_map")
    @classmethod
    def _vault_roles(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value.values()) - set(ROLES))
        if unknown:
            raise ValueError(f"role_map names unknown vault roles {unknown}; use {list(ROLES)}")
        return value


class Settings(BaseSettings):
    """Every setting of a vault; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="TVAULT_", extra="ignore", frozen=True)

    home: Path = DEFAULT_HOME
    database_url: str | None = None
    object_store: Literal["local", "s3"] = "local"
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_bucket: str | None = None
    s3_secure: bool = True
    s3_object_lock: bool = False
    s3_retention_days: int = Field(default=3650, ge=1)
    s3_retention_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    s3_region: str | None = None
    s3_ca_file: Path | None = None
    index: Literal["tantivy", "elasticsearch"] = "tantivy"
    # `tvault serve` shows half of each page of search hits in a helper process (on a machine
    # with more than one core; vault/search_helper.py).
    search_helper: bool = True
    # Searches one server process runs at once; the others wait their turn, first come first
    # served (vault/api/search_routes.py: fewer threads fighting for the GIL, issue 23).
    search_concurrency: int = Field(default=2, ge=1)
    es_url: str | None = None
    extractor: Literal["tika-native", "tika-server"] = "tika-native"
    tika_url: str | None = None
    passphrase: SecretStr | None = None
    # Secrets from files (Docker secrets), read once at start instead of the variable itself.
    passphrase_file: Path | None = None
    s3_secret_key_file: Path | None = None
    max_upload_bytes: int = Field(default=8 * 1024**3, ge=1)
    token_issuer: str = "urn:tvault:local"  # noqa: S105 (not a secret)
    token_audience: str = "tvault"  # noqa: S105 (not a secret)
    token_ttl_seconds: int = Field(default=8 * 3600, ge=60)
    # The longest a token may live (`tvault token --ttl`, the API): a lost token dies by then.
    token_max_ttl_seconds: int = Field(default=12 * 3600, ge=60)
    # Access (docs/access.md): a replacement policy file, loaded once at start; OIDC issuers as
    # a JSON list; the per-client budget of refused tokens (a token bucket, per process).
    policy_file: Path | None = None
    oidc_issuers: tuple[OidcIssuer, ...] = ()
    auth_failure_burst: int = Field(default=10, ge=1)
    auth_failure_per_minute: float = Field(default=10.0, gt=0)
    max_token_bytes: int = Field(default=8192, ge=512)
    # The HTTP server (docs/configuration.md): proxies whose X-Forwarded-For is believed (IPs or
    # networks, comma-separated; none by default, so no client can choose its own address), and
    # the cap on request headers (431 beyond it).
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    max_header_bytes: int = Field(default=64 * 1024, ge=8 * 1024)
    max_headers: int = Field(default=100, ge=20)
    tags: tuple[str, ...] = DEFAULT_TAGS
    sweep_grace_seconds: int = Field(default=3600, ge=0)
    sweep_interval_seconds: float = Field(default=3600.0, ge=0)
    # The ingest pipeline (docs/jobs.md).
    embedded_worker: bool = True
    jobs_max_attempts: int = Field(default=5, ge=1)
    jobs_backoff_seconds: float = Field(default=10.0, ge=0)
    jobs_lease_seconds: float = Field(default=60.0, gt=0)
    jobs_poll_seconds: float = Field(default=0.5, gt=0)
    extract_timeout_s: float = Field(default=60.0, gt=0)
    extract_max_text_chars: int = Field(default=5_000_000, ge=1)
    extract_max_memory_mb: int = Field(default=1024, ge=64)
    # Decrypted originals are parsed from files in this directory, which must be a tmpfs or a
    # ramfs (checked at start, ingest.scratch); a larger original fails extraction.
    scratch_dir: Path = Path("/dev/shm")  # noqa: S108 (a tmpfs, checked; files private inside)
    extract_memory_limit: int = Field(default=256 * 1024**2, ge=1)
    extract_max_pages: int = Field(default=200, ge=1)  # pages OCR recognises in one file
    extract_max_pixels: int = Field(default=50_000_000, ge=1)  # pixels of one image or page
    # OCR of images and scanned PDF pages (docs/ingest.md, "OCR"): the engine, or `off`; the
    # languages read when an item's own language is not known (Tesseract's names, `+`-joined).
    ocr: Literal["tesseract", "off"] = "tesseract"
    ocr_languages: str = Field(
        default="spa+eng", pattern=r"^[a-z]{3}(_[a-z]{3,4})?(\+[a-z]{3}(_[a-z]{3,4})?)*$"
    )
    # The custody ledger (docs/ledger.md): checkpoint origin (None: from the log key) and cadence.
    ledger_origin: str | None = None
    ledger_checkpoint_entries: int = Field(default=1000, ge=1)
    ledger_checkpoint_seconds: float = Field(default=60.0, gt=0)
    # The two-person rule (docs/access.md "Two people"): how many custodians in all, the
    # requester included, must agree before shredding, lifting a hold or retiring a key runs.
    approval_quorum: int = Field(default=2, ge=2, le=16)
    # Exports to commissions (docs/exports.md): how long a built export is kept before the sweep
    # removes it; how often the builder looks for approved exports; how long a builder holds
    # one before another process may take it over (a build killed mid-way is redone).
    export_ttl_days: int = Field(default=30, ge=1, le=3650)
    export_poll_seconds: float = Field(default=5.0, gt=0)
    export_lease_seconds: float = Field(default=900.0, ge=10)
    # The web interface (docs/web.md): a signed-in browser's session ends after this long
    # without a request, and after `web_session_max_seconds` whatever happens; `custodian`
    # makes a second factor (TOTP) required for custodians; the neutral page quick exit leaves
    # for; the lifetime of a one-time set-password link.
    web_session_idle_seconds: int = Field(default=30 * 60, ge=60)
    web_session_max_seconds: int = Field(default=12 * 3600, ge=60)
    require_2fa: Literal["", "custodian"] = ""
    web_exit_url: str = Field(default="https://www.google.com/", pattern=r"^https?://\S+$")
    password_link_ttl_seconds: int = Field(default=72 * 3600, ge=60)

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in ("passphrase", "s3_secret_key"):
            path = data.get(f"{name}_file")
            if path is not None:
                if data.get(name) is not None:
                    raise ValueError(f"set {name} or {name}_file, not both")
                data[name] = read_secret_file(f"{name}_file", Path(path))
        return data

    @model_validator(mode="after")
    def _default_ttl_within_maximum(self) -> Settings:
        if self.token_ttl_seconds > self.token_max_ttl_seconds:
            raise ValueError(
                f"token_ttl_seconds ({self.token_ttl_seconds}) exceeds token_max_ttl_seconds "
                f"({self.token_max_ttl_seconds})"
            )
        return self

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)
        networks = []
        for item in (str(i).strip() for i in items):
            if not item:
                continue
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError as exc:
                raise ValueError(
                    f"trusted_proxies: {item!r} is not an IP address or network"
                ) from exc
        return tuple(networks)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then the environment, then the vault's tvault.toml.
        sources: list[PydanticBaseSettingsSource] = [init_settings]
        # pydantic-settings works out each field's variable names and type again at every read
        # (a millisecond for these sixty-odd fields), even when the environment names none of
        # them and so gives nothing: left out then, the usual case of a vault configured by its
        # tvault.toml (and of each test's vault).
        if _names_a_setting(env_settings):
            sources.append(env_settings)
        toml_file = _TOML_FILE.get()
        if toml_file is not None and toml_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def sqlite_path(self) -> Path:
        """Return the path of the embedded SQLite database."""
        return self.home / "vault.db"

    @property
    def effective_database_url(self) -> str:
        """Return `database_url`, or the embedded SQLite database under `home`."""
        return self.database_url or f"sqlite+pysqlite:///{self.sqlite_path}"

    @property
    def keyring_path(self) -> Path:
        """Return the path of the keyring file."""
        return self.home / "keyring"

    @property
    def objects_path(self) -> Path:
        """Return the directory of the local object store."""
        return self.home / "objects"


def _names_a_setting(source: PydanticBaseSettingsSource) -> bool:
    # Whether the environment holds a variable of some setting (or cannot be told: another
    # kind of source, a field with an alias).
    if not isinstance(source, EnvSettingsSource):
        return True
    names = _variables(source.settings_cls, source.env_prefix)
    return names is None or not source.env_vars.keys().isdisjoint(names)


@functools.cache
def _variables(settings_cls: type[BaseSettings], prefix: str) -> frozenset[str] | None:
    # The names the environment source looks up, lower-cased as its `env_vars` are (settings
    # are case-insensitive): each field's prefixed name, unless some field has an alias.
    fields = settings_cls.model_fields.items()
    if any(f.alias is not None or f.validation_alias is not None for _, f in fields):
        return None
    return frozenset(f"{prefix}{name}".lower() for name, _ in fields)


def read_secret_file(setting: str, path: Path) -> SecretStr:
    """Return the secret in `path`, one trailing newline stripped (`echo` leaves one).

    Raises `ValueError` naming `setting` and the file if it cannot be read or holds nothing.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"{setting}: cannot read {path}: {reason}") from None
    value = text.removesuffix("\n")
    if not value:
        raise ValueError(f"{setting}: {path} is empty")
    return SecretStr(value)


def load_settings(home: Path | None = None, **overrides: Any) -> Settings:
    """Read the settings of the vault in `home` (else `TVAULT_HOME`, else ./vault-data).

    Raises `pydantic.ValidationError` on a malformed setting.
    """
    root = Path(home or os.environ.get("TVAULT_HOME") or DEFAULT_HOME)
    reading = _TOML_FILE.set(root / SETTINGS_FILE)
    try:
        return Settings(home=root, **overrides)
    finally:
        _TOML_FILE.reset(reading)

"""Import rules import-linter cannot express: one module per outside system (CONVENTIONS.md)."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("vault", "ingest", "search", "keys", "policies")
# Files shipped inside export bags for the recipient to run (vault/export_bag.py reads them as
# data); no module of ours imports them, which `test_the_export_kit_is_only_data` checks.
KIT = ROOT / "vault" / "export_kit"


def _parsed(path: Path) -> ast.Module:
    """The syntax tree of `path`. Not kept: the trees of every module hold about 150 000
    objects, which each of the process's later full garbage collections would walk again."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@dataclass(frozen=True)
class _Facts:
    """What the rules below ask of one module, gathered in one walk of its tree."""

    imports: frozenset[str]  # modules named by `import x` or `from x import ...` (absolute)
    calls: frozenset[str]  # names called: `name(...)` or `something.name(...)`
    builds: bool  # calls `make_engine(...)` or `Keyring.create`, `.open` or `.recover`


def _builds(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id == "make_engine"
    if isinstance(func, ast.Attribute):
        owner = func.value
        owner_name = owner.attr if isinstance(owner, ast.Attribute) else ""
        if isinstance(owner, ast.Name):
            owner_name = owner.id
        return func.attr == "make_engine" or (
            owner_name == "Keyring" and func.attr in {"create", "open", "recover"}
        )
    return False


@functools.cache
def _facts(path: Path) -> _Facts:
    """The facts of `path`, walked once for all the tests of this module (walking every tree
    again for each rule took most of this module's time)."""
    imports: set[str] = set()
    calls: set[str] = set()
    builds = False
    for node in ast.walk(_parsed(path)):
        if isinstance(node, ast.Import):
            imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imports.add(node.module)
        elif isinstance(node, ast.Call):
            func = node.func
            calls.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
            builds = builds or _builds(func)
    return _Facts(frozenset(imports), frozenset(calls), builds)


@functools.cache
def _modules(*packages: str) -> tuple[Path, ...]:
    """The modules of `packages`, the export kit left out."""
    return tuple(
        path
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
        if KIT not in path.parents
    )


def _importers(prefix: str) -> set[str]:
    """Return the modules of our packages that import `prefix` or anything below it."""
    return {
        str(path.relative_to(ROOT))
        for path in _modules(*PACKAGES)
        if any(n == prefix or n.startswith(prefix + ".") for n in _facts(path).imports)
    }


def test_only_one_module_of_keys_imports_cryptography_hazmat() -> None:
    importers = _importers("cryptography.hazmat")
    assert len(importers) <= 1, importers
    assert all(p.startswith("keys/") for p in importers), importers


def test_only_one_module_imports_jose() -> None:
    # vault.tokens, below the API and the web pages, which both verify tokens with it.
    assert _importers("jose") == {"vault/tokens.py"}


def test_only_the_composition_root_imports_adapters() -> None:
    # CONVENTIONS.md "One composition root": settings become parts in vault.compose alone.
    # (vault.storage re-exports its local adapter: its own package, not a user of it.)
    importers: set[str] = set()
    for adapter in ("search.adapters", "ingest.adapters", "vault.storage.adapters"):
        importers |= _importers(adapter)
    users = {p for p in importers if p.startswith("vault/") and not p.startswith("vault/storage/")}
    assert users == {"vault/compose.py"}


def _builders() -> set[str]:
    """Return the modules of vault that call `make_engine(...)` or `Keyring.create`, `.open` or
    `.recover` (also as `keys.Keyring...`)."""
    return {str(path.relative_to(ROOT)) for path in _modules("vault") if _facts(path).builds}


def test_only_the_composition_root_opens_the_database_and_the_keyring_file() -> None:
    # The database engine and the keyring file are made from settings by vault.compose alone.
    assert _builders() == {"vault/compose.py"}


def _callers(names: set[str]) -> set[str]:
    """Return the modules of vault that call a function or class named in `names` (also as an
    attribute: `module.name(...)`)."""
    return {str(path.relative_to(ROOT)) for path in _modules("vault") if _facts(path).calls & names}


def test_only_the_composition_root_builds_the_token_gate_and_the_limiter() -> None:
    # The API and the web pages receive them, and the search gate, built
    # (vault.compose.gatekeeping, per app).
    built = {"TokenGate", "TokenKeys", "RateLimiter", "clients_for", "search_gate"}
    assert _callers(built) == {"vault/compose.py"}


def test_only_the_composition_root_builds_the_served_app() -> None:
    # `tvault serve` hands its settings and passphrase to compose.serving and runs what it
    # returns: the app and the HTTP protocol with the header limits are built there, not in
    # the CLI (vault.app stands below vault.compose; the acyclic contract keeps it there).
    assert _callers({"create_app", "limited", "SweepService", "ExportBuilder"}) == {
        "vault/compose.py"
    }


def test_only_the_composition_root_builds_the_worker_and_its_health_server() -> None:
    # `tvault worker` hands its settings, passphrase and chosen stages to compose.working and
    # runs what it returns, as `tvault serve` does with compose.serving.
    assert _callers({"Worker", "HealthServer"}) == {"vault/compose.py"}


def test_readiness_asks_the_parts_not_the_settings() -> None:
    # The extractor's reachability is the port's own check, built by vault.compose.
    path = ROOT / "vault" / "readiness.py"
    tree = _parsed(path)
    read = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert "settings" not in read
    assert "vault/readiness.py" not in _importers("httpx")


def test_the_scan_sees_imports() -> None:
    # Guard against a scan that finds nothing because it looks in the wrong place.
    assert _importers("__future__"), "the layer scan read no module"


def test_the_export_kit_is_only_data() -> None:
    assert not (KIT / "__init__.py").exists()
    assert not _importers("vault.export_kit"), "the export kit is shipped, never imported"
    assert (KIT / "verify_custody.py").is_file()

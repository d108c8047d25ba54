"""The compiled statements the test engines share (tests/unit/statements_support.py): reused
by another engine of the same database kind and settings, never across kinds."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, literal, select
from sqlalchemy.pool import NullPool
from sqlalchemy.util import LRUCache

from tests.postgres_support import fresh_schema
from tests.unit.statements_support import SharedStatements


def _cache_hit(engine: Engine) -> object:
    with engine.connect() as connection:
        result = connection.execute(select(literal(7).label("seven")))
        assert result.scalar_one() == 7
        return result.context.cache_hit


def _engine(url: str, shared: SharedStatements | None) -> Engine:
    # The cache as an execution option, which takes precedence over the engine's own (that the
    # unit tests' conftest makes the process's shared one): None, a cache of the engine's own.
    cache = shared if shared is not None else LRUCache(100)
    return create_engine(url, poolclass=NullPool, execution_options={"compiled_cache": cache})


def test_a_second_engine_of_its_own_compiles_again(tmp_path: Path) -> None:
    # What the shared cache is for: without it, each new engine compiles the statement anew.
    first, second = (_engine(f"sqlite:///{tmp_path / name}", None) for name in ("a", "b"))
    assert _cache_hit(first) == first.dialect.CACHE_MISS
    assert _cache_hit(second) == second.dialect.CACHE_MISS
    assert _cache_hit(second) == second.dialect.CACHE_HIT


@pytest.mark.postgres
def test_engines_of_one_kind_share_and_kinds_never_mix(tmp_path: Path, postgres_url: str) -> None:
    shared = SharedStatements()
    sqlite = [_engine(f"sqlite:///{tmp_path / name}", shared) for name in ("a", "b")]
    with fresh_schema(postgres_url) as one, fresh_schema(postgres_url) as other:
        postgres = [_engine(url, shared) for url in (one, other)]
        assert _cache_hit(sqlite[0]) == sqlite[0].dialect.CACHE_MISS
        assert _cache_hit(sqlite[1]) == sqlite[1].dialect.CACHE_HIT
        # Another kind of database compiles its own, then shares it between its schemas.
        assert _cache_hit(postgres[0]) == postgres[0].dialect.CACHE_MISS
        assert _cache_hit(postgres[1]) == postgres[1].dialect.CACHE_HIT
        for engine in postgres:
            engine.dispose()

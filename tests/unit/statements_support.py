"""Compiled statements shared by the engines of a test process (`tests/unit/conftest.py`)."""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.util import LRUCache

# The settings of a dialect that can shape a compiled statement: its plain values.
_PLAIN = (bool, int, float, str, tuple, type(None))


class SharedStatements:
    """One cache of compiled statements for every engine of the process.

    SQLAlchemy keeps compiled statements in a cache of each engine, keyed by the dialect object:
    a production process opens its engine once and compiles each statement once, but each test
    opens a vault of its own, with a new engine, and compiled every statement again (a fifth of
    SQLAlchemy's time in `pytest tests/unit`). Here the key names the dialect by its class and
    its settings instead (server version, parameter style, every plain setting but the default
    schema, which differs only between the tests' PostgreSQL schemas and appears in no
    statement: their tables are named without a schema). A SQLite statement is thus never
    reused on PostgreSQL, nor one compiled for other settings."""

    def __init__(self, size: int = 5000) -> None:
        self._cache: LRUCache[Any, Any] = LRUCache(size)
        self._kinds: weakref.WeakKeyDictionary[Dialect, Any] = weakref.WeakKeyDictionary()

    def _key(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        dialect, *rest = key
        kind = self._kinds.get(dialect)
        if kind is None:
            # Asked at the first compilation, after the engine's first connection has told
            # the dialect its server.
            settings = sorted(
                (name, value)
                for name, value in vars(dialect).items()
                if name != "default_schema_name" and isinstance(value, _PLAIN)
            )
            kind = self._kinds[dialect] = (type(dialect), tuple(settings))
        return (kind, *rest)

    def get(self, key: tuple[Any, ...], default: Any = None) -> Any:
        return self._cache.get(self._key(key), default)

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
        self._cache[self._key(key)] = value

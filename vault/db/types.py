"""Column types of the metadata database: times that always come back with their zone (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A `DateTime(timezone=True)` that reads back aware UTC datetimes on every database.

    PostgreSQL keeps the zone; SQLite stores the wall-clock fields only and hands back naive
    datetimes, which code comparing them with the vault's aware clock would trip on (issue 20,
    point 10). So every time is stored in UTC, and read back marked as UTC. A naive value
    written is taken as UTC, as the vault's clock gives nothing else.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return `value` in UTC (a naive one is taken as UTC already)."""
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return the stored time as an aware UTC datetime."""
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)

"""Times read from the metadata database carry their zone, on SQLite as on PostgreSQL (issue
20, point 10): one column type, `vault.db.types.UtcDateTime`, for every time column."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select

import vault.db  # noqa: F401 (registers every table on Base.metadata)
from vault.db.base import Base
from vault.db.types import UtcDateTime


def test_every_time_column_of_the_metadata_database_is_zone_aware() -> None:
    columns = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.type.python_type is datetime and not isinstance(column.type, UtcDateTime)
    ]
    assert columns == []
    assert any(
        isinstance(c.type, UtcDateTime) for t in Base.metadata.tables.values() for c in t.columns
    )


def _round_trip(url: str) -> list[datetime | None]:
    table = Table(
        "times",
        MetaData(),
        Column("n", Integer, primary_key=True),
        Column("at", UtcDateTime(), nullable=True),
    )
    engine = create_engine(url)
    lima = timezone(timedelta(hours=-5))
    try:
        table.create(engine)
        with engine.begin() as connection:
            connection.execute(
                insert(table),
                [
                    {"n": 1, "at": datetime(2026, 12, 7, 6, 30, tzinfo=lima)},
                    {"n": 2, "at": datetime(2026, 12, 7, 11, 30)},  # naive: taken as UTC
                    {"n": 3, "at": None},
                ],
            )
            later = datetime(2026, 12, 7, 11, 0, tzinfo=lima)  # 16:00 UTC
            before = connection.execute(select(table.c.n).where(table.c.at < later)).all()
            assert sorted(n for (n,) in before) == [1, 2]
            return [
                at for (at,) in connection.execute(select(table.c.at).order_by(table.c.n)).all()
            ]
    finally:
        table.drop(engine)
        engine.dispose()


def test_times_come_back_aware_in_utc_on_sqlite(tmp_path: Path) -> None:
    noon = datetime(2026, 12, 7, 11, 30, tzinfo=UTC)
    assert _round_trip(f"sqlite:///{tmp_path / 'times.db'}") == [noon, noon, None]
    assert all(at is None or at.tzinfo is UTC for at in _round_trip(f"sqlite:///{tmp_path}/b.db"))


@pytest.mark.postgres
def test_times_come_back_aware_in_utc_on_postgresql(pg_schema_url: str) -> None:
    noon = datetime(2026, 12, 7, 11, 30, tzinfo=UTC)
    read = _round_trip(pg_schema_url)
    assert read == [noon, noon, None]
    assert read[0] is not None and read[0].utcoffset() == timedelta(0)

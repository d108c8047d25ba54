"""The metadata database: SQLAlchemy 2 models and Alembic migrations (SQLite and PostgreSQL)."""

from vault.db.base import Base
from vault.db.models import Case, CaseGrant, Item, ItemKey, User
from vault.db.session import check_reachable, connect, make_engine, make_sessions, migrate

__all__ = [
    "Base",
    "Case",
    "CaseGrant",
    "Item",
    "ItemKey",
    "User",
    "check_reachable",
    "connect",
    "make_engine",
    "make_sessions",
    "migrate",
]

"""The metadata database: SQLAlchemy 2 models and Alembic migrations (SQLite and PostgreSQL)."""

from vault.db.base import Base

__all__ = ["Base"]

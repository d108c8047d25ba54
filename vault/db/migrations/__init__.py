"""Alembic migrations of the metadata database, shipped in the package and run by `init`/`serve`."""

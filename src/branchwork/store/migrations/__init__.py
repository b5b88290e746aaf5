"""Alembic migrations: an ordered list of named revisions under versions/."""

"""Alembic migrations of the fwtriage database; run by ``pipeline.db.Database`` on opening."""

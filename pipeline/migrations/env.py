"""Alembic's entry point, run for every migration command on the connection ``pipeline.db`` hands over.

There is no ``alembic.ini`` and no URL here on purpose: the caller (``pipeline.db.alembic_config``) owns the
connection, its transaction and the migration lock, so an upgrade and the application share one path.
"""

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import TypeDecorator

from pipeline.tables import Base


def render_item(kind: str, item: Any, _context: AutogenContext) -> str | bool:
    """Write our column types (``UTCDateTime``) as their SQL type: a migration must not import today's models."""
    if kind == "type" and isinstance(item, TypeDecorator):
        return f"sa.{item.impl!r}"
    return False


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run fwtriage migrations through pipeline.db (Database(url) or alembic_config(connection))")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_item=render_item,
    render_as_batch=True,  # SQLite alters a table by copying it; batch operations do that, plain ALTERs elsewhere
)
with context.begin_transaction():
    context.run_migrations()

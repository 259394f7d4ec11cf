"""Alembic's environment for the store, run by Alembic's commands (never
imported by the gateway itself). The target is every table of
store/tables.py. The connection is the caller's when it gives one (the
gateway at start, inside its transaction and migration lock: nothing here
commits), else one opened on `sqlalchemy.url`."""
from __future__ import annotations

import logging

from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

import gateway.store.tables  # noqa: F401 - declares every table on SQLModel.metadata

log = logging.getLogger("gateway.db")


def _applied(*, ctx, step, heads, run_args) -> None:  # noqa: ANN001, ARG001 - Alembic's callback signature
    """One log line per revision applied (or undone, or stamped); the caller gets the list applied."""
    if step.is_stamp:
        log.info("database schema stamped at revision %s", ", ".join(step.up_revision_ids) or "base")
        return
    script = step.up_revision
    if step.is_upgrade:
        log.info("database schema: revision %s applied (%s)", script.revision, script.doc)
        context.config.attributes.setdefault("applied", []).append(script.revision)
    else:
        log.info("database schema: revision %s undone (%s)", script.revision, script.doc)


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:  # noqa: ARG001
    """SQLModel's types written as the SQLAlchemy types they store as: revisions need no sqlmodel import."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kw: object) -> None:
    context.configure(target_metadata=SQLModel.metadata, on_version_apply=_applied, render_item=_render_item,
                      # SQLite alters a table by copying it: autogenerate writes batch operations for that
                      render_as_batch=True, **kw)


def _run() -> None:
    config = context.config
    if context.is_offline_mode():
        _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    given = config.attributes.get("connection")
    if given is not None:
        _configure(connection=given)
        with context.begin_transaction():  # a no-op inside the caller's transaction
            context.run_migrations()
        return
    eng = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    try:
        with eng.connect() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        eng.dispose()


_run()

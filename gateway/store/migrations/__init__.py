"""The store's schema, changed only through the Alembic revisions in
versions/ (the first, "baseline", creates the tables as they stood when the
store moved to Alembic). Alembic is configured here in code: no alembic.ini
is read, at run time or from the user's home. The gateway brings its
database to the newest revision at start (gateway.store.db.engine);
`python -m gateway.store.migrations revision --autogenerate -m "..."`
writes a new revision (see __main__).

Every function taking a Connection runs inside the caller's transaction and
commits nothing: the caller holds the migration lock and commits once."""
from __future__ import annotations

import functools
import io
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Index, MetaData
from sqlalchemy.engine import Connection

SCRIPTS = Path(__file__).resolve().parent
BASELINE = "0001"  # the revision a database made before Alembic is stamped at

# Alembic's own INFO lines (its context, each step) would repeat env.py's one line per revision
logging.getLogger("alembic").setLevel(logging.WARNING)


def config(connection: Connection | None = None, url: str | None = None) -> Config:
    """Alembic's configuration for the store's revisions, on the caller's
    connection (used as is by env.py) or on a database URL."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")  # versions/0002_notice_retry_count.py
    if connection is not None:
        cfg.attributes["connection"] = connection
        url = url or connection.engine.url.render_as_string(hide_password=False)
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def head() -> str:
    """The newest revision (one line of revisions: a second head is a merge to make)."""
    return ScriptDirectory(str(SCRIPTS)).get_current_head()


def known(revision: str) -> bool:
    """True if `revision` is one of these revisions (not one a newer gateway wrote)."""
    return revision in {s.revision for s in ScriptDirectory(str(SCRIPTS)).walk_revisions()}


def current(conn: Connection) -> str | None:
    """The revision the database is at; None before Alembic (or when empty)."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(conn: Connection, target: str = "head") -> list[str]:
    """Apply the revisions up to `target`; returns those applied, in order."""
    cfg = config(conn)
    command.upgrade(cfg, target)
    return list(cfg.attributes.get("applied", ()))


def downgrade(conn: Connection, target: str) -> None:
    command.downgrade(config(conn), target)


def stamp(conn: Connection, revision: str) -> None:
    """Record the database as being at `revision`, running nothing."""
    command.stamp(config(conn), revision)


@functools.cache
def baseline_schema() -> MetaData:
    """The tables and indexes the baseline revision creates, as a MetaData
    (no database touched): what a database made before Alembic is brought up
    to before it is stamped at the baseline. Not the models of tables.py:
    a later revision may add what they hold, and must find it missing."""
    script = ScriptDirectory(str(SCRIPTS)).get_revision(BASELINE)
    ctx = MigrationContext.configure(dialect_name="sqlite", opts={"as_sql": True, "output_buffer": io.StringIO()})
    schema = MetaData()
    indexes: list[Index] = []
    # the revision's op.create_table / op.create_index reach these two: keep what they build, emit nothing
    ctx.impl.create_table = lambda table, **kw: table.to_metadata(schema)
    ctx.impl.create_index = lambda index, **kw: indexes.append(index)
    with Operations.context(ctx):
        script.module.upgrade()
    for index in indexes:
        table = schema.tables[index.table.name]
        Index(index.name, *(table.c[c.name] for c in index.columns), unique=index.unique, **index.dialect_kwargs)
    return schema

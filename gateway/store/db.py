"""Database engine: SQLite (WAL) by default, PostgreSQL for several workers.

Every module that keeps data declares its tables with SQLModel (`table=True`)
and gets its engine here, so one `create_all` makes the whole schema.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from sqlalchemy import event, inspect, literal
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import Column, Table
from sqlmodel import SQLModel, create_engine

from gateway.core.clock import as_utc, iso, utcnow  # noqa: F401 - the store's callers use db.utcnow
from gateway.core.config import Settings

log = logging.getLogger("gateway.db")

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def engine(settings: Settings) -> Engine:
    """One engine per database URL and process; tables created on first use."""
    url = settings.db_url
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            eng = _make(url)
            _import_models()
            SQLModel.metadata.create_all(eng)
            upgrade_additive(eng)
            _engines[url] = eng
        return eng


def dispose_all() -> None:
    """Close every pooled connection (before fork, at exit, between tests)."""
    with _lock:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()


def _make(url: str) -> Engine:
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(eng, "connect")
        def _on_connect(dbapi_conn, _record):  # noqa: ANN001
            # Let SQLAlchemy emit BEGIN itself, so we can make it IMMEDIATE:
            # the write lock is taken up front and claims never deadlock.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(eng, "begin")
        def _on_begin(conn):  # noqa: ANN001
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return eng
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class SchemaError(RuntimeError):
    """The database holds a schema this gateway cannot bring up to date by itself."""


def upgrade_additive(eng: Engine) -> list[str]:
    """Bring a database made by an earlier version up to this one's tables:
    the columns and indexes it lacks are added (create_all only adds whole
    tables). What existed stays as it was, rows included; a new NOT NULL
    column gets its model default in the rows already there. A change that
    is not an addition (a renamed or retyped column) is not attempted.
    Several processes may start together: one adds, the others find it done.
    Returns what was added, as "table.column" and "index name"."""
    missing = _missing(eng)
    if not missing:
        return []
    done = []
    for table, col in missing:
        try:
            with eng.begin() as conn:
                if col.name in {c["name"] for c in inspect(conn).get_columns(table.name)}:
                    continue  # another process added it meanwhile
                conn.exec_driver_sql(_add_column_sql(conn, table, col))
            done.append(f"{table.name}.{col.name}")
        except SQLAlchemyError as exc:
            if col.name not in {c["name"] for c in inspect(eng).get_columns(table.name)}:
                raise SchemaError(f"could not add column {table.name}.{col.name} to the database: {exc}") from exc
    for table in SQLModel.metadata.sorted_tables:
        present = {i["name"] for i in inspect(eng).get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in present:
                index.create(eng, checkfirst=True)
                done.append(f"index {index.name}")
    if done:
        log.warning("database brought up to this version: added %s", ", ".join(done))
    return done


def _missing(eng: Engine) -> list[tuple[Table, Column]]:
    insp = inspect(eng)
    out = []
    for table in SQLModel.metadata.sorted_tables:
        have = {c["name"] for c in insp.get_columns(table.name)}
        out.extend((table, col) for col in table.columns if col.name not in have)
    return out


def _add_column_sql(conn: Connection, table: Table, col: Column) -> str:
    """ALTER TABLE ... ADD COLUMN with the model's type, and its scalar
    default as the column default, so rows already there get a value."""
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    if col.primary_key:
        raise SchemaError(f"table {table.name} lacks its key column {col.name}: not an upgrade this can make")
    sql = f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(col.name)} {col.type.compile(dialect=dialect)}"
    default = col.default.arg if col.default is not None and col.default.is_scalar else None
    if default is not None:
        value = literal(default, type_=col.type).compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        sql += f" DEFAULT {value}"
        if not col.nullable:
            sql += " NOT NULL"
    # a NOT NULL column without a scalar default is added nullable: old rows have no value to give it
    return sql


def _import_models() -> None:
    """Every table is declared in store/tables.py: import it so create_all sees them all."""
    import gateway.store.tables  # noqa: F401

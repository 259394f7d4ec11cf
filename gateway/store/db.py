"""Database engine: SQLite (WAL) by default, PostgreSQL for several workers.

Every table is declared with SQLModel in store/tables.py; its engine comes
from here, the database brought to the newest Alembic revision of
store/migrations on first use (per URL and process).
"""
from __future__ import annotations

import sqlite3
import time

import logging
import threading

from sqlalchemy import MetaData, event, inspect, literal, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.schema import Column, Table
from sqlmodel import SQLModel, create_engine

from gateway.core.clock import as_utc, iso, utcnow  # noqa: F401 - the store's callers use db.utcnow
from gateway.core.config import Settings
from gateway.store import migrations

log = logging.getLogger("gateway.db")

READ_ONLY = "gateway_read_only"  # an execution option: a session that never writes (Store.reading)
MIGRATION_LOCK = 0x67617465776179  # "gateway": the PostgreSQL advisory lock key every gateway migrates under
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def engine(settings: Settings) -> Engine:
    """One engine per database URL and process; the schema brought to the newest revision on first use."""
    url = settings.db_url
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            eng = _make(url)
            _import_models()
            try:
                migrate(eng)
            except BaseException:
                eng.dispose()
                raise
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
            _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(eng, "begin")
        def _on_begin(conn):  # noqa: ANN001
            # A reader (READ_ONLY) begins deferred: it takes no write lock, so a
            # /metrics scrape of seconds never holds the workers' commits back.
            read = conn.get_execution_options().get(READ_ONLY)
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

        return eng
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _wal(cur) -> None:  # noqa: ANN001 - a sqlite3 cursor
    """WAL mode. Switching a new database file to it needs a moment alone with
    the file, and SQLite answers 'locked' at once, without its busy wait, when
    another process is starting on the same new file: try again for a while."""
    for attempt in range(100):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05 + 0.002 * attempt)


def unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` (or an error in its chain) says the database could not
    serve: locked past the busy timeout, the connection lost, a deadlock or a
    serialization failure (PostgreSQL's 40P01, 40001 are OperationalErrors).
    Not the fault of the flows a batch held."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (OperationalError, InterfaceError)) or getattr(exc, "connection_invalidated", False):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class SchemaError(RuntimeError):
    """The database holds a schema this gateway cannot bring up to date by itself."""


def migrate(eng: Engine) -> list[str]:
    """Bring the database to the newest schema revision (store/migrations);
    returns the revisions applied. A new database gets them all; a database
    made before Alembic (tables, no alembic_version) is first brought up to
    the baseline by `upgrade_additive`, then stamped there. Several processes
    or hosts may start at once: all of it runs in one transaction holding the
    database's migration lock (SQLite: BEGIN IMMEDIATE, the write lock;
    PostgreSQL: an advisory lock), so one migrates and the others find it done."""
    with eng.begin() as conn:  # SQLite: the engine begins IMMEDIATE (see _make)
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        at = migrations.current(conn)
        if at == migrations.head():
            return []
        if at is not None and not migrations.known(at):
            raise SchemaError(f"the database is at schema revision {at}, which this version of the gateway "
                              "does not know (was it made by a newer one?)")
        if at is None:
            baseline = migrations.baseline_schema()
            if set(baseline.tables) & set(inspect(conn).get_table_names()):  # made before Alembic
                baseline.create_all(conn)  # whole tables it lacks
                upgrade_additive(conn, baseline)
                migrations.stamp(conn, migrations.BASELINE)
        return migrations.upgrade(conn)


def upgrade_additive(bind: Engine | Connection, schema: MetaData | None = None) -> list[str]:
    """Bring a database made by an earlier version up to `schema` (the
    models of tables.py unless given; at start, the baseline revision's
    tables): the columns and indexes it lacks are added (create_all only adds
    whole tables, and runs first). What existed stays as it was, rows
    included; a new NOT NULL column gets its model default in the rows
    already there. A change that is not an addition (a renamed or retyped
    column) is not attempted. On a Connection it runs in the caller's
    transaction (at start, `migrate` holds the migration lock).
    Returns what was added, as "table.column" and "index name"."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            return upgrade_additive(conn, schema)
    schema = SQLModel.metadata if schema is None else schema
    done = []
    for table in schema.sorted_tables:
        have = {c["name"] for c in inspect(bind).get_columns(table.name)}
        for col in table.columns:
            if col.name in have:
                continue
            try:
                bind.exec_driver_sql(_add_column_sql(bind, table, col))
            except SQLAlchemyError as exc:
                raise SchemaError(f"could not add column {table.name}.{col.name} to the database: {exc}") from exc
            done.append(f"{table.name}.{col.name}")
    for table in schema.sorted_tables:
        present = {i["name"] for i in inspect(bind).get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in present:
                index.create(bind)
                done.append(f"index {index.name}")
    if done:
        log.warning("database brought up to this version: added %s", ", ".join(done))
    return done


def _add_column_sql(conn: Connection, table: Table, col: Column) -> str:
    """ALTER TABLE ... ADD COLUMN with the model's type, and its scalar
    default as the column default, so rows already there get a value."""
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    if col.primary_key:
        raise SchemaError(f"table {table.name} lacks its key column {col.name}: not an upgrade this can make")
    sql = f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(col.name)} {col.type.compile(dialect=dialect)}"
    default = _scalar_default(table, col)
    if default is not None:
        value = literal(default, type_=col.type).compile(dialect=dialect, compile_kwargs={"literal_binds": True})
        sql += f" DEFAULT {value}"
        if not col.nullable:
            sql += " NOT NULL"
    # a NOT NULL column without a scalar default is added nullable: old rows have no value to give it
    return sql


def _scalar_default(table: Table, col: Column) -> object | None:
    """The column's scalar default, else its model's: the baseline's columns carry none."""
    model = SQLModel.metadata.tables.get(table.name)
    for c in (col, model.c.get(col.name) if model is not None else None):
        if c is not None and c.default is not None:
            return c.default.arg if c.default.is_scalar else None
    return None


def _import_models() -> None:
    """Every table is declared in store/tables.py: import it so upgrade_additive sees them all."""
    import gateway.store.tables  # noqa: F401

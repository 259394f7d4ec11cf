"""Database engine: SQLite (WAL) by default, PostgreSQL for several workers.

Every module that keeps data declares its tables with SQLModel (`table=True`)
and gets its engine here, so one `create_all` makes the whole schema.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, create_engine

from .config import Settings

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def utcnow() -> datetime:
    """Aware UTC timestamps everywhere (one zone, so SQLite's text compare holds)."""
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with a Z, as return files show times."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def engine(settings: Settings) -> Engine:
    """One engine per database URL and process; tables created on first use."""
    url = settings.db_url
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            eng = _make(url)
            _import_models()
            SQLModel.metadata.create_all(eng)
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


def _import_models() -> None:
    """Import every module that declares tables, so create_all sees them all."""
    import importlib

    for mod in ("gateway.store", "gateway.partners", "gateway.directory", "gateway.lifecycle"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a module not written yet in this checkout
            if exc.name != mod:
                raise

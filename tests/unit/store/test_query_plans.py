"""The hot lookups of the queue, the API and the scrapes use their indexes on
SQLite: the statements a real call runs are captured and explained, and none
reads a table through (a scan that grows with every flow ever received). And
readers never hold writers back."""
from __future__ import annotations

import threading
from contextlib import contextmanager

from sqlalchemy import event, func, select

from gateway.store import api_clients, db, monitoring, reporting
from gateway.store.repository import NewFlow, Store
from gateway.store.tables import Flow


@contextmanager
def _statements(store: Store):
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        if not executemany:
            seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def _plans(store: Store, seen: list[tuple[str, object]], table: str = "flow") -> list[str]:
    """The plan lines of each captured statement that reads `table`."""
    out = []
    with store.engine.connect() as c:
        for sql, params in seen:
            if f" {table}" not in sql.lower() or not sql.lstrip().upper().startswith(("SELECT", "UPDATE")):
                continue
            rows = c.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
            out.append(" / ".join(r[-1] for r in rows))
    return out


def test_a_claim_finds_retried_and_fresh_flows_through_the_queue_index(home):
    store = Store(home)
    with _statements(store) as seen:
        store.claim("h:1:w0")
    plans = _plans(store, seen)
    assert len(plans) == 2, plans  # the retried flows first, then a fresh batch
    for plan in plans:
        assert "ix_flow_queue_attempts" in plan and "SCAN flow" not in plan, plan


def test_an_api_deposit_finds_its_flow_by_partner_and_bytes(home):
    store = Store(home)
    now = db.utcnow()
    dep = api_clients.Deposit("D1", "ACME", "ab" * 32, 10, "f.xml", "UBL", None, None, None, None, "gwc_x",
                              ".f.tmp", None, now, None, None, None)
    api_clients.record_deposit(home, dep)
    api_clients.mark_deposited(home, "D1", "f.xml")
    store.record_received([NewFlow("F1", "ACME", "api", "f.xml", "ab" * 32, 10, now, "/archive/F1.bin")])
    with _statements(store) as seen:
        assert api_clients.link_flows(home) == 1
    lookups = [p for p in _plans(store, seen) if "ix_flow_partner_bytes" in p or "flow" in p.lower()]
    assert lookups and all("ix_flow_partner_bytes" in p and "SCAN flow" not in p for p in lookups), lookups


def test_the_scrapes_queries_read_indexes_not_the_tables(home):
    """What /metrics and /healthz ask, at every scrape: the flows refused whole
    from a partial index of their events, the failing and stuck flows from the
    queue's indexes, the counts from covering indexes (bench/monitoring_bench.py
    has the times at a million flows)."""
    store = Store(home)
    plans = {}
    for name, call in (("rejections", lambda: monitoring.rejection_codes(home)),
                       ("failing", lambda: monitoring.failing_flows(home, 3, limit=5)),
                       ("stuck", lambda: reporting.stuck_flows(home, now=db.utcnow(), queued_minutes=15, limit=5)),
                       ("by state and partner", lambda: monitoring.flows_by_state_and_partner(home)),
                       ("by status", lambda: reporting.pieces_by_status(home))):
        with _statements(store) as seen:
            call()
        plans[name] = " | ".join(_plans(store, seen, "flow") + _plans(store, seen, "event")
                                 + _plans(store, seen, "piece"))
    assert "ix_event_refused" in plans["rejections"] and "SCAN event" not in plans["rejections"]
    assert "ix_flow_queue_attempts" in plans["failing"] and "SCAN flow " not in plans["failing"] + " "
    assert "SCAN flow " not in plans["stuck"] + " ", plans["stuck"]
    assert "COVERING INDEX ix_flow_state_partner" in plans["by state and partner"]
    assert "ix_piece_valid_status" in plans["by status"]


def test_a_long_read_never_holds_a_writer_back(home):
    """A reader (a scrape, a search) takes no write lock on SQLite: a worker
    commits while it is still open, instead of waiting for it (up to 30 s)."""
    store = Store(home)
    with store.reading() as reader:
        assert reader.execute(select(func.count()).select_from(Flow)).scalar_one() == 0  # its transaction is open
        written = threading.Event()

        def write() -> None:
            store.record_received([NewFlow("F1", "ACME", "folder", "a.xml", "00" * 32, 1, db.utcnow(), "/a")])
            written.set()

        t = threading.Thread(target=write, daemon=True)
        t.start()
        assert written.wait(5), "the writer waited for the reader"
        # the reader still sees the database as it was when it began
        assert reader.execute(select(func.count()).select_from(Flow)).scalar_one() == 0
    assert store.queued() == 1

"""The queue's and the API's hot lookups use their indexes on SQLite: the
statements a real call runs are captured and explained, and none reads the
flow table through (a scan that grows with every flow ever received)."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from gateway.store import api_clients, db
from gateway.store.repository import NewFlow, Store


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

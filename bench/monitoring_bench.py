"""Monitoring on a million flows: bulk-loads (bench/search.py's `build`) a
SQLite store of N flows (two pieces each, ~3% of pieces refused, ~1% of flows
refused whole) with the events intake and the worker record for each, and a
small backlog. Times, each the best of three runs after a cold one, every
query of a scrape of /metrics and of /healthz, then the whole scrape and
health check, and the longest a writer waits for the lock meanwhile; prints
the SQL behind the queries over --slow-ms, each timed alone, with its plan.

    PYTHONPATH=. .venv/bin/python bench/monitoring_bench.py [--flows 1000000] [--analyze] [--slow-ms 50]
        [--home DIR] [--keep]    # a later run with the same --home reuses its store

Without --analyze the planner has no statistics, as in the gateway's stores.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _p in (Path(__file__).resolve().parent, REPO):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from gateway.core import config  # noqa: E402
from gateway.ops.monitoring import HealthRules, health, metrics_text, registry_for  # noqa: E402
from gateway.store import db, monitoring, reporting  # noqa: E402
from gateway.store.repository import NewFlow, Store  # noqa: E402
from search import FLOW_COLUMNS, PIECE_COLUMNS, PerFlow, bench_home, build, timed  # noqa: E402

F = {c: i for i, c in enumerate(FLOW_COLUMNS)}
P = {c: i for i, c in enumerate(PIECE_COLUMNS)}
# what refuses a whole flow (the flow-level validation event's errors), and the format it was taken for
REFUSALS = (((["IRR_SYNTAX"], "ubl-invoice"), 60), ((["IRR_TYPE_F"], "unknown"), 20), ((["IRR_XSD"], "cii"), 10),
            ((["IRR_TAILLE_F"], "unknown"), 5), ((["IRR_SYNTAX", "IRR_XSD"], "ubl-invoice"), 5))
ROUTED = json.dumps({"from": None, "role": "platform"})


def worker_events(seed: int = 11, refused_share: float = 0.01) -> PerFlow:
    """build()'s per_flow hook: refuses ~1% of flows whole, sets the others' state from their pieces, gives
    the events intake and the worker record (runtime/worker.py `_finish`, lifecycle/new_pieces.py)."""
    rng = random.Random(seed)
    details: dict[str, str] = {}  # the few distinct detail texts, made once

    def detail(**d: Any) -> str:
        key = repr(d)
        return details.get(key) or details.setdefault(key, json.dumps(d))

    def shape(flow: tuple, pieces: list[tuple]) -> tuple[tuple, list[tuple], list[tuple]]:
        fid, at, done = flow[F["id"]], flow[F["received_at"]], flow[F["report_written_at"]]
        events = [(fid, None, "reception", "received", at, json.dumps(
            {"file": flow[F["file_name"]], "sha256": flow[F["sha256"]], "size": flow[F["size"]], "channel": "folder"}))]
        row = list(flow)
        if rng.random() < refused_share:  # refused whole: no pieces
            errors, fmt = rng.choices([v for v, _ in REFUSALS], [w for _, w in REFUSALS])[0]
            row[F["state"]], row[F["format"]], row[F["pieces_total"]], row[F["pieces_valid"]] = "IN_REJETE", fmt, 0, 0
            events.append((fid, None, "validation", "IN_REJETE", done, detail(format=fmt, errors=errors)))
            pieces = []
        else:
            n_ok = sum(1 for p in pieces if p[P["valid"]])
            state = "IN_INTEGRE" if n_ok == len(pieces) else "IN_REJETE" if n_ok == 0 else "IN_INTEGRE_PARTIEL"
            row[F["state"]], row[F["pieces_valid"]] = state, n_ok
            events.append((fid, None, "validation", state, done, detail(format=row[F["format"]], errors=[])))
            for p in pieces:
                codes = [c for c in p[P["error_codes"]].split(",") if c]
                events.append((fid, p[P["id"]], "validation", "accepted" if p[P["valid"]] else "rejected", done,
                               detail(codes=codes)))
            for p in pieces:  # routing: the entry status, and the delivery to its first addressee
                if p[P["valid"]]:
                    events.append((fid, p[P["id"]], "status", "DEPOSEE", done, ROUTED))
                    events.append((fid, p[P["id"]], "delivery", "recipient", done, json.dumps(
                        {"dir": f"outbox/{p[P['recipient_siret']]}/{p[P['id']]}.xml"})))
        events.append((fid, None, "report", "written", done, detail(dir=f"reports/{flow[F['partner']]}")))
        return tuple(row), pieces, events

    return shape


def backlog(settings: config.Settings) -> None:
    """12 flows received the gateway's way, 2 then leased past their lease, 2 leased,
    1 tried three times; the others queued, the older ones past the stuck limit."""
    store, now = Store(settings), db.utcnow()
    store.record_received(NewFlow(f"F{now:%Y%m%d%H%M%S}-q{i:07x}", "editeur-000", "folder", f"late-{i}.xml",
                                  secrets.token_hex(32), 5000, now - timedelta(minutes=120 - 10 * i),
                                  f"/archive/q{i}.bin") for i in range(12))
    store.claim("bench:1:dead", limit=2, lease_seconds=-60)
    store.claim("bench:2:worker", limit=2, lease_seconds=600)
    for _ in range(3):
        store.release([c.id for c in store.claim("bench:3:worker", limit=1)], tried=True)


class Recorder:
    """The SELECTs the engine runs while `on` (statement -> its last parameters)."""

    def __init__(self, engine: Engine) -> None:
        self.on, self.seen = False, dict[str, Any]()
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if self.on and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.seen[statement] = params


Timing = tuple[str, float, int, dict[str, Any]]  # label, ms, result, SQL run (statement -> parameters)


def measure(settings: config.Settings, rec: Recorder) -> list[Timing]:
    s, rules = settings, HealthRules.from_settings(settings)
    stuck = rules.stuck_minutes  # as the collector reads it
    cases: list[tuple[str, Callable[[], int]]] = [
        ("/metrics flows_by_state_and_partner", lambda: len(monitoring.flows_by_state_and_partner(s))),
        ("/metrics rejection_codes", lambda: len(monitoring.rejection_codes(s))),
        ("/metrics backlog", lambda: monitoring.backlog(s).queued),
        ("/metrics durations", lambda: monitoring.durations(s).count),
        ("/metrics pieces_by_status", lambda: len(reporting.pieces_by_status(s))),
        ("/metrics stuck_flows(limit=0)",
         lambda: reporting.stuck_flows(s, now=db.utcnow(), queued_minutes=stuck, limit=0)[0]),
        ("/metrics WHOLE SCRAPE (bytes)", lambda: len(metrics_text(registry_for(s)))),
        ("/healthz Store.counts_by_state", lambda: len(Store(s).counts_by_state())),
        ("/healthz stuck_flows(limit=5)",
         lambda: reporting.stuck_flows(s, now=db.utcnow(), queued_minutes=stuck, limit=5)[0]),
        ("/healthz failing_flows(limit=5)", lambda: monitoring.failing_flows(s, rules.flow_attempts, limit=5)[0]),
        ("/healthz WHOLE health() (HTTP status)", lambda: health(s)[0]),
    ]
    out = []
    for label, fn in cases:
        rec.seen, rec.on = {}, True
        try:
            _, secs, n = timed(label, fn)
        finally:
            rec.on = False
        out.append((label, secs * 1000, n, rec.seen))
    return out


def writer_wait(settings: config.Settings, fn: Callable[[], object]) -> float:
    """The longest (ms) a writer waits for the write lock (BEGIN IMMEDIATE, as every
    session of the gateway begins, reads included) while `fn` runs in another thread."""
    done, waits = threading.Event(), [0.0]

    def run() -> None:
        try:
            fn()
        finally:
            done.set()
    conn = sqlite3.connect(Store(settings).engine.url.database, isolation_level=None, timeout=120)
    th = threading.Thread(target=run)
    th.start()
    while not done.is_set():
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        waits.append(time.perf_counter() - t0)
        conn.execute("ROLLBACK")
        time.sleep(0.001)
    th.join()
    conn.close()
    return max(waits) * 1000


def alone(engine: Engine, sql: str, params: Any) -> tuple[float, list[str]]:
    """One statement timed alone (best of 3 after a cold run, all rows fetched), and its query plan."""
    with contextlib.closing(engine.raw_connection()) as raw:
        cur = raw.cursor()
        _, secs, _ = timed(sql, lambda: len(cur.execute(sql, params).fetchall()))
        depth: dict[int, int] = {0: -1}
        plan = []
        for node, parent, _, detail in cur.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall():
            depth[node] = depth.get(parent, -1) + 1
            plan.append("  " * depth[node] + detail)
        return secs * 1000, plan


def report(settings: config.Settings, timings: list[Timing], slow_ms: float) -> None:
    print(f"\n{'query':<46} {'best of 3':>11} {'result':>8}  statements")
    for label, ms, n, statements in timings:
        print(f"{label:<46} {ms:>8.1f} ms {n:>8}  {len(statements)}")
    for label, fn in (("the whole scrape", lambda: metrics_text(registry_for(settings))),
                      ("health()", lambda: health(settings))):
        print(f"a writer waited up to {writer_wait(settings, fn):.0f} ms for the write lock during {label}")
    engine = Store(settings).engine
    for label, ms, _, statements in timings:
        if ms < slow_ms or "WHOLE" in label:
            continue
        print(f"\n## {label}: {ms:.1f} ms")
        for sql, params in statements.items():
            alone_ms, plan = alone(engine, sql, params)
            print(f"  [{alone_ms:.1f} ms alone] {' '.join(sql.split())}\n    params {params}")
            print("\n".join("    " + line for line in plan))


def prepare(settings: config.Settings, keep: bool) -> str:
    """What the store holds; ANALYZE's statistics gathered (as build() does) or dropped (the gateway never runs it)."""
    with Store(settings).engine.begin() as conn:
        n = [conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar() for t in ("flow", "piece", "event")]
        q = conn.exec_driver_sql("SELECT queue, count(*) FROM flow WHERE queue != 'done' GROUP BY queue").all()
        have = conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").scalar() \
            and conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar()
        if keep and not have:
            conn.exec_driver_sql("ANALYZE")
        elif not keep and have:
            conn.exec_driver_sql("DELETE FROM sqlite_stat1")
    db.dispose_all()  # connections opened from now on plan without (or with) them
    stats = "with ANALYZE's statistics" if keep else "without statistics (no ANALYZE, as the gateway's stores)"
    return f"{n[0]:,} flows, {n[1]:,} pieces, {n[2]:,} events; not done: {dict(q)}; {stats}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the home (reuse it with --home, no rebuild)")
    ap.add_argument("--analyze", action="store_true", help="plan with ANALYZE's statistics (default: none, "
                    "as in a store the gateway made)")
    ap.add_argument("--slow-ms", type=float, default=50.0, help="show the SQL and plans of queries slower than this")
    args = ap.parse_args()
    root, fresh, settings = bench_home(args.home, "monitoring-bench-")
    try:
        if fresh:
            secs = build(settings, 2 * args.flows, per_flow=worker_events())
            backlog(settings)
            print(f"built {args.flows:,} flows in {secs:.1f} s ({(root / 'gateway.db').stat().st_size / 1e6:.0f} MB)")
        print(prepare(settings, args.analyze))
        report(settings, measure(settings, Recorder(Store(settings).engine)), args.slow_ms)
    finally:
        if not args.keep and not args.home:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The queries behind monitoring (/metrics, /healthz) and the overview's
chart: counts grouped in the database, never rows walked in Python, so a
scrape costs a few aggregate queries whatever the store holds.

Read-only. Everything comes back as frozen records or tuples of them.
(Flows per day, for the overview's chart, are in store/overview.py.)
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import accumulate
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, case, cast, func, select, text

from gateway.core.config import Settings
from gateway.store import db
from gateway.store.repository import Store
from gateway.store.rows import detail_codes
from gateway.store.tables import EVENT_REFUSED, Event, Flow, Piece

# the processing time histogram's upper bounds, in seconds (reception to outcome recorded)
BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True)
class FlowCount:
    state: str
    partner: str
    count: int


@dataclass(frozen=True)
class Backlog:
    queued: int
    running: int
    oldest_queued: datetime | None  # when the oldest flow still queued arrived


@dataclass(frozen=True)
class Durations:
    """A cumulative histogram of flows' time from reception to outcome."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]  # flows at or under each bound
    count: int
    total_seconds: float


@dataclass(frozen=True)
class FailingFlow:
    flow_id: str
    partner: str
    file_name: str
    attempts: int
    queue: str


def flows_by_state_and_partner(settings: Settings) -> tuple[FlowCount, ...]:
    with Store(settings).reading() as s:
        rows = s.execute(select(Flow.state, Flow.partner, func.count()).group_by(Flow.state, Flow.partner)
                         .order_by(Flow.state, Flow.partner)).all()
    return tuple(FlowCount(st, p, n) for st, p, n in rows)


def rejection_codes(settings: Settings) -> dict[str, int]:
    """code -> how many times it refused something: each code of each refused
    piece, and each code of a flow refused whole (its validation event)."""
    out: Counter[str] = Counter()
    with Store(settings).reading() as s:
        # grouped by the stored comma list: a handful of distinct lists, not a row per piece
        for codes, n in s.execute(select(Piece.error_codes, func.count()).where(Piece.valid.is_(False))
                                  .group_by(Piece.error_codes)):
            for code in {c for c in (codes or "").split(",") if c}:
                out[code] += n
        # written as the partial index's own condition (ix_event_refused), so the planner can prove it applies
        detail = (select(Event.detail_json, func.count(func.distinct(Event.flow_id)))
                  .where(text(EVENT_REFUSED)).group_by(Event.detail_json))
        for detail_text, n in s.execute(detail):
            for code in detail_codes(detail_text):
                out[code] += n
    return dict(out)


def backlog(settings: Settings) -> Backlog:
    with Store(settings).reading() as s:
        counts = dict(s.execute(select(Flow.queue, func.count()).where(Flow.queue.in_(("queued", "running")))
                                .group_by(Flow.queue)).all())
        oldest = s.execute(select(func.min(Flow.received_at)).where(Flow.queue == "queued")).scalar()
    return Backlog(counts.get("queued", 0), counts.get("running", 0), db.as_utc(oldest) if oldest else None)


def _seconds(engine_name: str):  # noqa: ANN202 - a SQL expression
    """A done flow's seconds from reception to its recorded outcome, in this dialect."""
    if engine_name == "postgresql":
        return func.extract("epoch", Flow.report_written_at - Flow.received_at)
    return cast((func.julianday(Flow.report_written_at) - func.julianday(Flow.received_at)) * 86400.0, Float)


def durations(settings: Settings, bounds: Sequence[float] = BUCKETS) -> Durations:
    """The histogram counted in one query: each flow's bucket (one CASE a
    row, its seconds computed once), grouped, then summed up here: a third
    of the time of a SUM(CASE) per bound at a million flows."""
    st = Store(settings)
    secs = _seconds(st.engine.dialect.name).label("secs")
    # OFFSET 0 keeps the subquery whole (neither SQLite nor PostgreSQL flattens one with
    # a LIMIT/OFFSET): the seconds are computed once a row, not once per CASE branch
    done = select(secs).where(Flow.queue == "done", Flow.report_written_at.is_not(None)).offset(0).subquery()
    bucket = case(*((done.c.secs <= b, i) for i, b in enumerate(bounds)), else_=len(bounds)).label("bucket")
    with st.reading() as s:
        rows = s.execute(select(bucket, func.count(), func.sum(done.c.secs)).group_by(bucket)).all()
    per = [0] * (len(bounds) + 1)
    total = 0.0
    for i, n, secs_sum in rows:
        per[int(i)] += int(n)
        total += float(secs_sum or 0.0)
    return Durations(tuple(bounds), tuple(accumulate(per))[:len(bounds)], sum(per), total)


def failing_flows(settings: Settings, attempts: int, limit: int = 10) -> tuple[int, tuple[FailingFlow, ...]]:
    """Flows not done yet that workers tried `attempts` times or more (each
    try failed and handed them back). Returns (how many, the most tried)."""
    cond = (Flow.queue.in_(("queued", "running")), Flow.attempts >= attempts)  # ix_flow_queue_attempts
    with Store(settings).reading() as s:
        total = s.execute(select(func.count()).select_from(Flow).where(*cond)).scalar_one()
        rows = s.execute(select(Flow.id, Flow.partner, Flow.file_name, Flow.attempts, Flow.queue).where(*cond)
                         .order_by(Flow.attempts.desc(), Flow.id).limit(limit)).all()
    return total, tuple(FailingFlow(*r) for r in rows)

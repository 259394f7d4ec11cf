"""The queries behind the overview page's chart and its flows list: flows
received per day by state, and flows filtered by state, partner and date.

Read-only; frozen records out, times in aware UTC.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, cast, func, select

from gateway.core.config import Settings
from gateway.store import db
from gateway.store.repository import Store
from gateway.store.tables import Flow


@dataclass(frozen=True)
class DayCount:
    day: date
    state: str
    count: int


@dataclass(frozen=True)
class FlowLine:
    id: str
    partner: str
    file_name: str
    received_at: datetime
    state: str
    format: str | None
    pieces_valid: int
    pieces_total: int
    duplicate_of: str | None


def flows_per_day(settings: Settings, since: datetime) -> tuple[DayCount, ...]:
    """Flows received each day (UTC) since `since`, by state."""
    st = Store(settings)
    day = (cast(Flow.received_at, Date) if st.engine.dialect.name == "postgresql"
           else func.date(Flow.received_at))  # SQLite keeps times as text: CAST(... AS DATE) would give the year
    with st.reading() as s:
        rows = s.execute(select(day, Flow.state, func.count()).where(Flow.received_at >= since)
                         .group_by(day, Flow.state).order_by(day)).all()
    return tuple(DayCount(d if isinstance(d, date) else date.fromisoformat(str(d)), state, n) for d, state, n in rows)


def list_flows(settings: Settings, *, state: str | None = None, partner: str | None = None,
               since: datetime | None = None, until: datetime | None = None,
               limit: int = 200) -> tuple[int, tuple[FlowLine, ...]]:
    """(how many match, the newest `limit`): received in [since, until)."""
    conds = []
    if state:
        conds.append(Flow.state == state)
    if partner:
        conds.append(Flow.partner == partner)
    if since is not None:
        conds.append(Flow.received_at >= since)
    if until is not None:
        conds.append(Flow.received_at < until)
    cols = (Flow.id, Flow.partner, Flow.file_name, Flow.received_at, Flow.state, Flow.format, Flow.pieces_valid,
            Flow.pieces_total, Flow.duplicate_of)
    with Store(settings).reading() as s:
        total = s.execute(select(func.count()).select_from(Flow).where(*conds)).scalar_one()
        rows = s.execute(select(*cols).where(*conds).order_by(Flow.received_at.desc(), Flow.id.desc())
                         .limit(limit)).all()
    return total, tuple(FlowLine(r[0], r[1], r[2], db.as_utc(r[3]), *r[4:]) for r in rows)

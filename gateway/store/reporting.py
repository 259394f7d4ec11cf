"""The queries behind the operators' views: rejections since a date, flows
stuck in the queue, accepted pieces by status and by deadline.

Read-only. Rows that the views read whole come back as the table's model
(`Piece`, as the repository's readers give them); the others as frozen
records, times in aware UTC.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import and_, func, or_, select

from gateway.core.config import Settings
from gateway.core.records import FlowState
from gateway.store import db
from gateway.store.repository import Store
from gateway.store.tables import Event, Flow, Piece

# flows the rejections report counts: refused whole, or partly integrated
REJECTED_STATES = (FlowState.IN_REJETE.value, FlowState.IN_INTEGRE_PARTIEL.value)
_CHUNK = 500  # ids per IN (...) list

_T = TypeVar("_T")


def _chunks(items: Sequence[_T]) -> Iterable[Sequence[_T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


# --- rejections --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RejectedFlow:
    """A flow refused or partly integrated, with the detail of its flow-level
    "validation" event (the last one: a flow re-run after a crash has several)."""

    id: str
    partner: str
    file_name: str
    received_at: datetime
    state: str
    duplicate_of: str | None
    validation_detail: str | None  # the event's detail_json; None without such an event


@dataclass(frozen=True)
class RejectedPiece:
    """A piece that is not valid, with its flow's partner, file and arrival."""

    id: str
    flow_id: str
    index: int
    name: str
    error_codes: tuple[str, ...]  # as stored (a comma list); empty when none was recorded
    partner: str
    file_name: str
    received_at: datetime


@dataclass(frozen=True)
class Rejected:
    """What was refused since a date: flows (in id order) and pieces."""

    flows: tuple[RejectedFlow, ...]
    pieces: tuple[RejectedPiece, ...]


def rejected_since(settings: Settings, since: datetime, partner: str | None = None) -> Rejected:
    """Flows in REJECTED_STATES and pieces not valid, received since `since`
    (of one partner when given), read in one session."""
    f, e, p = Flow.__table__, Event.__table__, Piece.__table__
    with Store(settings).reading() as s:
        q = (select(f.c.id, f.c.partner, f.c.file_name, f.c.received_at, f.c.state, f.c.duplicate_of,
                    e.c.detail_json)
             .select_from(f.outerjoin(e, (e.c.flow_id == f.c.id) & e.c.piece_id.is_(None)
                                      & (e.c.stage == "validation")))
             .where(f.c.state.in_(REJECTED_STATES), f.c.received_at >= since)
             .order_by(f.c.id, e.c.id))
        if partner:
            q = q.where(f.c.partner == partner)
        flows: dict[str, RejectedFlow] = {}
        for fid, part, name, at, state, dup, detail in s.execute(q):
            flows[fid] = RejectedFlow(fid, part, name, db.as_utc(at), state, dup, detail)  # the last event holds
        pq = (select(p.c.id, p.c.flow_id, p.c.index, p.c.name, p.c.error_codes, f.c.partner, f.c.file_name,
                     f.c.received_at)
              .select_from(p.join(f, f.c.id == p.c.flow_id))
              .where(p.c.valid.is_(False), f.c.received_at >= since))
        if partner:
            pq = pq.where(f.c.partner == partner)
        pieces = tuple(RejectedPiece(pid, fid, idx, pname, tuple(c for c in (error_codes or "").split(",") if c),
                                     part, name, db.as_utc(at))
                       for pid, fid, idx, pname, error_codes, part, name, at in s.execute(pq))
    return Rejected(tuple(flows.values()), pieces)


def piece_verdicts(settings: Settings, piece_ids: Iterable[str]) -> dict[str, str]:
    """piece id -> its stored verdict (JSON text), for the pieces that exist."""
    ids = sorted(set(piece_ids))
    out: dict[str, str] = {}
    if not ids:
        return out
    with Store(settings).reading() as s:
        for chunk in _chunks(ids):
            for pid, vj in s.execute(select(Piece.id, Piece.verdict_json).where(Piece.id.in_(chunk))):
                out[pid] = vj
    return out


# --- the queue -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StuckFlow:
    flow_id: str
    partner: str
    file_name: str
    received_at: datetime
    queue: str
    locked_by: str | None
    locked_until: datetime | None
    attempts: int


def stuck_flows(settings: Settings, *, now: datetime, queued_minutes: float,
                limit: int = 100) -> tuple[int, tuple[StuckFlow, ...]]:
    """Flows leased to a worker whose lease expired, or queued for longer than
    `queued_minutes` since they arrived. Returns (how many, the oldest `limit`)."""
    cond = or_(and_(Flow.queue == "running", Flow.locked_until < now),
               and_(Flow.queue == "queued", Flow.received_at < now - timedelta(minutes=queued_minutes)))
    with Store(settings).reading() as s:
        total = s.execute(select(func.count()).select_from(Flow).where(cond)).scalar_one()
        # the ids first (an OR of two index ranges), then their rows in order: ordered
        # directly, SQLite walked the whole received_at index to find the few stuck
        few = select(Flow.id).where(cond).scalar_subquery()
        rows = s.execute(select(Flow).where(Flow.id.in_(few)).order_by(Flow.received_at, Flow.id).limit(limit)
                         ).scalars().all() if limit and total else []
    return total, tuple(StuckFlow(f.id, f.partner, f.file_name, db.as_utc(f.received_at), f.queue, f.locked_by,
                                  db.as_utc(f.locked_until) if f.locked_until else None, f.attempts)
                        for f in rows)


# --- accepted pieces -------------------------------------------------------------------------------

def pieces_by_status(settings: Settings) -> tuple[tuple[str, int], ...]:
    """(status, how many) of the accepted pieces, the largest count first."""
    with Store(settings).reading() as s:
        return tuple((st, n) for st, n in s.execute(
            select(Piece.status, func.count()).where(Piece.valid.is_(True))
            .group_by(Piece.status).order_by(func.count().desc())).all())


def pieces_due_by(settings: Settings, until: datetime, limit: int = 50) -> list[Piece]:
    """Pieces whose delay runs out by `until`, soonest first."""
    with Store(settings).reading() as s:
        return list(s.execute(select(Piece).where(Piece.due_at.is_not(None), Piece.due_at <= until)
                              .order_by(Piece.due_at).limit(limit)).scalars())



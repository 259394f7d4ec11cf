"""Flows, pieces and the append-only event log, behind one narrow interface.

A flow is one file received from a partner; a piece is one invoice in it.
The `flow.queue` column doubles as the job queue: `queued` → `running`
(leased to a worker) → `done`. A claim is one transaction of portable
statements, `FOR UPDATE SKIP LOCKED` on PostgreSQL and under a single-writer
`BEGIN IMMEDIATE` on SQLite, so several workers never take the same flow.

A lease is short (`[intake] lease_seconds`) and renewed by its holder while
it works (`renew`, one UPDATE for all its flows); a flow whose holder stopped
renewing is re-queued by any host (`reap_expired`), at once by its own host
when the holder's process is gone (`reap_dead_holders`). A holder records its
outcome only while the lease is still its own (`complete(holder=...)`).
"""
from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gateway.store import db
from gateway.core.config import Settings
from gateway.core.hosts import alive, this_host
from gateway.store.rows import EventRow, NoticeRow, PieceRow, StatusMove, values
from gateway.store.leasing import LEASE_FRESH, LEASE_RETRIED
from gateway.store.tables import Event, Flow, Notice, Piece

log = logging.getLogger("gateway.store")


def holder_host(host: str = "") -> str:
    """This host as lease holders name it (see gateway.core.hosts)."""
    return this_host(host)


def worker_name(role: str, host: str = "") -> str:
    """Who holds a lease: host, process id, role."""
    return f"{holder_host(host)}:{os.getpid()}:{role}"


def new_flow_id(now: datetime | None = None) -> str:
    now = now or db.utcnow()
    return f"F{now:%Y%m%d%H%M%S}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class NewFlow:
    id: str
    partner: str
    channel: str
    file_name: str
    sha256: str
    size: int
    received_at: datetime
    archive_path: str


@dataclass(frozen=True)
class ClaimedFlow:
    id: str
    partner: str
    file_name: str
    sha256: str
    size: int
    received_at: datetime
    archive_path: str
    duplicate_of: str | None
    replay_of: str | None = None  # the flow whose archived bytes this one evaluates again (gateway replay)
    attempts: int = 1  # this claim included: more than one, the flow came back without an outcome


class Store:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = db.engine(settings)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def reading(self) -> Session:
        """A session that only reads (monitoring, search, reports): on SQLite
        it takes no write lock, so a long read never makes writers wait, and
        it sees the database as it was at its first read. (On PostgreSQL,
        read committed as any session: each statement sees what was committed
        when it began.)"""
        return Session(self.engine.execution_options(**{db.READ_ONLY: True}), expire_on_commit=False)

    # --- intake --------------------------------------------------------------
    def record_received(self, flows: Iterable[NewFlow], *, retry: bool = True) -> list[tuple[str, str | None]]:
        """Insert flows (idempotent by id). A flow whose bytes the partner sent
        before is recorded as a duplicate of the original. Returns (id, duplicate_of)."""
        flows = list(flows)
        if not flows:
            return []
        now = db.utcnow()
        out: list[tuple[str, str | None]] = []
        with self.session() as s:
            known = set(s.execute(select(Flow.id).where(Flow.id.in_([f.id for f in flows]))).scalars())
            keys = {(f.partner, f.sha256) for f in flows}
            originals = {
                (p, h): i for p, h, i in s.execute(
                    select(Flow.partner, Flow.sha256, Flow.id).where(  # the (partner, sha256) index
                        Flow.duplicate_of.is_(None), Flow.replay_of.is_(None), Flow.partner.in_({k[0] for k in keys}),
                        Flow.sha256.in_([k[1] for k in keys])))
                if (p, h) in keys
            }
            rows, events = [], []
            for f in flows:
                if f.id in known:
                    out.append((f.id, None))
                    continue
                dup = originals.get((f.partner, f.sha256))
                if dup is None:
                    originals[(f.partner, f.sha256)] = f.id
                rows.append(dict(id=f.id, partner=f.partner, channel=f.channel, file_name=f.file_name,
                                 sha256=f.sha256, size=f.size, received_at=f.received_at,
                                 archive_path=f.archive_path, duplicate_of=dup, queue="queued",
                                 state="IN_RECU", attempts=0, pieces_total=0, pieces_valid=0, updated_at=now))
                events.append(dict(flow_id=f.id, stage="reception", outcome="duplicate" if dup else "received",
                                   at=now, detail_json=json.dumps({"file": f.file_name, "sha256": f.sha256,
                                                                   "size": f.size, "channel": f.channel,
                                                                   "duplicate_of": dup})))
                out.append((f.id, dup))
            if rows:
                try:
                    # Core executemany: one round trip per table, not one per row
                    s.execute(Flow.__table__.insert(), rows)
                    s.execute(Event.__table__.insert(), events)
                    s.commit()
                except IntegrityError:
                    # Another worker recorded the same bytes in between: once more,
                    # now that its rows are visible they become our originals.
                    s.rollback()
                    if not retry:
                        raise
                    return self.record_received(flows, retry=False)
        return out

    # --- the queue -------------------------------------------------------------
    def claim(self, worker: str, limit: int = 20, lease_seconds: float | None = None) -> list[ClaimedFlow]:
        """Lease up to `limit` queued flows to `worker`, oldest first, for
        `lease_seconds` (the settings' lease unless given). A flow back without
        an outcome (its worker died, its batch failed) is leased alone once it
        leads the queue: if it is what stops workers, it stops no other flow
        again, and its attempts count it alone (`Settings.max_attempts`)."""
        if lease_seconds is None:
            lease_seconds = self.settings.lease_seconds
        now = db.utcnow()
        values = {"worker": worker, "now": now, "until": now + timedelta(seconds=lease_seconds)}
        with self.session() as s:
            rows = s.execute(LEASE_RETRIED, values).all()
            if not rows:
                rows = s.execute(LEASE_FRESH, {**values, "limit": limit}).all()
            s.commit()
        return sorted((ClaimedFlow(*r) for r in rows), key=lambda c: (c.received_at, c.id))  # as received

    def renew(self, worker: str) -> int:
        """The heartbeat: every flow `worker` holds is leased to it for another
        `lease_seconds`, in one UPDATE. Returns how many it still holds (a flow
        reaped meanwhile is no longer its own and is not renewed)."""
        now = db.utcnow()
        with self.session() as s:
            res = s.execute(update(Flow).where(Flow.queue == "running", Flow.locked_by == worker)
                            .values(locked_until=now + timedelta(seconds=self.settings.lease_seconds)))
            s.commit()
            return res.rowcount or 0

    def reap_dead_holders(self) -> int:
        """Flows leased by a worker of this host whose process is gone go back
        to the queue at once (a crash must not leave them waiting for the lease
        to expire); other hosts' leases are left to expire."""
        prefix = f"{holder_host(self.settings.host_name)}:"
        with self.session() as s:
            holders = set(s.execute(select(Flow.locked_by).where(
                Flow.queue == "running", Flow.locked_by.like(f"{prefix}%"))).scalars())
            dead = [h for h in holders if not alive(h[len(prefix):].split(":", 1)[0])]
            if not dead:
                return 0
            res = s.execute(update(Flow).where(Flow.queue == "running", Flow.locked_by.in_(dead))
                            .values(queue="queued", locked_by=None, locked_until=None, updated_at=db.utcnow()))
            s.commit()
            return res.rowcount or 0

    def reap_expired(self) -> int:
        """Flows whose holder stopped renewing its lease (a dead worker, on any
        host) go back to the queue. Rows another transaction holds are left
        for the next reap (on PostgreSQL, a host that died mid-transaction
        keeps its row locks until the server notices): the reap never waits."""
        now = db.utcnow()
        expired = (select(Flow.id).where(Flow.queue == "running", Flow.locked_until < now)
                   .with_for_update(skip_locked=True))
        with self.session() as s:
            res = s.execute(update(Flow).where(Flow.id.in_(expired.scalar_subquery()))
                            .values(queue="queued", locked_by=None, locked_until=None, updated_at=now))
            s.commit()
            return res.rowcount or 0

    def release(self, ids: list[str] | None, *, tried: bool = False, holder: str | None = None) -> int:
        """Give claimed flows back to the queue: untried (a worker stopping
        early, a status file waiting its turn), which is not an attempt, or
        `tried` and failed, which is. With `holder`, only those still leased
        to it (one taken over meanwhile is the new holder's); `ids` None: all
        of them (a failed batch whose hand-back failed too). How many."""
        if ids is None and holder is None:
            raise ValueError("release(None) gives back a holder's flows: name the holder")
        if ids is not None and not ids:
            return 0
        which = [Flow.id.in_(ids)] if ids is not None else []
        mine = [Flow.locked_by == holder] if holder is not None else []
        with self.session() as s:
            res = s.execute(update(Flow).where(*which, Flow.queue == "running", *mine)
                            .values(queue="queued", locked_by=None, locked_until=None,
                                    attempts=Flow.attempts - (0 if tried else 1)))
            s.commit()
            return res.rowcount or 0

    def earlier_pending(self, flow: "ClaimedFlow", settled: Iterable[str] = ()) -> bool:
        """Whether a flow received before this one is not processed yet
        (queued, or in a worker's hands, this worker's batch included),
        `settled` aside (flows of the batch whose effects are already committed)."""
        t = Flow.__table__
        with self.session() as s:
            return s.execute(select(t.c.id).where(
                t.c.queue.in_(("queued", "running")), t.c.id.notin_([flow.id, *settled]),  # the queue index
                or_(t.c.received_at < flow.received_at,
                    and_(t.c.received_at == flow.received_at, t.c.id < flow.id))).limit(1)).first() is not None

    def queued(self) -> int:
        with self.session() as s:
            return s.execute(select(func.count()).select_from(Flow).where(Flow.queue == "queued")).scalar_one()

    def pending(self) -> int:
        """Flows not processed yet (queued or in a worker's hands)."""
        with self.session() as s:
            return s.execute(select(func.count()).select_from(Flow).where(
                Flow.queue.in_(("queued", "running")))).scalar_one()

    # --- results ---------------------------------------------------------------
    def complete(self, results: Iterable["FlowResult"], *, holder: str | None = None) -> list[str]:
        """Record outcomes (pieces, events, state) of processed flows in one
        transaction. With `holder`, only the flows still leased to it: a worker
        whose lease was taken over (paused past it, not dead) drops its result
        and the new holder's stands (its files had the same names, written
        atomically). Returns the ids recorded."""
        results = list(results)
        if not results:
            return []
        now = db.utcnow()
        with self.session() as s:
            if holder is not None:
                results = self._still_held(s, results, holder, now)
                if not results:
                    s.commit()
                    return []
            ids = [r.flow_id for r in results]
            # A flow re-run after a crash replaces its pieces (same ids), never duplicates them.
            s.execute(Piece.__table__.delete().where(Piece.flow_id.in_(ids)))
            pieces, events = [], []
            for r in results:
                for p in r.pieces:
                    pieces.append(values(p, created_at=now))
                for e in r.events:
                    events.append(values(e, at=now))
            if pieces:
                s.execute(Piece.__table__.insert(), pieces)
            if events:
                s.execute(Event.__table__.insert(), events)
            won = self._apply_changes(s, [c for r in results for c in r.changes], now)
            # the flows' own notices (written with them) and those of the changes that won (for flush_notices)
            notices = [values(n, created_at=now) for r in results for n in (*r.notices, *won.get(r.flow_id, ()))]
            if notices:
                s.execute(Notice.__table__.insert(), notices)
            t = Flow.__table__
            s.execute(
                t.update().where(t.c.id == bindparam("b_id")).values(
                    state=bindparam("b_state"), format=bindparam("b_format"), queue="done", locked_by=None,
                    locked_until=None, pieces_total=bindparam("b_total"), pieces_valid=bindparam("b_valid"),
                    report_written_at=bindparam("b_report"), updated_at=now),
                [dict(b_id=r.flow_id, b_state=r.state, b_format=r.format, b_total=len(r.pieces),
                      b_valid=sum(1 for p in r.pieces if p.valid),
                      b_report=now) for r in results])  # complete() comes after the reports are written
            s.commit()
        return ids

    @staticmethod
    def _still_held(s: Session, results: list["FlowResult"], holder: str, now: datetime) -> list["FlowResult"]:
        """The results whose flow is still leased to `holder`, their rows now
        locked by this transaction until it records them done: a reap cannot
        take them meanwhile (PostgreSQL: it skips locked rows; SQLite: it
        waits for the write lock)."""
        t = Flow.__table__
        held = set(s.execute(t.update().where(
            t.c.id.in_([r.flow_id for r in results]), t.c.queue == "running", t.c.locked_by == holder)
            .values(updated_at=now).returning(t.c.id)).scalars())
        lost = [r.flow_id for r in results if r.flow_id not in held]
        if lost:
            log.warning("%s: lease of %d flow(s) taken over meanwhile (%s); their outcome is the new holder's",
                        holder, len(lost), ", ".join(lost[:5]))
        return [r for r in results if r.flow_id in held]

    @staticmethod
    def _apply_changes(s: Session, changes: list[StatusMove], now: datetime) -> dict[str, list[NoticeRow]]:
        """Conditional status updates: a piece moves only from the status it
        was seen in, so a concurrent change is never overwritten. Returns, by
        flow, the status files of the changes that won (none for one that lost)."""
        pt = Piece.__table__
        won: dict[str, list[NoticeRow]] = {}
        for ch in changes:
            res = s.execute(pt.update().where(pt.c.id == ch.piece_id, pt.c.status == ch.expect).values(
                status=ch.status, status_at=now, due_at=ch.due_at, seq=pt.c.seq + ch.steps))
            if res.rowcount:
                won.setdefault(ch.flow_id, []).extend(ch.notices)
            s.execute(Event.__table__.insert(), [dict(
                flow_id=ch.flow_id, piece_id=ch.piece_id, stage="status",
                outcome=ch.status if res.rowcount else "conflict", at=now, detail_json=ch.detail_json)])
        return won

    # --- reading ---------------------------------------------------------------
    def recent_flows(self, limit: int = 50, partner: str | None = None, state: str | None = None) -> list[Flow]:
        with self.session() as s:
            q = select(Flow).order_by(Flow.received_at.desc(), Flow.id.desc()).limit(limit)
            if partner:
                q = q.where(Flow.partner == partner)
            if state:
                q = q.where(Flow.state == state)
            return list(s.execute(q).scalars())

    def flow(self, flow_id: str) -> Flow | None:
        with self.session() as s:
            return s.get(Flow, flow_id)

    def pieces(self, flow_id: str) -> list[Piece]:
        with self.session() as s:
            return list(s.execute(select(Piece).where(Piece.flow_id == flow_id).order_by(Piece.index)).scalars())

    def pieces_of(self, flow_ids: Iterable[str]) -> dict[str, list[Piece]]:
        """The pieces of several flows in one query, by flow id, in order (a
        flow without any is absent)."""
        ids = list(dict.fromkeys(flow_ids))
        out: dict[str, list[Piece]] = {}
        if not ids:
            return out
        with self.reading() as s:
            for i in range(0, len(ids), 500):  # bound the IN list
                q = select(Piece).where(Piece.flow_id.in_(ids[i:i + 500])).order_by(Piece.flow_id, Piece.index)
                for p in s.execute(q).scalars():
                    out.setdefault(p.flow_id, []).append(p)
        return out

    def piece(self, piece_id: str) -> Piece | None:
        with self.session() as s:
            return s.get(Piece, piece_id)

    def history(self, flow_id: str) -> list[Event]:
        with self.session() as s:
            return list(s.execute(select(Event).where(Event.flow_id == flow_id).order_by(Event.id)).scalars())

    def counts_by_state(self) -> dict[str, int]:
        with self.reading() as s:
            return dict(s.execute(select(Flow.state, func.count()).group_by(Flow.state)).all())


@dataclass(frozen=True)
class FlowResult:
    flow_id: str
    state: str
    format: str
    pieces: tuple[PieceRow, ...]
    events: tuple[EventRow, ...]
    # Status changes of earlier pieces (e.g. an A4 becoming ASSOCIEE when its
    # A15 arrives) and status files to send, committed with the flow.
    changes: tuple[StatusMove, ...] = ()
    notices: tuple[NoticeRow, ...] = ()

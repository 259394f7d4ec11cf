"""Pieces as routing and the life cycle ask for them: invoice numbers taken
(REJ_UNI), the earlier piece a new one continues, a piece named in a status
file, status changes made only if the piece has not moved meanwhile, the
pieces whose delay ran out, and a piece's history with its billing file.

Every query of those packages is here; they get table rows (or the frozen
records below) back, never dicts.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.store import db
from gateway.store.repository import Store
from gateway.store.tables import Event, Flow, InvoiceNumber, Notice, Piece

NumberKey = tuple[str, str, int]  # (supplier, invoice number, year): what REJ_UNI keeps unique


# --- invoice numbers ---------------------------------------------------------------

def register_numbers(store: Store, wanted: Mapping[str, NumberKey]) -> dict[str, str]:
    """Claim (supplier, number, year) for each piece id; returns who holds
    each key (the piece itself, or the one that had it first). Keyed by
    piece id, so a flow processed again after a crash finds its own."""
    now = db.utcnow()
    rows = [dict(supplier=k[0][:64], number=k[1][:64], year=k[2], piece_id=pid, at=now) for pid, k in wanted.items()]
    ins = pg_insert if store.engine.dialect.name == "postgresql" else sqlite_insert
    with store.session() as s:
        s.execute(ins(InvoiceNumber.__table__).on_conflict_do_nothing(), rows)
        s.commit()
        t = InvoiceNumber.__table__
        # One query for the batch: the numbers its pieces hold (the usual
        # case); one more per number another piece held first.
        held = {pid: pid for pid in s.execute(select(t.c.piece_id).where(t.c.piece_id.in_(list(wanted)))).scalars()}
        for pid, k in wanted.items():
            if pid not in held:
                held[pid] = s.execute(select(t.c.piece_id).where(
                    t.c.supplier == k[0][:64], t.c.number == k[1][:64], t.c.year == k[2])).scalar_one()
        return held


def numbers_held(store: Store, wanted: Mapping[str, NumberKey]) -> dict[str, str]:
    """Who already holds each (supplier, number, year), without taking any:
    what register_numbers would answer, for `gateway validate --home`."""
    t = InvoiceNumber.__table__
    held: dict[str, str] = {}
    with store.session() as s:
        for pid, k in wanted.items():
            holder = s.execute(select(t.c.piece_id).where(
                t.c.supplier == k[0][:64], t.c.number == k[1][:64], t.c.year == k[2])).scalar()
            held[pid] = holder or pid
    return held


def original_flow(store: Store, partner: str, sha256: str) -> str | None:
    """The flow that first brought these bytes from this partner, if any (a deposit of them is a DOUBLON)."""
    with store.session() as s:
        return s.execute(select(Flow.id).where(Flow.partner == partner, Flow.sha256 == sha256,
                                               Flow.duplicate_of.is_(None), Flow.replay_of.is_(None))).scalar()


def release_numbers(store: Store, piece_ids: Sequence[str]) -> None:
    """Give back the numbers of pieces that will not exist after all (their
    flow failed after registering them), so the supplier can send them again."""
    if not piece_ids:
        return
    t = InvoiceNumber.__table__
    with store.session() as s:
        s.execute(t.delete().where(t.c.piece_id.in_(list(piece_ids))))
        s.commit()


# --- finding pieces ----------------------------------------------------------------

def earlier_piece(store: Store, invoice_number: str, cadres: Sequence[str]) -> Piece | None:
    """The latest accepted piece of one of `cadres` with this number: the one a new piece continues."""
    with store.session() as s:
        return s.execute(select(Piece).where(Piece.invoice_number == invoice_number, Piece.cadre.in_(list(cadres)),
                                             Piece.valid.is_(True))
                         .order_by(Piece.created_at.desc())).scalars().first()


def find_piece(store: Store, *, piece_id: str | None = None, invoice_number: str | None = None,
               supplier_id: str | None = None) -> Piece | None:
    """A request names a piece by its id, or by invoice number (and supplier):
    by number, only an accepted piece, and only if one alone has it."""
    with store.session() as s:
        if piece_id:
            return s.get(Piece, piece_id)
        if invoice_number:
            q = select(Piece).where(Piece.invoice_number == invoice_number, Piece.valid.is_(True))
            if supplier_id:
                q = q.where(Piece.supplier_id == supplier_id)
            found = list(s.execute(q.order_by(Piece.created_at.desc()).limit(2)).scalars())
            return found[0] if len(found) == 1 else None
    return None


@dataclass(frozen=True)
class DuePiece:
    id: str
    cadre: str
    status: str


def pieces_due(store: Store, at: datetime) -> list[DuePiece]:
    """The pieces whose current status's delay ran out by `at`."""
    with store.session() as s:
        rows = s.execute(select(Piece.id, Piece.cadre, Piece.status).where(
            Piece.due_at.is_not(None), Piece.due_at <= at)).all()
    return [DuePiece(pid, cadre, status) for pid, cadre, status in rows]


# --- status changes ------------------------------------------------------------------

@dataclass(frozen=True)
class StatusUpdate:
    """What one status change sets on a piece and records beside it."""

    status: str  # the status the piece ends in
    due_at: datetime | None
    seq: int  # status changes so far, this one's included
    columns: Mapping[str, Any] = field(default_factory=dict)  # routing columns a correction rewrote
    events: tuple[Event, ...] = ()
    notices: tuple[Notice, ...] = ()  # status files to send, written after the commit


def request_applied(store: Store, flow_id: str, piece_id: str, index: int) -> bool:
    """Whether request `index` of status file `flow_id` already changed this
    piece (the file is processed again after a crash)."""
    with store.session() as s:
        for (detail,) in s.execute(select(Event.detail_json).where(
                Event.flow_id == flow_id, Event.piece_id == piece_id, Event.stage == "status")):
            if json.loads(detail or "{}").get("request") == index:
                return True
    return False


def change_if_unmoved(store: Store, piece_id: str, seen_status: str, writes: Sequence[Callable[[], None]],
                      change: Callable[[Piece, datetime], StatusUpdate]) -> bool:
    """Make one status change in one transaction, the piece row locked, only
    if the piece is still in `seen_status`: False (nothing done) if it moved
    meanwhile. `writes` (deliveries, under names that make writing them again
    harmless) run before the commit; `change` says what the locked row
    becomes at this instant and what to record with it."""
    with store.session() as s:
        locked = s.execute(select(Piece).where(Piece.id == piece_id).with_for_update()).scalars().first()
        if locked is None or locked.status != seen_status:
            return False
        for w in writes:
            w()
        now = db.utcnow()
        update = change(locked, now)
        for k, v in update.columns.items():
            setattr(locked, k, v)
        locked.status = update.status
        locked.status_at = now
        locked.due_at = update.due_at
        locked.seq = update.seq
        s.add(locked)
        s.add_all(update.events)
        s.add_all(update.notices)
        s.commit()
    return True


# --- reading -------------------------------------------------------------------------

@dataclass(frozen=True)
class PieceHistory:
    piece: Piece
    flow: Flow | None
    events: list[Event]  # in order
    dossier: list[Piece]  # the other pieces of its billing file, oldest first


def piece_history(store: Store, piece_id: str) -> PieceHistory | None:
    """A piece, its events in order, and the other pieces of its billing file."""
    with store.session() as s:
        piece = s.get(Piece, piece_id)
        if piece is None:
            return None
        events = list(s.execute(select(Event).where(Event.piece_id == piece_id).order_by(Event.id)).scalars())
        dossier = []
        seen = {piece_id}
        todo = [piece.link_id] if piece.link_id else []
        todo += list(s.execute(select(Piece.id).where(Piece.link_id == piece_id)).scalars())
        while todo:
            pid = todo.pop()
            if pid in seen or pid is None:
                continue
            seen.add(pid)
            p = s.get(Piece, pid)
            if p is None:
                continue
            dossier.append(p)
            if p.link_id:
                todo.append(p.link_id)
            todo += list(s.execute(select(Piece.id).where(Piece.link_id == pid)).scalars())
        flow = s.get(Flow, piece.flow_id)
    return PieceHistory(piece, flow, events, sorted(dossier, key=lambda p: p.created_at))


def earlier_pieces(store: Store, invoice_number: str, cadres: Sequence[str], limit: int = 50) -> list[Piece]:
    """Every accepted piece of one of `cadres` with this number, latest first:
    those a new piece may continue (routing keeps the one of its supplier and contract)."""
    with store.session() as s:
        return list(s.execute(select(Piece).where(Piece.invoice_number == invoice_number,
                                                  Piece.cadre.in_(list(cadres)), Piece.valid.is_(True))
                              .order_by(Piece.created_at.desc()).limit(limit)).scalars())

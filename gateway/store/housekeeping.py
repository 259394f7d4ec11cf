"""What the housekeeping may delete from the archive, and recording that it did.

An archived file may go once every flow reading it arrived before the
retention's limit and is done, and no piece still needs it: each piece of
those flows is in a final status (a refused one is IRRECEVABLE, final), and
so is every piece of its billing file (an A4 ASSOCIEE stays while its A15
is open). Which statuses are final is the life cycle's word: the caller
passes them.
"""
from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select, update

from gateway.store import db
from gateway.store.repository import Store
from gateway.store.tables import Event, Flow, Piece

_CHUNK = 500


@dataclass(frozen=True)
class ArchivedFile:
    path: str
    flows: tuple[str, ...]
    received_at: datetime  # the latest of its flows' arrivals


@dataclass(frozen=True)
class KeptFile:
    path: str
    flows: tuple[str, ...]
    reason: str


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield list(items[i:i + _CHUNK])


def _open_dossier_pieces(s, final: Collection[str]) -> set[str]:  # noqa: ANN001 - a Session
    """Every piece of a billing file that still has a piece not in a final status."""
    p = Piece.__table__
    linked_to = select(p.c.link_id).where(p.c.link_id.is_not(None))
    frontier = set(s.execute(select(p.c.id).where(p.c.status.notin_(list(final)), or_(
        p.c.link_id.is_not(None), p.c.id.in_(linked_to)))).scalars())
    seen: set[str] = set()
    while frontier:
        seen |= frontier
        found: set[str] = set()
        for chunk in _chunks(sorted(frontier)):
            for pid, link in s.execute(select(p.c.id, p.c.link_id).where(
                    or_(p.c.id.in_(chunk), p.c.link_id.in_(chunk)))):
                found.add(pid)
                if link:
                    found.add(link)
        frontier = found - seen
    return seen


def purgeable_archives(store: Store, before: datetime, final: Collection[str]) -> tuple[list[ArchivedFile],
                                                                                       list[KeptFile]]:
    """(the archived files that may go, those kept with the reason) among
    the files of the flows received before `before`."""
    f, p = Flow.__table__, Piece.__table__
    with store.session() as s:
        by_path: dict[str, list[tuple[str, datetime]]] = {}
        for fid, path, at in s.execute(select(f.c.id, f.c.archive_path, f.c.received_at).where(
                f.c.received_at < before, f.c.queue == "done", f.c.archive_path != "")):
            by_path.setdefault(path, []).append((fid, db.as_utc(at)))
        kept: dict[str, str] = {}
        for chunk in _chunks(sorted(by_path)):
            for fid, path in s.execute(select(f.c.id, f.c.archive_path).where(f.c.archive_path.in_(chunk), or_(
                    f.c.received_at >= before, f.c.queue != "done"))):
                kept.setdefault(path, f"flow {fid} (newer, or not done) reads it")
        flow_path = {fid: path for path, flows in by_path.items() for fid, _ in flows if path not in kept}
        open_dossiers = _open_dossier_pieces(s, final)
        for chunk in _chunks(sorted(flow_path)):
            for fid, pid, status in s.execute(select(p.c.flow_id, p.c.id, p.c.status).where(
                    p.c.flow_id.in_(chunk), or_(p.c.status.notin_(list(final)),
                                                p.c.id.in_(list(open_dossiers)) if open_dossiers else False))):
                why = (f"piece {pid} is {status}, not a final status" if status not in final
                       else f"the billing file of piece {pid} is still open")
                kept.setdefault(flow_path[fid], why)
    gone = [ArchivedFile(path, tuple(fid for fid, _ in flows), max(at for _, at in flows))
            for path, flows in sorted(by_path.items()) if path not in kept]
    held = [KeptFile(path, tuple(fid for fid, _ in by_path[path]), why) for path, why in sorted(kept.items())]
    return gone, held


def forget_archives(store: Store, files: Sequence[ArchivedFile], *, older_than_days: float) -> int:
    """Record that these files are purged: their flows' archive_path emptied
    (a replay then says so), one "housekeeping" event per flow."""
    now = db.utcnow()
    n = 0
    with store.session() as s:
        for a in files:
            res = s.execute(update(Flow).where(and_(Flow.archive_path == a.path, Flow.id.in_(list(a.flows))))
                            .values(archive_path="", updated_at=now))
            n += res.rowcount or 0
            s.execute(Event.__table__.insert(), [dict(
                flow_id=fid, piece_id=None, stage="housekeeping", outcome="archive_purged", at=now,
                detail_json=json.dumps({"file": a.path, "older_than_days": older_than_days})) for fid in a.flows])
        s.commit()
    return n

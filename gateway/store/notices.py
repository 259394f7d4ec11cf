"""The status files waiting to be written (the `notice` table): the
transactional outbox's queries. The rows are inserted with the status change
they tell of, in its transaction (Store.complete, the life cycle's
change_status); these find the ones not written yet and mark them written.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update

from gateway.store import db
from gateway.store.repository import Store
from gateway.store.tables import Notice


@dataclass(frozen=True)
class NoticeFile:
    """One status file to write: outbox/<party>/statuses/<name><suffix>."""

    id: int
    party: str
    name: str
    suffix: str
    body: bytes


def unwritten(store: Store, limit: int) -> list[NoticeFile]:
    """The oldest status files not written yet, in the order they were recorded."""
    t = Notice.__table__
    with store.session() as s:
        rows = s.execute(select(t.c.id, t.c.party, t.c.name, t.c.suffix, t.c.body)
                         .where(t.c.written_at.is_(None)).order_by(t.c.id).limit(limit)).all()
    return [NoticeFile(r.id, r.party, r.name, r.suffix, r.body) for r in rows]


def mark_written(store: Store, ids: Sequence[int]) -> None:
    t = Notice.__table__
    with store.session() as s:
        s.execute(update(t).where(t.c.id.in_(list(ids))).values(written_at=db.utcnow()))
        s.commit()

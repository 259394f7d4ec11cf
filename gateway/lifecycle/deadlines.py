"""Delays: the status the platform sets on its own when a piece's delay
runs out (a validator silent for 15 days...)."""
from __future__ import annotations

from datetime import datetime

from gateway.core.clock import utcnow
from gateway.core.config import Settings
from gateway.lifecycle.changes import Outcome, Request, change_status
from gateway.lifecycle.notices import flush_notices
from gateway.lifecycle.machine import Machine
from gateway.store.pieces import pieces_due
from gateway.store.repository import Store


def apply_deadlines(settings: Settings, store: Store, at: datetime | None = None) -> list[Outcome]:
    """Set the status each delay ends in for every piece whose delay ran out by `at`."""
    machine = Machine.load(settings)
    at = at or utcnow()
    out = []
    for piece in pieces_due(store, at):
        d = machine.deadline(piece.cadre, piece.status)
        if d is None:
            continue
        out.append(change_status(settings, store, machine, piece.id, Request(
            d[1], comment=f"délai de {d[0].total_seconds() / 86400:g} jour(s) écoulé"), roles=["platform"]))
    if out:
        flush_notices(settings, store)
    return out

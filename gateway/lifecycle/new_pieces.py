"""The first statuses of the pieces a flow brings: DEPOSEE, then on to the
piece's first addressee, who gets it delivered; a piece that continues an
earlier one moves that one too (its link status), if nobody moved it
meanwhile."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gateway.core.clock import utcnow
from gateway.core.config import Settings
from gateway.core.records import Verdict
from gateway.lifecycle.notices import notices_for, write_notice
from gateway.routing.delivery import delivery_writes
from gateway.routing.links import Link
from gateway.store.repository import ClaimedFlow
from gateway.store.rows import EventRow, NoticeRow, PieceRow, StatusMove


@dataclass(frozen=True)
class Routed:
    """What routing a flow's new pieces gives the worker: its piece rows with
    their entry statuses, rows to record with the flow, moves of earlier
    pieces, and files to write before its report."""

    pieces: tuple[PieceRow, ...] = ()
    events: tuple[EventRow, ...] = ()
    changes: tuple[StatusMove, ...] = ()
    notices: tuple[NoticeRow, ...] = ()
    writes: tuple[Callable[[], None], ...] = ()


def route_new_pieces(settings: Settings, flow: ClaimedFlow, verdicts: Sequence[Verdict],
                     pieces: Sequence[PieceRow], links: Sequence[Link], machine: Any) -> Routed:
    """Set the entry statuses of every accepted piece (DEPOSEE, then on to
    its first addressee), deliver it there, and link it to the piece it
    continues."""
    rows: list[PieceRow] = []
    events: list[EventRow] = []
    changes: list[StatusMove] = []
    notices: list[NoticeRow] = []
    writes: list[Callable[[], None]] = []
    now = utcnow()
    by_piece = {lk.piece_id: lk for lk in links}
    for v, p in zip(verdicts, pieces):
        if not p.valid or v.invoice is None:
            rows.append(p)
            continue
        cadre = p.cadre
        levels = json.loads(p.summary_json).get("levels", 0)
        statuses = machine.entry(cadre, levels)
        holder = machine.holder(cadre, statuses[-1])
        parties = json.loads(p.parties_json)
        party = parties.get(holder) if holder else None
        steps = [dict(status=st, previous=prev, role="platform")
                 for st, prev in zip(statuses, (None, *statuses[:-1]))]
        lk = by_piece.get(p.id)
        p = replace(p, status=statuses[-1], status_at=now, due_at=machine.due(cadre, statuses[-1], now),
                    seq=len(statuses), link_id=lk.earlier_id if lk is not None else None)
        rows.append(p)
        for st in steps:
            events.append(EventRow(flow.id, p.id, "status", st["status"],
                                   json.dumps({"from": st["previous"], "role": "platform"})))
        if holder and holder != "platform" and party:
            target, delivery = delivery_writes(settings, flow, v, p.id, party)
            writes.extend(delivery)
            events.append(EventRow(flow.id, p.id, "delivery", holder,
                                   json.dumps({"dir": str(target.relative_to(settings.home))})))
        notices.extend(notices_for(settings, machine, p, steps, len(statuses), now))
        if lk is not None:
            earlier = lk.earlier
            step = dict(status=lk.linked_status, previous=lk.earlier_status, role="platform",
                        comment=f"associée à {p.invoice_number} ({cadre})")
            # The earlier piece moves only if nobody moved it meanwhile (a
            # conditional update at commit): its status file goes with the
            # change, written after the commit, never for a change that lost.
            changes.append(StatusMove(
                piece_id=lk.earlier_id, expect=lk.earlier_status, status=lk.linked_status, flow_id=flow.id,
                detail_json=json.dumps({"from": lk.earlier_status, "role": "platform", "linked": p.id},
                                       ensure_ascii=False),
                notices=tuple(notices_for(settings, machine, earlier, [step], earlier.seq + 1, now))))
    # Written with the flow's deliveries and report, before its outcome is
    # recorded (already marked written): a re-run after a crash rewrites the
    # same names. Later changes go through the notice table and flush_notices.
    notices = [replace(n, written_at=now) for n in notices]
    writes.extend(lambda n=n: write_notice(settings, n.party, n.name, n.suffix, n.body) for n in notices)
    return Routed(tuple(rows), tuple(events), tuple(changes), tuple(notices), tuple(writes))

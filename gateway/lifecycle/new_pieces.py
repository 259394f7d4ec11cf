"""The first statuses of the pieces a flow brings: DEPOSEE, then on to the
piece's first addressee, who gets it delivered; a piece that continues an
earlier one moves that one too (its link status), if nobody moved it
meanwhile."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.core.clock import utcnow
from gateway.core.config import Settings
from gateway.core.records import Verdict
from gateway.lifecycle.notices import notices_for, write_notice
from gateway.routing.delivery import delivery_writes
from gateway.routing.links import Link
from gateway.store.repository import ClaimedFlow


@dataclass
class Routed:
    """What routing a flow's new pieces gives the worker: rows to record with
    the flow, changes of earlier pieces, and files to write before its report."""

    events: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)
    writes: list[Callable[[], None]] = field(default_factory=list)
    pieces: list[dict[str, Any]] = field(default_factory=list)


def route_new_pieces(settings: Settings, flow: ClaimedFlow, verdicts: Sequence[Verdict],
                     pieces: list[dict[str, Any]], links: Sequence[Link], machine: Any) -> Routed:
    """Set the entry statuses of every accepted piece (DEPOSEE, then on to
    its first addressee), deliver it there, and link it to the piece it
    continues. Updates the piece rows in place."""
    out = Routed()
    now = utcnow()
    by_piece = {lk.piece_id: lk for lk in links}
    for v, p in zip(verdicts, pieces):
        if not p["valid"] or v.piece is None:
            continue
        cadre = p["cadre"]
        levels = json.loads(p["summary_json"]).get("levels", 0)
        statuses = machine.entry(cadre, levels)
        holder = machine.holder(cadre, statuses[-1])
        parties = json.loads(p["parties_json"])
        party = parties.get(holder) if holder else None
        steps = [dict(status=st, previous=prev, role="platform")
                 for st, prev in zip(statuses, (None, *statuses[:-1]))]
        p.update(status=statuses[-1], status_at=now, due_at=machine.due(cadre, statuses[-1], now),
                 seq=len(statuses))
        for st in steps:
            out.events.append(dict(flow_id=flow.id, piece_id=p["id"], stage="status", outcome=st["status"],
                                   detail_json=json.dumps({"from": st["previous"], "role": "platform"})))
        if holder and holder != "platform" and party:
            target, writes = delivery_writes(settings, flow, v, p["id"], party)
            out.writes.extend(writes)
            out.events.append(dict(flow_id=flow.id, piece_id=p["id"], stage="delivery", outcome=holder,
                                   detail_json=json.dumps({"dir": str(target.relative_to(settings.home))})))
        out.notices.extend(notices_for(settings, machine, p, steps, len(statuses), now))
        lk = by_piece.get(p["id"])
        if lk is not None:
            p["link_id"] = lk.earlier_id
            earlier = lk.earlier
            step = dict(status=lk.linked_status, previous=lk.earlier_status, role="platform",
                        comment=f"associée à {p['invoice_number']} ({cadre})")
            # The earlier piece moves only if nobody moved it meanwhile (a
            # conditional update at commit): its status file goes with the
            # change, written after the commit, never for a change that lost.
            out.changes.append(dict(piece_id=lk.earlier_id, expect=lk.earlier_status, status=lk.linked_status,
                                    flow_id=flow.id, due_at=None,
                                    detail={"from": lk.earlier_status, "role": "platform", "linked": p["id"]},
                                    notices=notices_for(settings, machine, earlier, [step], earlier["seq"] + 1, now)))
    # Written with the flow's deliveries and report, before its outcome is
    # recorded (already marked written): a re-run after a crash rewrites the
    # same names. Later changes go through the notice table and flush_notices.
    for n in out.notices:
        n["written_at"] = now
        out.writes.append(lambda n=n: write_notice(settings, n["party"], n["name"], n["suffix"], n["body"]))
    return out

"""The status files a change sends, through the transactional outbox.

A change's files are made when it is decided, one `notice` row per file
(each party concerned, in each format it receives), and inserted in the
change's own transaction; they are written after the commit, and again at
every start until written (flush_notices), so a crash never loses one.
Their names come from the piece and its change count, so writing one again
never makes a second file.
"""
from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from gateway.core.config import Settings
from gateway.core.files import atomic_write
from gateway.outputs.registry import outputs_for
from gateway.outputs.status_files import ForReceiver, StatusNotice
from gateway.routing.parties import folder_of
from gateway.store import notices as outbox
from gateway.store.repository import Store
from gateway.store.rows import NoticeRow, PieceRow

log = logging.getLogger("gateway.lifecycle")


def notices_for(settings: Settings, machine: Any, piece: PieceRow, steps: Sequence[dict[str, Any]],
                seq: int, at: datetime) -> list[NoticeRow]:
    """The status files one change (one or more statuses set together) sends:
    one per party concerned and format it receives, named <piece>.<seq>
    (`notice` rows, not yet written)."""
    if not steps:
        return []
    parties = json.loads(piece.parties_json or "{}")
    summary = json.loads(piece.summary_json or "{}")
    recipient = parties.get("recipient", {})
    supplier = parties.get("supplier", {})
    issued = piece.issue_date
    notes = [StatusNotice(
        piece_id=piece.id, invoice_number=piece.invoice_number,
        invoice_date=date.fromisoformat(issued) if issued else None, cadre=piece.cadre or "A1",
        supplier_id=piece.supplier_id, supplier_name=summary.get("supplier_name") or supplier.get("name"),
        supplier_country=summary.get("supplier_country"), debtor_siret=piece.recipient_siret,
        debtor_name=summary.get("debtor_name") or recipient.get("name"), service_code=piece.service_code,
        status=st["status"], previous=st.get("previous"), reason=st.get("reason"), comment=st.get("comment"),
        at=at, by_role=st.get("role", "platform"),
        type_code=str(summary["type_code"]) if summary.get("type_code") else None,
        by_id=(parties.get(st.get("role", "platform")) or {}).get("siret"),
        deposited_by=piece.partner if piece.deposited_for else None,
        deposited_as=piece.deposited_as, deposited_for=piece.deposited_for) for st in steps]
    roles: list[str] = []
    for st in steps:
        for r in machine.notify(piece.cadre or "A1", st["status"]):
            if r not in roles:
                roles.append(r)
    folders: list[str] = []
    for role in roles:
        party = parties.get(role)
        folder = folder_of(settings, party) if party else None
        if folder and folder not in folders:
            folders.append(folder)
    name = f"{piece.id}.{seq:03d}"
    made: dict[str, ForReceiver | None] = {}  # each format built once for all its receivers
    out = []
    for folder in folders:
        for output in outputs_for(settings, folder):
            if output.name not in made:
                try:
                    # the envelope's id is the file's name: one per message, the same if written again after a crash
                    made[output.name] = output.render(notes, machine, platform_id=settings.platform_id, flow_id=name)
                except ValueError as exc:  # e.g. CPPStatut needs a 14-digit debtor SIRET: the other formats still go
                    log.warning("piece %s: no %s status file (%s)", piece.id, output.name, exc)
                    made[output.name] = None
            write = made[output.name]
            if write is not None:
                out.append(NoticeRow(piece.id, folder, name, output.suffix, write(folder, folder)))
    return out


def write_notice(settings: Settings, party: str, name: str, suffix: str, body: bytes) -> None:
    atomic_write(os.path.join(_statuses(settings.outbox, party), f"{name}{suffix}"), body)


@functools.lru_cache(maxsize=4096)
def _statuses(outbox: Path, party: str) -> str:
    # a party's folder, worked out once: four status files a flow, each was three path parses
    return os.path.join(outbox, party, "statuses")


def flush_notices(settings: Settings, store: Store, limit: int = 1000) -> int:
    """Write the status files not written yet (after a commit, and at start)."""
    n = 0
    while True:
        files = outbox.unwritten(store, limit)
        if not files:
            return n
        for f in files:
            write_notice(settings, f.party, f.name, f.suffix, f.body)
        outbox.mark_written(store, [f.id for f in files])
        n += len(files)

"""What the workers hand the store to record with a flow: typed, immutable rows.

A flow's outcome is recorded in one transaction (`Store.complete`): its
pieces, their events, the status files to send, and the moves of earlier
pieces it links to. These records carry them there; the store turns them
into rows of its tables (store/tables.py) in bulk.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PieceRow:
    """A piece as recorded with its flow: the `piece` table's columns but its creation time."""

    id: str
    flow_id: str
    index: int
    name: str
    format: str
    valid: bool
    status: str
    error_codes: str = ""
    verdict_json: str = "{}"
    partner: str = ""
    cadre: str = ""
    piece_type: str = ""
    invoice_number: str | None = None
    issue_date: str | None = None
    supplier_id: str | None = None
    recipient_siret: str | None = None
    service_code: str | None = None
    engagement_number: str | None = None
    parties_json: str = "{}"
    summary_json: str = "{}"
    status_at: datetime | None = None
    due_at: datetime | None = None
    seq: int = 0
    link_id: str | None = None
    contract_number: str | None = None
    deposited_as: str | None = None  # the depositor's contract role, when it deposited for another
    deposited_for: str | None = None  # the contract role it deposited for


@dataclass(frozen=True)
class EventRow:
    """One entry of the append-only event log; its time is the commit's."""

    flow_id: str
    piece_id: str | None
    stage: str
    outcome: str
    detail_json: str = "{}"


def validation_detail(fmt: str, codes: Iterable[str]) -> str:
    """A flow's validation event detail: its format and the codes it was refused with."""
    return json.dumps({"format": fmt, "errors": list(codes)})


def detail_codes(detail_json: str | None) -> tuple[str, ...]:
    """The codes a validation event's detail names (validation_detail), once each, in order."""
    if not detail_json or '"errors": []' in detail_json:  # most flows: no file-level code, nothing to parse
        return ()
    try:
        errors = json.loads(detail_json).get("errors") or []
    except (ValueError, AttributeError):
        return ()
    return tuple(dict.fromkeys(c for c in errors if isinstance(c, str) and c))


@dataclass(frozen=True)
class NoticeRow:
    """One status file to write for one party (the transactional outbox)."""

    piece_id: str
    party: str
    name: str  # without its suffix: <piece id>.<change count>
    suffix: str  # the format's: ".xml", ".json"
    body: bytes
    written_at: datetime | None = None  # set when written with the flow's own files, before the commit


@dataclass(frozen=True)
class StatusMove:
    """An earlier piece moved by a flow (an A4 becoming ASSOCIEE when its A15
    arrives): applied at commit only if the piece is still `expect`."""

    piece_id: str
    expect: str
    status: str
    flow_id: str
    detail_json: str = "{}"
    due_at: datetime | None = None
    steps: int = 1
    notices: tuple[NoticeRow, ...] = ()  # sent only if the move wins


_PIECE_COLUMNS = tuple(PieceRow.__dataclass_fields__)


def piece_row(stored: Any, **changes: Any) -> PieceRow:
    """A stored piece (a `piece` table row) as a PieceRow, with `changes`."""
    return PieceRow(**{k: changes.get(k, getattr(stored, k)) for k in _PIECE_COLUMNS})


def values(row: Any, **more: Any) -> dict[str, Any]:
    """A row's columns for a bulk insert (not dataclasses.asdict: it deep-copies)."""
    return {**row.__dict__, **more}

"""The documented, stable JSON of `gateway flows --json` and `gateway flow
--json` (README, "JSON for connectors"): what a flow and its pieces are for
a reader, never the store's working columns (leases, archive paths).
Version 1; a field is only ever added."""
from __future__ import annotations

import json
from typing import Any

from gateway.store import db
from gateway.store.tables import Event, Flow, Piece

FLOW_JSON_VERSION = 1


def _time(value: Any) -> str | None:
    return db.iso(value) if value is not None else None


def _object(text: str | None) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return {}


def flow_json(f: Flow, *, replayed_by: str | None = None) -> dict[str, Any]:
    """One flow, as `gateway flows --json` gives it (one object a line)."""
    return {"flow_id": f.id, "partner": f.partner, "channel": f.channel, "file": f.file_name, "sha256": f.sha256,
            "size": f.size, "received_at": _time(f.received_at), "format": f.format, "state": f.state,
            "processing": f.queue, "attempts": f.attempts, "pieces_total": f.pieces_total,
            "pieces_valid": f.pieces_valid, "duplicate_of": f.duplicate_of, "replay_of": f.replay_of,
            "replayed_by": replayed_by, "processed_at": _time(f.report_written_at),
            "archived": bool(f.archive_path)}


def piece_json(p: Piece) -> dict[str, Any]:
    """A piece of a flow: where it stands, and its verdict as the flow's report gave it."""
    return {"piece_id": p.id, "index": p.index, "name": p.name, "format": p.format, "valid": p.valid,
            "status": p.status, "status_at": _time(p.status_at), "due_at": _time(p.due_at),
            "error_codes": [c for c in (p.error_codes or "").split(",") if c], "cadre": p.cadre or None,
            "piece_type": p.piece_type or None, "invoice_number": p.invoice_number, "issue_date": p.issue_date,
            "supplier": p.supplier_id, "recipient": p.recipient_siret, "service": p.service_code,
            "engagement": p.engagement_number, "link_id": p.link_id, "verdict": _object(p.verdict_json)}


def event_json(e: Event) -> dict[str, Any]:
    return {"at": _time(e.at), "stage": e.stage, "outcome": e.outcome, "piece_id": e.piece_id,
            "detail": _object(e.detail_json)}


def flow_detail_json(f: Flow, pieces: list[Piece], history: list[Event], *,
                     replayed_by: str | None = None) -> dict[str, Any]:
    """`gateway flow ID --json`."""
    return {"version": FLOW_JSON_VERSION, "flow": flow_json(f, replayed_by=replayed_by),
            "pieces": [piece_json(p) for p in pieces], "history": [event_json(e) for e in history]}

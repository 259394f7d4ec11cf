"""What the store records of the files a flow produced: where its report
was written, where each piece was delivered (its pivot is there), and the
status files of its pieces (kept whole in the `notice` table).

The operators' downloads serve only what these say, never a path that came
in a request.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from gateway.core.config import Settings
from gateway.store.repository import Store
from gateway.store.tables import Event, Notice, Piece


@dataclass(frozen=True)
class Delivery:
    piece_id: str
    holder: str  # the role it was delivered to
    folder: str  # as recorded: relative to the home


@dataclass(frozen=True)
class StatusFile:
    id: int
    piece_id: str
    party: str
    file_name: str  # <piece id>.<change count><suffix>
    written: bool


@dataclass(frozen=True)
class FlowOutputs:
    report_folders: tuple[str, ...]  # as recorded (absolute), the last one last
    deliveries: tuple[Delivery, ...]
    status_files: tuple[StatusFile, ...]


def flow_outputs(settings: Settings, flow_id: str) -> FlowOutputs:
    with Store(settings).session() as s:
        events = s.execute(select(Event.stage, Event.outcome, Event.piece_id, Event.detail_json)
                           .where(Event.flow_id == flow_id, Event.stage.in_(("report", "delivery")))
                           .order_by(Event.id)).all()
        pieces = select(Piece.id).where(Piece.flow_id == flow_id).scalar_subquery()
        notices = s.execute(select(Notice.id, Notice.piece_id, Notice.party, Notice.name, Notice.suffix,
                                   Notice.written_at).where(Notice.piece_id.in_(pieces))
                            .order_by(Notice.piece_id, Notice.id)).all()
    reports: list[str] = []
    deliveries: dict[str, Delivery] = {}
    for stage, outcome, piece_id, detail in events:
        folder = _dir_of(detail)
        if not folder:
            continue
        if stage == "report":
            reports.append(folder)
        elif piece_id:
            deliveries[piece_id] = Delivery(piece_id, outcome, folder)  # a re-run records the same folder again
    return FlowOutputs(tuple(dict.fromkeys(reports)), tuple(deliveries.values()),
                       tuple(StatusFile(i, pid, party, f"{name}{suffix}", written is not None)
                             for i, pid, party, name, suffix, written in notices))


def status_file_body(settings: Settings, flow_id: str, notice_id: int) -> tuple[str, bytes] | None:
    """(file name, bytes) of a status file of one of this flow's pieces; None otherwise."""
    with Store(settings).session() as s:
        row = s.execute(select(Notice.name, Notice.suffix, Notice.body)
                        .join(Piece, Piece.id == Notice.piece_id)
                        .where(Notice.id == notice_id, Piece.flow_id == flow_id)).first()
    return None if row is None else (f"{row[0]}{row[1]}", bytes(row[2]))


def _dir_of(detail: str | None) -> str:
    try:
        value = json.loads(detail or "{}").get("dir")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""

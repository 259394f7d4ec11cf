"""Life after delivery, in the store: a status change asked for a piece
(by a party's status file, an operator, a deadline), who may make it, the
correction it may carry, and the status files every party receives.

The rules (which status may follow which, who may set it, delays, links)
are data (gateway/lifecycle/lifecycle.toml, read by gateway.lifecycle.machine);
this module applies them to pieces. A change is one transaction: the piece
row is locked, the rule checked, the piece updated, its events and the
status files to send (`notice` rows) recorded together
(gateway.store.pieces.change_if_unmoved). Status files are written from
those rows after the commit and again at every start until written, so a
crash never loses one, and their names come from the piece and its change
count, so writing one again never makes a second file.
"""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.files import read_archived
from gateway.core.invoice import siret_error
from gateway.core.records import Document, Finding, Location, Verdict
from gateway.lifecycle.notices import notices_for
from gateway.lifecycle.terms import CORRECTION_FIELDS, CORRECTION_PARTIES
from gateway.routing.delivery import delivery_writes
from gateway.rules.controls import run_controls
from gateway.rules.directory import find_structure
from gateway.store.pieces import StatusUpdate, change_if_unmoved, request_applied
from gateway.store.repository import ClaimedFlow, Store
from gateway.store.rows import piece_row, values
from gateway.store.tables import Event, Flow, Notice, Piece

log = logging.getLogger("gateway.lifecycle")


# --- later changes: status files, the operator, deadlines -------------------------------------

@dataclass(frozen=True)
class Request:
    """One status change asked for a piece (from a file, the CLI or a deadline)."""

    status: str
    reason: str | None = None
    comment: str | None = None
    correction: tuple[tuple[str, str], ...] = ()
    attachments: tuple[Document, ...] = ()


@dataclass(frozen=True)
class Outcome:
    piece_id: str | None
    applied: tuple[str, ...] = ()  # statuses set, in order
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.findings


def change_status(settings: Settings, store: Store, machine: Any, piece_id: str, req: Request, *,
                  roles: Sequence[str], origin_flow: str | None = None, origin_index: int | None = None,
                  location: Location | None = None) -> Outcome:
    """Apply one request as the first of `roles` allowed to. It is decided
    on a snapshot (reading the archive again if the piece must be delivered
    anew), then made in one locked transaction that first checks the piece
    has not moved meanwhile (else it is decided again). `origin_flow` and
    `origin_index` make it idempotent: a status file processed again after
    a crash finds its change already made."""
    # the piece as deposited, read from the archive at most once for this request, retries included
    archive = functools.cache(functools.partial(deposited, settings, store))
    for _attempt in range(3):
        piece = store.piece(piece_id)
        if piece is None:
            return Outcome(piece_id, (), (unknown_piece(piece_id, location),))
        if origin_flow and origin_index is not None:
            if request_applied(store, origin_flow, piece_id, origin_index):
                return Outcome(piece_id, (req.status,))
        decided = _decide(settings, machine, piece, req, roles, location, archive)
        if isinstance(decided, Outcome):
            return decided
        seen_status = piece.status
        # its deliveries (idempotent names) are written once the piece is locked, before the commit
        if not change_if_unmoved(store, piece_id, seen_status, decided.writes, functools.partial(
                _recorded, settings, machine, decided, req, origin_flow, origin_index)):
            continue  # it moved meanwhile: decide again on what it is now
        log.info("piece %s: %s -> %s by %s", piece_id, seen_status, " -> ".join(decided.statuses), decided.role)
        return Outcome(piece_id, tuple(decided.statuses))
    return Outcome(piece_id, (), (codes.finding(
        "ERR_INTERNE", f"Piece {piece_id} kept changing while this request was applied; send it again",
        f"La pièce {piece_id} a changé pendant le traitement de la demande ; renvoyez-la",
        location=location, value=req.status, stage="status"),))


@dataclass
class _Decision:
    role: str
    statuses: tuple[str, ...]
    steps: list[dict[str, Any]]
    columns: dict[str, Any]
    writes: list[Callable[[], None]]
    delivery: tuple[str, dict[str, Any]] | None


Archive = Callable[[str, int], tuple[Flow, Verdict]]  # (flow id, piece index) -> the deposit, read once


def _decide(settings: Settings, machine: Any, piece: Piece, req: Request, roles: Sequence[str],
            location: Location | None, archive: Archive) -> _Decision | Outcome:
    if not roles:
        return Outcome(piece.id, (), (codes.finding(
            "STATUT_NON_AUTORISE", f"You are not a party of piece {piece.id}: you cannot set its status",
            f"Vous n'êtes pas partie à la pièce {piece.id} : vous ne pouvez pas changer son statut",
            location=location, value=req.status, stage="status"),))
    cadre = piece.cadre or "A1"
    refusal, role = None, None
    keys = [k for k, _ in req.correction]  # only the moves marked for it carry a correction
    for r in roles:
        refusal = machine.check(cadre=cadre, current=piece.status, new=req.status, role=r, reason=req.reason,
                                correction=keys)
        if refusal is None:
            role = r
            break
    if role is None:
        return Outcome(piece.id, (), (replace(refusal, location=location or refusal.location),))
    levels = json.loads(piece.summary_json or "{}").get("levels", 0)
    statuses = (req.status, *machine.follow(cadre, req.status, levels))
    columns: dict[str, Any] = {}
    if req.correction:
        problem = _correct(settings, piece, dict(req.correction), location, columns, archive)
        if problem:
            return Outcome(piece.id, (), (problem,))
    steps, prev = [], piece.status
    for i, st in enumerate(statuses):
        steps.append(dict(status=st, previous=prev, role=role if i == 0 else "platform",
                          reason=req.reason if i == 0 else None, comment=req.comment if i == 0 else None))
        prev = st
    holder_before = machine.holder(cadre, piece.status)
    holder_after = machine.holder(cadre, statuses[-1])
    writes: list[Callable[[], None]] = []
    delivery = None
    if holder_after not in (None, "platform") and (
            holder_after != holder_before or req.correction or req.attachments or "COMPLETEE" in statuses):
        parties = json.loads(columns.get("parties_json") or piece.parties_json or "{}")
        party = parties.get(holder_after)
        if party:
            renvoi = "Recyclée" if req.correction else ("Complétée" if "COMPLETEE" in statuses else "Non")
            target, writes = _delivery(settings, piece, columns, party, req, renvoi, archive)
            delivery = (holder_after, {"dir": str(target.relative_to(settings.home)), "renvoi": renvoi})
    return _Decision(role, statuses, steps, columns, writes, delivery)


def _recorded(settings: Settings, machine: Any, decided: _Decision, req: Request, origin_flow: str | None,
              origin_index: int | None, locked: Piece, now: datetime) -> StatusUpdate:
    """What a decided change makes of the piece, locked and unmoved: its
    status, delay and change count, its events, the status files it sends."""
    status = decided.statuses[-1]
    due_at = machine.due(locked.cadre, status, now)
    seq = (locked.seq or 0) + len(decided.statuses)
    events = []
    for i, st in enumerate(decided.steps):
        detail = {"from": st["previous"], "role": st["role"], "reason": st.get("reason"),
                  "comment": st.get("comment")}
        if i == 0 and origin_index is not None:
            detail["request"] = origin_index
        if i == 0 and req.correction:
            detail["correction"] = dict(req.correction)
        if i == 0 and req.attachments:
            detail["attachments"] = [a.name for a in req.attachments]
        events.append(Event(flow_id=origin_flow or locked.flow_id, piece_id=locked.id, stage="status",
                            outcome=st["status"], at=now, detail_json=json.dumps(detail, ensure_ascii=False)))
    if decided.delivery:
        events.append(Event(flow_id=locked.flow_id, piece_id=locked.id, stage="delivery", outcome=decided.delivery[0],
                            at=now, detail_json=json.dumps(decided.delivery[1], ensure_ascii=False)))
    after = piece_row(locked, **decided.columns, status=status, status_at=now, due_at=due_at, seq=seq)
    notices = tuple(Notice(**values(n), created_at=now)
                    for n in notices_for(settings, machine, after, decided.steps, seq, now))
    return StatusUpdate(status=status, due_at=due_at, seq=seq, columns=decided.columns, events=tuple(events),
                        notices=notices)


def unknown_piece(ref: str, location: Location | None) -> Finding:
    return codes.finding("PIECE_INCONNUE", f"No piece {ref} is known to the gateway",
                         f"Aucune pièce {ref} n'est connue de la passerelle", location=location, value=ref,
                         stage="status")


def _correct(settings: Settings, piece: Piece, correction: dict[str, str], location: Location | None,
             columns: dict[str, Any], archive: Archive) -> Finding | None:
    """Apply a correction the machine allowed with this move (Machine.check):
    recycling changes only the SIRET, the service code and the engagement
    (chorus-domain 2c), the new recipient checked like a new one; a wrongly
    named validator or MOE is replaced by one the directory knows."""
    parties = json.loads(piece.parties_json or "{}")
    for key, value in correction.items():
        if key not in CORRECTION_PARTIES:
            continue
        role, attr = CORRECTION_PARTIES[key]
        if attr == "siret":
            known = find_structure(settings, value) if not siret_error(value) else None
            if known is None or not known.active:
                return codes.finding("REJ_CONT_B2G", f"{role} {value} is not an active structure of the directory",
                                     f"{role} {value} n'est pas une structure active de l'annuaire",
                                     location=location, value=value, stage="status")
        parties.setdefault(role, {})[attr] = value
    if set(correction) & set(CORRECTION_FIELDS):
        inv = _corrected(archive(piece.flow_id, piece.index)[1].invoice, correction)
        report = run_controls(inv, settings, directory=True)
        if report.errors:
            first = report.errors[0]
            return replace(first, location=location or first.location)
        rec = dict(parties.get("recipient", {}), siret=inv.recipient.siret, service=inv.service_code)
        parties["recipient"] = {k: v for k, v in rec.items() if v}
        if "moa" in parties and "partner" not in parties["moa"]:
            parties["moa"] = dict(parties["recipient"])
        columns.update(recipient_siret=inv.recipient.siret, service_code=inv.service_code,
                       engagement_number=inv.engagement_number)
    columns["parties_json"] = json.dumps(parties, ensure_ascii=False)
    return None


def _corrected(inv: Any, correction: dict[str, str]) -> Any:
    if "recipient_siret" in correction:
        inv = replace(inv, recipient=replace(inv.recipient, siret=correction["recipient_siret"] or None))
    if "service_code" in correction:
        inv = replace(inv, service_code=correction["service_code"] or None)
    if "engagement_number" in correction:
        inv = replace(inv, engagement_number=correction["engagement_number"] or None)
    return inv


def deposited(settings: Settings, store: Store, flow_id: str, index: int) -> tuple[Flow, Verdict]:
    """A piece as validated at deposit, read again from its flow's archived
    file (to check a correction, to deliver it to its next addressee)."""
    # here, not at the top: the service's main process imports this module and never
    # evaluates (its workers do), and the pipeline is a fifth of its start-up
    from gateway.pipeline.evaluate import evaluate_file

    flow = store.flow(flow_id)
    data, problems = read_archived(flow.archive_path, settings.max_file_bytes)
    if data is None:
        raise RuntimeError(f"archived file of flow {flow.id} is missing or unreadable: {problems}")
    ev = evaluate_file(data, flow.file_name, settings)
    for v in ev.verdicts:
        if v.index == index:
            return flow, v
    raise RuntimeError(f"piece {index} not found again in flow {flow.id}")


def _delivery(settings: Settings, piece: Piece, columns: dict[str, Any], party: dict[str, Any], req: Request,
              renvoi: str, archive: Archive):  # noqa: ANN202
    """The writes that deliver a piece (as corrected) to its next addressee."""
    flow, v = archive(piece.flow_id, piece.index)
    cur = {k: columns.get(k, getattr(piece, k)) or "" for k in CORRECTION_FIELDS}
    v = replace(v, invoice=_corrected(v.invoice, cur), documents=v.documents + tuple(req.attachments))
    claimed = ClaimedFlow(flow.id, flow.partner, flow.file_name, flow.sha256, flow.size, flow.received_at,
                          flow.archive_path, flow.duplicate_of)
    return delivery_writes(settings, claimed, v, piece.id, party, renvoi=renvoi)

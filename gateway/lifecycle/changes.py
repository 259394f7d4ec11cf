"""Life after delivery, in the store: status changes, who may make them,
the status files every party receives, deadlines and links.

The rules (which status may follow which, who may set it, delays, links)
are data (mappings/lifecycle.toml, read by gateway.lifecycle_rules); this
module applies them to pieces. A change is one transaction: the piece row
is locked, the rule checked, the piece updated, its events and the status
files to send (`notice` rows) recorded together. Status files are written
from those rows after the commit and again at every start until written,
so a crash never loses one, and their names come from the piece and its
change count, so writing one again never makes a second file.
"""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Column, LargeBinary, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, SQLModel

from gateway.core import codes
from gateway.store import db
from gateway.core.config import Settings
from gateway.core.files import read_archived
from gateway.lifecycle.machine import CORRECTION_FIELDS, CORRECTION_PARTIES
from gateway.lifecycle.notices import flush_notices, notices_for, write_notice
from gateway.core.records import Check, Document, Finding, Format, Location, Verdict
from gateway.pipeline.evaluate import evaluate_file
from gateway.routing.route import delivery_writes, due, roles_of
from gateway.store.repository import ClaimedFlow, Event, Flow, Piece, Store
from gateway.store.tables import InvoiceNumber, Notice

log = logging.getLogger("gateway.lifecycle")


def machine_for(settings: Settings):  # noqa: ANN201
    from gateway.lifecycle.machine import Machine

    return Machine.load(settings)


# --- numbers -------------------------------------------------------------------------

def register_numbers(store: Store, wanted: dict[str, tuple[str, str, int]]) -> dict[str, str]:
    """Claim (supplier, number, year) for each piece id; returns who holds
    each key (the piece itself, or the one that had it first). Keyed by
    piece id, so a flow processed again after a crash finds its own."""
    now = db.utcnow()
    rows = [dict(supplier=k[0][:64], number=k[1][:64], year=k[2], piece_id=pid, at=now) for pid, k in wanted.items()]
    ins = pg_insert if store.engine.dialect.name == "postgresql" else sqlite_insert
    with store.session() as s:
        s.execute(ins(InvoiceNumber.__table__).on_conflict_do_nothing(), rows)
        s.commit()
        t = InvoiceNumber.__table__
        # One query for the batch: the numbers its pieces hold (the usual
        # case); one more per number another piece held first.
        held = {pid: pid for pid in s.execute(select(t.c.piece_id).where(t.c.piece_id.in_(list(wanted)))).scalars()}
        for pid, k in wanted.items():
            if pid not in held:
                held[pid] = s.execute(select(t.c.piece_id).where(
                    t.c.supplier == k[0][:64], t.c.number == k[1][:64], t.c.year == k[2])).scalar_one()
        return held


def release_numbers(store: Store, piece_ids: Sequence[str]) -> None:
    """Give back the numbers of pieces that will not exist after all (their
    flow failed after registering them), so the supplier can send them again."""
    if not piece_ids:
        return
    t = InvoiceNumber.__table__
    with store.session() as s:
        s.execute(t.delete().where(t.c.piece_id.in_(list(piece_ids))))
        s.commit()


# --- intake: the first statuses of accepted pieces ----------------------------------------

@dataclass
class Routed:
    events: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)
    writes: list[Callable[[], None]] = field(default_factory=list)
    pieces: list[dict[str, Any]] = field(default_factory=list)


def route_new_pieces(settings: Settings, flow: ClaimedFlow, verdicts: Sequence[Verdict],
                     pieces: list[dict[str, Any]], links: Sequence[Any], machine: Any) -> Routed:
    """Set the entry statuses of every accepted piece (DEPOSEE, then on to
    its first addressee), deliver it there, and link it to the piece it
    continues. Updates the piece rows in place."""
    out = Routed()
    now = db.utcnow()
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
        p.update(status=statuses[-1], status_at=now, due_at=due(machine, cadre, statuses[-1], now),
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
            return Outcome(piece_id, (), (_unknown_piece(piece_id, location),))
        if origin_flow and origin_index is not None:
            with store.session() as s:
                if _already_applied(s, origin_flow, piece_id, origin_index):
                    return Outcome(piece_id, (req.status,))
        decided = _decide(settings, machine, piece, req, roles, location, archive)
        if isinstance(decided, Outcome):
            return decided
        seen_status = piece.status
        with store.session() as s:
            locked = s.execute(select(Piece).where(Piece.id == piece_id).with_for_update()).scalars().first()
            if locked is None or locked.status != seen_status:
                continue  # it moved meanwhile: decide again on what it is now
            for w in decided.writes:  # deliveries: idempotent names, written before the commit
                w()
            now = db.utcnow()
            for k, v in decided.columns.items():
                setattr(locked, k, v)
            locked.status = decided.statuses[-1]
            locked.status_at = now
            locked.due_at = due(machine, locked.cadre, locked.status, now)
            locked.seq = (locked.seq or 0) + len(decided.statuses)
            s.add(locked)
            for i, st in enumerate(decided.steps):
                detail = {"from": st["previous"], "role": st["role"], "reason": st.get("reason"),
                          "comment": st.get("comment")}
                if i == 0 and origin_index is not None:
                    detail["request"] = origin_index
                if i == 0 and req.correction:
                    detail["correction"] = dict(req.correction)
                if i == 0 and req.attachments:
                    detail["attachments"] = [a.name for a in req.attachments]
                s.add(Event(flow_id=origin_flow or locked.flow_id, piece_id=piece_id, stage="status",
                            outcome=st["status"], at=now, detail_json=json.dumps(detail, ensure_ascii=False)))
            if decided.delivery:
                s.add(Event(flow_id=locked.flow_id, piece_id=piece_id, stage="delivery", outcome=decided.delivery[0],
                            at=now, detail_json=json.dumps(decided.delivery[1], ensure_ascii=False)))
            for n in notices_for(settings, machine, locked.model_dump(), decided.steps, locked.seq, now):
                s.add(Notice(**n, created_at=now))
            s.commit()
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


def _already_applied(s, flow_id: str, piece_id: str, index: int) -> bool:  # noqa: ANN001
    for (detail,) in s.execute(select(Event.detail_json).where(Event.flow_id == flow_id, Event.piece_id == piece_id,
                                                              Event.stage == "status")):
        if json.loads(detail or "{}").get("request") == index:
            return True
    return False


def _unknown_piece(ref: str, location: Location | None) -> Finding:
    return codes.finding("PIECE_INCONNUE", f"No piece {ref} is known to the gateway",
                         f"Aucune pièce {ref} n'est connue de la passerelle", location=location, value=ref,
                         stage="status")


def _correct(settings: Settings, piece: Piece, correction: dict[str, str], location: Location | None,
             columns: dict[str, Any], archive: Archive) -> Finding | None:
    """Apply a correction the machine allowed with this move (Machine.check):
    recycling changes only the SIRET, the service code and the engagement
    (chorus-domain 2c), the new recipient checked like a new one; a wrongly
    named validator or MOE is replaced by one the directory knows."""
    from gateway.rules.controls import run_controls
    from gateway.rules.directory import find_structure
    from gateway.core.invoice import siret_error

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
        inv = _corrected(archive(piece.flow_id, piece.index)[1].piece, correction)
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
    v = replace(v, piece=_corrected(v.piece, cur), documents=v.documents + tuple(req.attachments))
    claimed = ClaimedFlow(flow.id, flow.partner, flow.file_name, flow.sha256, flow.size, flow.received_at,
                          flow.archive_path, flow.duplicate_of)
    return delivery_writes(settings, claimed, v, piece.id, party, renvoi=renvoi)


# --- status files as flows ------------------------------------------------------------------

def find_piece(store: Store, req: Any) -> Piece | None:
    """A request names a piece by its id, or by invoice number (and supplier)."""
    with store.session() as s:
        if getattr(req, "piece_id", None):
            return s.get(Piece, req.piece_id)
        if req.invoice_number:
            q = select(Piece).where(Piece.invoice_number == req.invoice_number, Piece.valid.is_(True))
            if req.supplier_id:
                q = q.where(Piece.supplier_id == req.supplier_id)
            found = list(s.execute(q.order_by(Piece.created_at.desc()).limit(2)).scalars())
            return found[0] if len(found) == 1 else None
    return None


_NOT_APPLIED = Check("status-file", "passed", "read; not applied: `gateway validate` changes nothing")


def evaluate_status_file(settings: Settings, store: Store | None, flow: ClaimedFlow | None, data: bytes, *,
                         apply: bool = True) -> tuple[Verdict, ...] | list[Finding]:
    """Apply every status change a party's file asks for; one verdict per
    request (accepted, or refused with its reason). A file that cannot be
    read at all gives file-level findings. `apply=False` only reads it (no
    store, no flow): what `gateway validate` says of a status file."""
    from gateway.lifecycle.status_in import read_status_file

    machine, requests, problems = read_status_file(settings, data)
    if problems and not requests:
        return problems
    verdicts = []
    for req in requests:
        name = req.piece_id or f"{req.invoice_number or '?'}"
        if not apply:
            verdicts.append(Verdict(req.index, f"{name}: {req.status}", Format.STATUS, (), (_NOT_APPLIED,)))
            continue
        piece = find_piece(store, req)
        if piece is None:
            findings: tuple[Finding, ...] = (_unknown_piece(name, req.location),)
            outcome = Outcome(None, (), findings)
        else:
            roles = roles_of(settings, flow.partner, json.loads(piece.parties_json or "{}"))
            try:
                outcome = change_status(settings, store, machine, piece.id, Request(
                    req.status, req.reason, req.comment, req.correction, req.attachments),
                    roles=_ordered(roles), origin_flow=flow.id, origin_index=req.index, location=req.location)
            except Exception as exc:  # noqa: BLE001 - one change must not take the others down
                log.exception("flow %s: status change %d failed", flow.id, req.index)
                outcome = Outcome(piece.id, (), (codes.finding(
                    "ERR_INTERNE", f"Internal error on this change ({type(exc).__name__}); nothing was changed, "
                    "operators are alerted", f"Erreur interne sur ce changement ({type(exc).__name__}) ; rien "
                    "n'a été modifié", location=req.location, value=req.status, stage="status"),))
        extra = (("piece_id", outcome.piece_id), ("status", req.status), ("applied", list(outcome.applied)))
        verdicts.append(Verdict(req.index, f"{name}: {req.status}", Format.STATUS, outcome.findings, (), extra))
    if problems:
        verdicts.append(Verdict(len(verdicts) + 1, "(file)", Format.STATUS, tuple(problems)))
    return tuple(verdicts)


def _ordered(roles: Iterable[str]) -> list[str]:
    # when one party holds several roles, the most specific acts first
    order = ("validator2", "validator1", "moe", "moa", "recipient", "supplier")
    rs = list(roles)
    return sorted(rs, key=lambda r: order.index(r) if r in order else len(order))


# --- deadlines -----------------------------------------------------------------------------

def apply_deadlines(settings: Settings, store: Store, at: datetime | None = None) -> list[Outcome]:
    """Set the status each delay ends in for every piece whose delay ran out by `at`."""
    machine = machine_for(settings)
    at = at or db.utcnow()
    with store.session() as s:
        due_rows = list(s.execute(select(Piece.id, Piece.cadre, Piece.status).where(
            Piece.due_at.is_not(None), Piece.due_at <= at)).all())
    out = []
    for pid, cadre, status in due_rows:
        d = machine.deadline(cadre, status)
        if d is None:
            continue
        out.append(change_status(settings, store, machine, pid, Request(
            d[1], comment=f"délai de {d[0].total_seconds() / 86400:g} jour(s) écoulé"), roles=["platform"]))
    if out:
        flush_notices(settings, store)
    return out


# --- reading ---------------------------------------------------------------------------------

def piece_history(store: Store, piece_id: str) -> dict[str, Any] | None:
    """A piece, its events in order, and the other pieces of its billing file."""
    with store.session() as s:
        piece = s.get(Piece, piece_id)
        if piece is None:
            return None
        events = list(s.execute(select(Event).where(Event.piece_id == piece_id).order_by(Event.id)).scalars())
        dossier = []
        seen = {piece_id}
        todo = [piece.link_id] if piece.link_id else []
        todo += list(s.execute(select(Piece.id).where(Piece.link_id == piece_id)).scalars())
        while todo:
            pid = todo.pop()
            if pid in seen or pid is None:
                continue
            seen.add(pid)
            p = s.get(Piece, pid)
            if p is None:
                continue
            dossier.append(p)
            if p.link_id:
                todo.append(p.link_id)
            todo += list(s.execute(select(Piece.id).where(Piece.link_id == pid)).scalars())
        flow = s.get(Flow, piece.flow_id)
    return {"piece": piece, "flow": flow, "events": events,
            "dossier": sorted(dossier, key=lambda p: p.created_at)}


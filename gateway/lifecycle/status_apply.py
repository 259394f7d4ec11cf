"""A party's status file, applied: each change it asks for, made on the
piece it names as the sender's role on that piece allows."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.records import Check, Finding, Format, Verdict
from gateway.lifecycle.changes import Outcome, Request, change_status, unknown_piece
from gateway.lifecycle.status_in import read_status_file
from gateway.routing.parties import roles_of
from gateway.store.pieces import find_piece
from gateway.store.repository import ClaimedFlow, Store

log = logging.getLogger("gateway.lifecycle")


_NOT_APPLIED = Check("status-file", "passed", "read; not applied: `gateway validate` changes nothing")


def evaluate_status_file(settings: Settings, store: Store | None, flow: ClaimedFlow | None, data: bytes, *,
                         apply: bool = True) -> tuple[Verdict, ...] | list[Finding]:
    """Apply every status change a party's file asks for; one verdict per
    request (accepted, or refused with its reason). A file that cannot be
    read at all gives file-level findings. `apply=False` only reads it (no
    store, no flow): what `gateway validate` says of a status file."""
    machine, requests, problems = read_status_file(settings, data)
    if problems and not requests:
        return problems
    verdicts = []
    for req in requests:
        name = req.piece_id or f"{req.invoice_number or '?'}"
        if not apply:
            verdicts.append(Verdict(req.index, f"{name}: {req.status}", Format.STATUS, (), (_NOT_APPLIED,)))
            continue
        piece = find_piece(store, piece_id=req.piece_id, invoice_number=req.invoice_number,
                           supplier_id=req.supplier_id)
        if piece is None:
            findings: tuple[Finding, ...] = (unknown_piece(name, req.location),)
            outcome = Outcome(None, (), findings)
        else:
            roles = roles_of(settings, flow.partner, json.loads(piece.parties_json or "{}"), store)
            try:
                outcome = change_status(settings, store, machine, piece.id, Request(
                    _chosen(machine, piece, req, roles), req.reason, req.comment, req.correction, req.attachments),
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


def _chosen(machine, piece, req, roles: Iterable[str]) -> str:  # noqa: ANN001
    """A CDAR's CDV code may name several statuses (205: SERVICE_FAIT, VALIDEE_1...):
    the first the sender may set on this piece now, else the first, refused with its reason."""
    for status in (req.status, *req.alternatives):
        for role in _ordered(roles):
            if machine.check(cadre=piece.cadre or "A1", current=piece.status, new=status, role=role,
                             reason=req.reason, correction=[k for k, _ in req.correction]) is None:
                return status
    return req.status


def _ordered(roles: Iterable[str]) -> list[str]:
    # when one party holds several roles, the most specific acts first
    order = ("validator2", "validator1", "moe", "moa", "recipient", "supplier")
    rs = list(roles)
    return sorted(rs, key=lambda r: order.index(r) if r in order else len(order))

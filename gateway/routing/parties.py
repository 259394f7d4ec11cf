"""Who a piece concerns, by role, and where each party's files go: its
partner's folder, else the partner `[parties]` says acts for its SIRET,
else a folder named by the SIRET; and the piece row's routing columns."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date
from typing import Any

from gateway.core.config import Settings
from gateway.core.invoice import Invoice, WORKS_CADRES
from gateway.core.records import Verdict
from gateway.rules.controls import invoice_key
from gateway.store.repository import Store
from gateway.store.rows import PieceRow
from gateway.store.structures import acts_for, partners_by_siret

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def parties_of(invoice: Invoice, partner: str, depositor: str = "supplier",
               deposited_for: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every party of a piece by role. Whoever deposited it (the supplier
    for an invoice, the MOE for an A15, the MOA for an A19) is reached
    through its partner; the others by SIRET (see `folder_of`). A piece
    deposited for another actor (`deposited_for`: its SIRET and service)
    keeps that actor as the depositor's party, reached by its SIRET."""
    out: dict[str, dict[str, Any]] = {
        "supplier": {"siret": invoice.supplier.siret, "name": invoice.supplier.name},
        "recipient": {"siret": invoice.recipient.siret, "service": invoice.service_code,
                      "name": invoice.recipient.name},
    }
    for role, ref in (("validator1", invoice.validator), ("validator2", invoice.validator2), ("moe", invoice.moe)):
        if ref is not None and ref.siret:
            out[role] = {"siret": ref.siret, "service": ref.service}
    if invoice.cadre in WORKS_CADRES and depositor != "moa":
        out["moa"] = dict(out["recipient"])  # a works piece is addressed to its MOA
    if deposited_for:
        out[depositor] = dict(deposited_for)
    else:
        out.setdefault(depositor, {})["partner"] = partner
    return {k: {a: b for a, b in v.items() if b} for k, v in out.items()}


def folder_of(settings: Settings, party: dict[str, Any]) -> str | None:
    """The outbox folder of a party: its partner, else the partner that
    `[parties]` says acts for its SIRET, else the SIRET itself (a public
    structure's folder is named by its SIRET)."""
    if party.get("partner"):
        return safe_name(party["partner"])
    siret = party.get("siret")
    if not siret:
        return None
    for partner, sirets in settings.section("parties").items():
        if siret in _sirets(sirets):
            return safe_name(partner)
    acting = partners_by_siret(Store(settings)).get(siret, ())
    if acting:  # `gateway partner acts-for`: the one acting for the party's service, else the first
        return safe_name(next((a for a in acting if a.covers(party.get("service"))), acting[0]).partner)
    return safe_name(siret)


def configured_sirets(settings: Settings, partner: str) -> set[str]:
    """The SIRETs `[parties]` says a partner acts for."""
    return set(_sirets(settings.section("parties").get(partner, [])))


def identities(settings: Settings, partner: str, store: Store | None = None) -> set[str]:
    """Who a partner may act for: itself, the SIRETs `[parties]` gives it,
    and with a store, the structures `gateway partner acts-for` gives it."""
    found = {partner, *configured_sirets(settings, partner)}
    if store is not None:
        found |= {a.siret for a in acts_for(store, partner)}
    return found


def _sirets(value: str | list[str]) -> list[str]:
    """A `[parties]` entry: a list of SIRETs, or one (as an environment variable gives it)."""
    return [value] if isinstance(value, str) else list(value)


def roles_of(settings: Settings, partner: str, parties: dict[str, dict[str, Any]],
             store: Store | None = None) -> list[str]:
    """The roles a partner holds on a piece: by its own deposit, by the SIRETs
    `[parties]` gives it, and with a store by the structures (and services) it acts for."""
    ids = identities(settings, partner)
    acts = acts_for(store, partner) if store is not None else []
    return [role for role, p in parties.items()
            if (p.get("partner") and p["partner"] == partner) or (p.get("siret") in ids)
            or any(a.siret == p.get("siret") and a.covers(p.get("service")) for a in acts)]


def _for_party(deposit: Any) -> dict[str, Any] | None:
    if deposit is None or not getattr(deposit, "deposited_for", None):
        return None
    return {"siret": deposit.for_siret, "service": deposit.for_service}


def safe_name(text: str) -> str:
    """One harmless path component: no separator, no "..", no leading dot."""
    return re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", text)).strip("._")[:100] or "_"


def new_piece(flow_id: str, partner: str, piece_id: str, verdict: Verdict, described: dict[str, Any],
              depositor: str = "supplier", deposit: Any = None) -> PieceRow:
    """A piece as its flow records it: the verdict, and the columns routing
    and the life cycle find it by, read from the canonical invoice. `deposit`
    (routing.rights.Deposit): whom it was deposited for, if not its depositor."""
    row = PieceRow(id=piece_id, flow_id=flow_id, index=verdict.index, name=verdict.name[:1024],
                   format=verdict.format.value, valid=verdict.valid,
                   status="DEPOSEE" if verdict.valid else "IRRECEVABLE",
                   error_codes=",".join(sorted({f.code for f in verdict.errors}))[:1024],
                   verdict_json=json.dumps(described, ensure_ascii=False, default=str), partner=partner)
    inv: Invoice | None = verdict.invoice
    if inv is None:
        return row
    summary = {"supplier_name": inv.supplier.name, "supplier_country": inv.supplier.country,
               "debtor_name": inv.recipient.name, "total": str(inv.totals.payable or ""),
               "currency": inv.currency, "type_code": inv.type_code, "original_invoice": inv.original_invoice,
               "levels": inv.validator_levels,
               # the other amounts, for the operators' pages
               **{k: "" if v is None else str(v) for k, v in
                  (("net", inv.totals.net), ("tax", inv.totals.tax), ("gross", inv.totals.gross))}}
    # the key REJ_UNI registers, so status files find the piece by the same supplier id
    supplier = invoice_key(inv)[0][:64] or None
    return replace(row, cadre=inv.cadre, piece_type=inv.piece_type[:64],
                invoice_number=(inv.invoice_number or "")[:64] or None,
                issue_date=inv.issue_date.isoformat() if isinstance(inv.issue_date, date) else None,
                supplier_id=supplier, recipient_siret=(inv.recipient.siret or "")[:64] or None,
                service_code=(inv.service_code or "")[:100] or None,
                engagement_number=(inv.engagement_number or "")[:64] or None,
                contract_number=(inv.contract_number or "").strip()[:50],  # "": none (NULL: recorded before #16)
                deposited_as=getattr(deposit, "deposited_as", None),
                deposited_for=getattr(deposit, "deposited_for", None),
                parties_json=json.dumps(parties_of(inv, partner, depositor, _for_party(deposit)), ensure_ascii=False),
                summary_json=json.dumps(summary, ensure_ascii=False, default=str))

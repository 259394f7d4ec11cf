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
from gateway.store.rows import PieceRow

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def parties_of(invoice: Invoice, partner: str, depositor: str = "supplier") -> dict[str, dict[str, Any]]:
    """Every party of a piece by role. Whoever deposited it (the supplier
    for an invoice, the MOE for an A15, the MOA for an A19) is reached
    through its partner; the others by SIRET (see `folder_of`)."""
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
    return safe_name(siret)


def identities(settings: Settings, partner: str) -> set[str]:
    """Who a partner may act for: itself, and the SIRETs `[parties]` gives it."""
    return {partner, *_sirets(settings.section("parties").get(partner, []))}


def _sirets(value: str | list[str]) -> list[str]:
    """A `[parties]` entry: a list of SIRETs, or one (as an environment variable gives it)."""
    return [value] if isinstance(value, str) else list(value)


def roles_of(settings: Settings, partner: str, parties: dict[str, dict[str, Any]]) -> list[str]:
    ids = identities(settings, partner)
    return [role for role, p in parties.items()
            if (p.get("partner") and p["partner"] == partner) or (p.get("siret") in ids)]


def safe_name(text: str) -> str:
    """One harmless path component: no separator, no "..", no leading dot."""
    return re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", text)).strip("._")[:100] or "_"


def new_piece(flow_id: str, partner: str, piece_id: str, verdict: Verdict, described: dict[str, Any],
              depositor: str = "supplier") -> PieceRow:
    """A piece as its flow records it: the verdict, and the columns routing
    and the life cycle find it by, read from the canonical invoice."""
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
                parties_json=json.dumps(parties_of(inv, partner, depositor), ensure_ascii=False),
                summary_json=json.dumps(summary, ensure_ascii=False, default=str))

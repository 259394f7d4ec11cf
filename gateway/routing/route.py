"""Routing at intake: an accepted piece gets its parties, its number is
checked for uniqueness, it is linked to the piece it continues (public
works), and it is delivered to the party it now waits for.

Deliveries land in `outbox/<party>/<service or _>/` as the original bytes,
the documents that came with it and a CPPFacturePivot data file written
last (a connector may take the pivot as the sign that the piece is there).
File names derive from the piece id, so a flow run again after a crash
rewrites the same files: nothing is delivered twice.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.core import codes
from gateway.core.config import Settings
from gateway.rules.controls import invoice_key
from gateway.core.files import atomic_write
from gateway.core.invoice import Invoice, WORKS_CADRES
from gateway.core.records import Check, Finding, Format, Verdict
from gateway.store.repository import ClaimedFlow, Piece, Store

STAGE = "routing"
RESERVED_FOLDERS = frozenset({"reports", "statuses"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXT = {Format.UBL_INVOICE: ".xml", Format.UBL_CREDITNOTE: ".xml", Format.CII: ".xml",
        Format.FACTURX: ".pdf", Format.PDF: ".pdf", Format.PDF_SIGNED: ".pdf"}


# --- parties -------------------------------------------------------------------

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


# --- checks that need the store ----------------------------------------------------

def numbers_wanted(verdicts: Sequence[Verdict], piece_ids: Sequence[str]) -> dict[str, tuple[str, str, int]]:
    """(supplier, number, year) of every accepted piece, by piece id."""
    wanted = {}
    for v, pid in zip(verdicts, piece_ids):
        if v.valid and v.piece is not None:
            supplier, number, year = invoice_key(v.piece)
            if supplier and number:
                wanted[pid] = (supplier, number, year or 0)
    return wanted


def enforce_uniqueness(verdicts: Sequence[Verdict], piece_ids: Sequence[str],
                       wanted: dict[str, tuple[str, str, int]], holders: dict[str, str]) -> list[Verdict]:
    """REJ_UNI: an invoice number already accepted for the same supplier in
    the same year. The first holder keeps it; its status is never touched.
    `holders` is what `lifecycle.register_numbers` answered for `wanted`."""
    out = []
    for v, pid in zip(verdicts, piece_ids):
        holder = holders.get(pid)
        if pid not in wanted:
            out.append(v)
        elif holder and holder != pid:
            supplier, number, year = wanted[pid]
            out.append(_with(v, codes.finding(
                "REJ_UNI", f"Invoice number {number} of supplier {supplier} for {year} was already accepted "
                f"(piece {holder}); send a new number", f"Le numéro de facture {number} du fournisseur {supplier} "
                f"pour {year} a déjà été accepté (pièce {holder}) ; émettez un nouveau numéro",
                location=v.piece.location("invoice_number"), value=number, stage=STAGE),
                Check("uniqueness", "failed", f"already accepted as {holder}")))
        else:
            out.append(_with(v, None, Check("uniqueness", "passed", f"{wanted[pid][1]} registered")))
    return out


def require_addressee(verdicts: Sequence[Verdict], machine: Any) -> list[Verdict]:
    """The party a piece goes to first must be named in it (an A4's MOE,
    an A9's validator): otherwise the piece would wait for nobody."""
    out = []
    for v in verdicts:
        if not (v.valid and v.piece is not None):
            out.append(v)
            continue
        inv = v.piece
        holder = machine.holder(inv.cadre, machine.entry(inv.cadre, inv.validator_levels)[-1])
        parties = parties_of(inv, "-", machine.depositor(inv.cadre))
        if holder in (None, "platform", "supplier", "depositor") or parties.get(holder, {}).get("siret"):
            out.append(v)
            continue
        names = {"moe": ("its maîtrise d'oeuvre (MOE)", "sa maîtrise d'œuvre (MOE)"),
                 "validator1": ("its validator", "son valideur"), "validator2": ("its second validator",
                                                                               "son second valideur")}
        en, fr = names.get(holder, (holder, holder))
        out.append(_with(v, codes.finding(
            "REJ_CONT_B2G", f"Cadre {inv.cadre} goes first to {en}: give its SIRET", f"Le cadre {inv.cadre} "
            f"est d'abord adressé à {fr} : indiquez son SIRET", value=inv.cadre, stage=STAGE,
            location=inv.location("cadre.bt23") or inv.location("cadre.extension")),
            Check("addressee", "failed", holder)))
    return out


@dataclass(frozen=True)
class Link:
    piece_id: str  # the new piece
    earlier_id: str  # the piece it continues
    earlier_status: str
    linked_status: str
    earlier: dict[str, Any] = field(default_factory=dict, compare=False)  # its row, as read here


def resolve_links(settings: Settings, store: Store, verdicts: Sequence[Verdict], piece_ids: Sequence[str],
                  machine: Any) -> tuple[list[Verdict], list[Link]]:
    """A piece whose cadre continues an earlier one (an A15 settles an A4)
    names it in BT-25; without it, or if that piece cannot be linked now,
    the new piece is refused (REJ_COH) and the earlier one is left as is."""
    out, links = [], []
    for v, pid in zip(verdicts, piece_ids):
        rule = machine.link(v.piece.cadre) if (v.valid and v.piece is not None) else None
        if rule is None:
            out.append(v)
            continue
        ref = v.piece.original_invoice
        earlier = _find_earlier(store, ref, rule.links_to) if ref else None
        problem = None
        if earlier is None:
            problem = (f"Cadre {v.piece.cadre} continues a piece of cadre {'/'.join(rule.links_to)}: name it in the "
                       f"preceding invoice reference (BT-25); {'none given' if not ref else f'{ref!r} not found'}",
                       f"Le cadre {v.piece.cadre} fait suite à une pièce de cadre {'/'.join(rule.links_to)} : "
                       f"indiquez-la en référence de facture antérieure (BT-25) ; "
                       f"{'aucune indiquée' if not ref else f'{ref!r} introuvable'}")
        else:
            refused = machine.check(cadre=earlier.cadre, current=earlier.status, new=rule.linked_status,
                                    role="platform", reason=None)
            if refused is not None:
                problem = (f"Piece {earlier.invoice_number} ({earlier.cadre}) is {earlier.status}: it cannot be "
                           f"{rule.linked_status} now", f"La pièce {earlier.invoice_number} ({earlier.cadre}) est "
                           f"{earlier.status} : elle ne peut pas passer {rule.linked_status} maintenant")
        if problem:
            out.append(_with(v, codes.finding("REJ_COH", problem[0], problem[1],
                                              location=v.piece.location("original_invoice"), value=ref, stage=STAGE),
                             Check("link", "failed", problem[0])))
            continue
        links.append(Link(pid, earlier.id, earlier.status, rule.linked_status, earlier.model_dump()))
        out.append(_with(v, None, Check("link", "passed", f"continues {earlier.id} ({earlier.cadre})")))
    return out, links


def _find_earlier(store: Store, number: str, cadres: Sequence[str]) -> Piece | None:
    with store.session() as s:
        return s.execute(select(Piece).where(Piece.invoice_number == number, Piece.cadre.in_(list(cadres)),
                                             Piece.valid.is_(True))
                         .order_by(Piece.created_at.desc())).scalars().first()


def _with(v: Verdict, finding: Finding | None, check: Check) -> Verdict:
    return replace(v, findings=v.findings + ((finding,) if finding else ()), checks=v.checks + (check,))


# --- delivery ----------------------------------------------------------------------

def delivery_dir(settings: Settings, party: dict[str, Any]) -> Path | None:
    folder = folder_of(settings, party)
    if folder is None:
        return None
    service = safe_name(party.get("service") or "_")
    if service in RESERVED_FOLDERS:  # a service code must not land among the party's own return files
        service = f"service-{service}"
    return settings.outbox / folder / service


def delivery_writes(settings: Settings, flow: ClaimedFlow, verdict: Verdict, piece_id: str,
                    party: dict[str, Any], *, renvoi: str = "Non") -> tuple[Path, list[Callable[[], None]]]:
    """What to write to deliver one piece to one party: the original, its
    documents, then the pivot. Returns the folder and the writers."""
    from gateway.rules.directory import find_structure
    from gateway.outputs.pivot import PivotAttachment, write_pivot

    target = delivery_dir(settings, party)
    inv = verdict.piece
    ext = _EXT.get(verdict.format, Path(verdict.name).suffix or ".bin")
    original = f"{piece_id}{ext}"
    structure = find_structure(settings, inv.recipient.siret) if inv.recipient.siret else None
    service = structure.service(inv.service_code) if inv.service_code and structure else None
    # The pivot lists the invoice document (01: the PDF rendering when one came
    # with the data, else the original) and the supporting documents (02).
    # A Factur-X's own PDF is the original: delivered once.
    docs, attachments = [], []
    for n, d in enumerate(verdict.documents, 1):
        if d.data == verdict.original:
            continue
        name = f"{piece_id}.pj{n}-{safe_name(d.name)}"
        docs.append((name, d.data))
        attachments.append(PivotAttachment(d.name, d.mime, kind=d.kind))
    deposited = (Path(verdict.name).name or original, "application/pdf" if ext == ".pdf" else "application/xml")
    pivot = write_pivot(inv, flow_id=flow.id, piece_id=piece_id, received_at=flow.received_at, structure=structure,
                        service=service, attachments=attachments, original=deposited, renvoi=renvoi,
                        emitter_id=settings.platform_id,
                        receiver_id=party.get("siret") or party.get("partner") or "DEST")
    writes: list[Callable[[], None]] = [lambda: atomic_write(target / original, verdict.original)]
    writes += [lambda n=n, b=b: atomic_write(target / n, b) for n, b in docs]
    return target, writes + [lambda: atomic_write(target / f"{piece_id}.pivot.xml", pivot)]


def piece_columns(verdict: Verdict, partner: str, depositor: str = "supplier") -> dict[str, Any]:
    """The piece table's routing columns, from the canonical invoice."""
    inv: Invoice | None = verdict.piece
    if inv is None:
        return dict(partner=partner)
    summary = {"supplier_name": inv.supplier.name, "supplier_country": inv.supplier.country,
               "debtor_name": inv.recipient.name, "total": str(inv.totals.payable or ""),
               "currency": inv.currency, "type_code": inv.type_code, "original_invoice": inv.original_invoice,
               "levels": inv.validator_levels}
    # the key REJ_UNI registers, so status files find the piece by the same supplier id
    supplier = invoice_key(inv)[0][:64] or None
    return dict(partner=partner, cadre=inv.cadre, piece_type=inv.piece_type[:64],
                invoice_number=(inv.invoice_number or "")[:64] or None,
                issue_date=inv.issue_date.isoformat() if isinstance(inv.issue_date, date) else None,
                supplier_id=supplier, recipient_siret=(inv.recipient.siret or "")[:64] or None,
                service_code=(inv.service_code or "")[:100] or None,
                engagement_number=(inv.engagement_number or "")[:64] or None,
                parties_json=json.dumps(parties_of(inv, partner, depositor), ensure_ascii=False),
                summary_json=json.dumps(summary, ensure_ascii=False, default=str))


def due(machine: Any, cadre: str, status: str, at: datetime) -> datetime | None:
    d = machine.deadline(cadre, status)
    return at + d[0] if d else None


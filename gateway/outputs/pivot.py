"""The recipient's copy of a piece: a CPPFacturePivot V2_02 document.

What a public recipient's application receives from the platform
(CPPFacturePivot_V2_02.xsd, chorus-domain 3b): supplier, debtor (SIRET and
service), invoice data (number, type 380/381, cadre, dates, payment means,
amounts, VAT, engagement, lines) and at least one attachment (PJ), the first
being the invoice itself (TypePJ 01).

Element order, enumerations and lengths follow the XSD; the writer refuses
(PivotError) a piece the XSD could not hold instead of writing an invalid file.
"""
from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from lxml import etree

from gateway.core.config import Settings
from gateway.core.files import fit_name
from gateway.core.invoice import CURRENCY, LIMITS, Invoice, siret_error
from gateway.outputs.cppstatut import edi_id

VERSION = "V2_02"
RENVOI = ("Non", "Complétée", "Recyclée")
# Pivot ModePaiement codes and labels; other UNCL 4461 codes map to the nearest one [U].
PAYMENT_LABELS = {10: "Espèces", 20: "Chèque", 30: "Virement", 31: "Transfert de débit",
                  42: "Paiement sur compte bancaire", 48: "Carte bancaire", 49: "Prélèvement",
                  97: "Compensation entre partenaires"}
PAYMENT_ALIASES = {58: 30, 59: 49, 54: 48, 55: 48, 57: 30}  # SEPA transfer / debit, cards, standing order
DEFAULT_PAYMENT = 30
EU_COUNTRIES = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR EL HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())
MAX_PJ_NAME = 50


class PivotError(ValueError):
    """The piece lacks something the pivot requires (the caller should not have accepted it)."""


@dataclass(frozen=True)
class PivotAttachment:
    """A file delivered with the piece. kind "01" is the invoice itself (its original
    file), "02" a supporting document. Without content, only the name is listed."""

    name: str
    mime: str
    content: bytes | None = None
    kind: str = "02"


def write_pivot(
    invoice: Invoice,
    *,
    flow_id: str,
    piece_id: str | int,
    received_at: datetime | date,
    structure: Any = None,
    service: Any = None,
    attachments: Sequence[PivotAttachment | tuple] | None = None,
    original: tuple[str, str] | None = None,
    renvoi: str = "Non",
    produced_at: datetime | date | None = None,
    emitter_id: str = Settings.platform_id,  # the settings' default id; routing passes the home's
    receiver_id: str = "DEST001",
) -> bytes:
    """The CPPFacturePivot document (UTF-8 bytes) for one accepted piece.

    structure / service: the recipient's directory entries (gateway.directory
    Structure / Service) for the debtor's and the service's names. attachments:
    PivotAttachment or (name, mime[, content[, kind]]) tuples; None lists the
    invoice's embedded attachments by name. The invoice itself (kind "01") is
    listed once, first: the first of kind "01" given, the others becoming "02";
    when none is, `original` (name, mime of the deposited file; default
    `<number>.xml`) is listed as the invoice. emitter_id / receiver_id are cut
    to the envelope's 3 to 8 characters (cppstatut.edi_id). piece_id goes to
    IdCPRO when it is a whole number.
    """
    if renvoi not in RENVOI:
        raise PivotError(f"renvoi must be one of {RENVOI}, not {renvoi!r}")
    for label, ident in (("emitter_id", emitter_id), ("receiver_id", receiver_id)):
        if not any(ch.isalnum() for ch in ident):
            raise PivotError(f"{label} must name a partner (letters or digits), not {ident!r}")

    root = etree.Element("CPPFacturePivot", Version=VERSION)
    _envelope(root, flow_id, produced_at or received_at, edi_id(emitter_id), edi_id(receiver_id))
    unit = _sub(_sub(root, "CPPFactures", Compteur="1"), "CPPFacturePivotUnitaire", NumOrdre="1")
    _supplier(unit, invoice)
    _debtor(unit, invoice, structure, service)
    _invoice_data(unit, invoice, piece_id, received_at, renvoi)
    for i, pj in enumerate(_attachments(invoice, attachments, original), start=1):
        _pj(unit, i, pj)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _sub(parent: etree._Element, tag: str, text: Any = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = _text(text)
    return el


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _envelope(root: etree._Element, flow_id: str, produced: datetime | date, emitter: str, receiver: str) -> None:
    unit = _sub(_sub(root, "Enveloppe"), "EnveloppeUnitaire", NumOrdre="1")
    params = _sub(unit, "Parametres")
    for n, (code, value) in enumerate((("DtPrd", produced), ("IdFlx", flow_id)), start=1):
        p = _sub(params, "ParametreIndiv", NumOrdre=f"{n:04d}")
        _sub(p, "Code", code)
        _sub(p, "Valeurparametre", value)
    partners = _sub(unit, "Partenaires")
    _sub(_sub(partners, "Recepteur"), "Id", receiver)
    em = _sub(partners, "Emetteur")
    _sub(em, "Id", emitter)
    _sub(em, "Libelle", "Passerelle de facturation électronique")


def _supplier(unit: etree._Element, inv: Invoice) -> None:
    s = inv.supplier
    country = (s.country or "FR").strip().upper()[:2]
    if len(country) != 2:
        country = "FR"
    if s.siret and not siret_error(s.siret):
        kind, ident = "1", s.siret
    else:  # 2: EU outside France, 3: outside the EU (pivot TypeIdentifiant)
        kind, ident = ("2" if country in EU_COUNTRIES else "3"), (s.vat_id or s.siret or s.name)
    if not ident:
        raise PivotError("the supplier has no identifier (SIRET, VAT id or name)")
    el = _sub(unit, "Fournisseur")
    _sub(el, "TypeIdentifiant", kind)
    _sub(el, "Identifiant", ident)
    _sub(el, "RaisonSociale", s.name or ident)
    _sub(el, "CodePays", country)
    if inv.payment_account:
        account = inv.payment_account.replace(" ", "")
        bank = _sub(el, "ReferenceBancaire", Type="IBAN" if account[:2].isalpha() else "RIB")
        _sub(bank, "Compte", account)
    _sub(el, "ModeEmission", "flux")


def _debtor(unit: etree._Element, inv: Invoice, structure: Any, service: Any) -> None:
    siret = inv.recipient.siret
    if not siret or len(siret) != 14:
        raise PivotError(f"the recipient SIRET must be 14 characters, not {siret!r}")
    if inv.service_code and len(inv.service_code) > LIMITS["service_code"]:
        raise PivotError(f"the service code is longer than {LIMITS['service_code']} characters")
    el = _sub(unit, "Debiteur")
    _sub(el, "TypeIdentifiant", "1")
    _sub(el, "Identifiant", siret)
    name = getattr(structure, "raison_sociale", None) or inv.recipient.name
    if name:
        _sub(el, "Nom", name)
    if inv.service_code:
        _sub(el, "CodeService", inv.service_code)
        if getattr(service, "name", None):
            _sub(el, "NomService", service.name)


def _invoice_data(unit: etree._Element, inv: Invoice, piece_id: str | int, received_at: datetime | date,
                  renvoi: str) -> None:
    if not inv.invoice_number or len(inv.invoice_number) > LIMITS["invoice_number"]:
        raise PivotError(f"the invoice number must be 1 to {LIMITS['invoice_number']} characters, "
                         f"not {inv.invoice_number!r}")
    if inv.issue_date is None:
        raise PivotError("the invoice has no issue date")
    t = inv.totals
    if t.net is None:
        raise PivotError("the invoice has no total without VAT")
    currency = (inv.currency or "EUR").strip().upper()
    if not CURRENCY.fullmatch(currency):
        raise PivotError(f"the currency must be 3 letters (ISO 4217), not {inv.currency!r}")
    gross = t.gross if t.gross is not None else t.net + (t.tax or Decimal("0"))
    payable = t.payable if t.payable is not None else gross

    el = _sub(unit, "DonneesFacture")
    _sub(el, "Id", inv.invoice_number)
    if str(piece_id).isdigit():
        _sub(el, "IdCPRO", int(piece_id))
    _sub(el, "Renvoi", renvoi)
    if inv.original_invoice:
        _sub(el, "IdFactureOrigine", inv.original_invoice[:LIMITS["original_invoice"]])
    _sub(el, "Type", "381" if inv.is_credit_note else "380")
    _sub(el, "Cadre", inv.cadre)
    _sub(el, "DateEmissionFacture", inv.issue_date)
    mode = _sub(el, "ModePaiement")
    code = _payment_code(inv.payment_means_code)
    _sub(mode, "Code", code)
    _sub(mode, "Libelle", PAYMENT_LABELS[code])
    _sub(el, "DateReception", received_at)
    _sub(el, "Devise", currency)
    amounts = _sub(el, "Montants")
    _sub(amounts, "MontantHT", t.net)
    _sub(amounts, "MontantTTC", gross)
    _sub(amounts, "MontantNetAPayer", payable)
    if inv.vat_breakdown:
        vats = _sub(el, "TVAs")
        for v in inv.vat_breakdown:
            tva = _sub(vats, "TVA")
            _sub(tva, "Taux", v.rate if v.rate is not None else Decimal("0"))
            _sub(tva, "BaseHt", v.base if v.base is not None else Decimal("0"))
            _sub(tva, "MontantTVA", v.amount if v.amount is not None else Decimal("0"))
    if inv.contract_number or inv.engagement_number:
        eng = _sub(el, "Engagement")
        for tag, name in (("NumeroMarche", "contract_number"), ("NumeroEngagement", "engagement_number")):
            value = getattr(inv, name)
            if value:
                if len(value) > LIMITS[name]:
                    raise PivotError(f"{tag} is longer than {LIMITS[name]} characters")
                _sub(eng, tag, value)
    if inv.lines:
        lines = _sub(el, "Lignes")
        for i, ln in enumerate(inv.lines, start=1):
            line = _sub(lines, "Ligne", NumOrdre=str(i))
            if ln.name or ln.id:
                _sub(line, "ReferenceProduit", ln.name or ln.id)
            qty = ln.quantity if ln.quantity is not None else Decimal("1")
            net = ln.net_amount if ln.net_amount is not None else Decimal("0")
            price = ln.unit_price if ln.unit_price is not None else (net / qty if qty else Decimal("0"))
            _sub(line, "PrixUnitaire", price)
            _sub(line, "Quantite", qty)
            _sub(line, "MontantHT", net)
            if ln.vat_rate is not None:
                _sub(line, "TauxTVA", ln.vat_rate)


def _payment_code(raw: str | None) -> int:
    try:
        code = int((raw or "").strip())
    except ValueError:
        return DEFAULT_PAYMENT
    code = PAYMENT_ALIASES.get(code, code)
    return code if code in PAYMENT_LABELS else DEFAULT_PAYMENT


def _attachments(inv: Invoice, given: Sequence[PivotAttachment | tuple] | None,
                 original: tuple[str, str] | None) -> list[PivotAttachment]:
    items = [a if isinstance(a, PivotAttachment) else PivotAttachment(*a) for a in given or ()]
    for a in items:
        if a.kind not in ("01", "02"):
            raise PivotError(f"attachment kind must be '01' (the invoice) or '02', not {a.kind!r}")
    if given is None:
        items = [PivotAttachment(name, mime) for name, mime in inv.attachments]
    if not any(a.kind == "01" for a in items):
        name, mime = original or (f"{inv.invoice_number}.xml", "application/xml")
        items.insert(0, PivotAttachment(name, mime, kind="01"))
    return sorted(_one_invoice(items), key=lambda a: a.kind)  # the invoice first


def _one_invoice(items: list[PivotAttachment]) -> list[PivotAttachment]:
    """A piece has one invoice document (01): the first; any other is supporting (02)."""
    first = next(i for i, a in enumerate(items) if a.kind == "01")
    return [replace(a, kind="02") if a.kind == "01" and i != first else a for i, a in enumerate(items)]


def _pj(unit: etree._Element, n: int, a: PivotAttachment) -> None:
    el = _sub(unit, "PJ", NumOrdre=str(n))
    if a.content is not None:
        _sub(el, "Contenu", base64.b64encode(a.content).decode("ascii"))
    _sub(el, "NomPJ", fit_name(a.name, MAX_PJ_NAME))
    _sub(el, "TypePJ", a.kind)
    _sub(el, "MimeTypePJ", a.mime or "application/octet-stream")


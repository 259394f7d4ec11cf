"""Invoice builders for everyone's tests: UBL Invoice / CreditNote, CII, and the
platform's legacy UBL with the AIFE extension.

By default a built document is XSD-valid (UBL 2.1, Factur-X EN 16931 / EXTENDED)
and EN 16931-consistent (totals, VAT breakdown, due date, seller VAT id), with
SIRETs from the demo directory (gateway/demo/directory.csv). Pass None to leave
an optional element out; pass negative quantities for negative amounts.

    ubl_invoice()                                   # A1 invoice to the Commune de Valbrune
    ubl_invoice(recipient_siret="21990001600012")   # bad Luhn key
    cii_invoice(type_code=381, number="AV-1")       # CII credit note
    ubl_aife_invoice(cadre="A9", validator_siret=TITULAIRE_SIRET)
"""
from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from lxml import etree

# --- demo directory values (see gateway/demo/directory.csv, services.csv) ---------------
COMMUNE_SIRET = "21990001600011"  # service code required; services ACHATS, VOIRIE (EJ required), ANCIEN (inactive)
HOPITAL_SIRET = "26990002300012"  # engagement required
DEPARTEMENT_SIRET = "22990003000011"  # service code or engagement
UNIVERSITE_SIRET = "19990004400017"  # nothing required
SYNDICAT_SIRET = "25990005800019"  # inactive structure
OPH_MOA_SIRET = "20990006700015"  # MOA only (public works)
DDT_MOE_SIRET = "27990007000012"  # MOE of the OPH's works
TITULAIRE_SIRET = "49990010800014"  # titulaire, validator of sub-contractors' invoices
SUPPLIER_SIRET = "79990011300017"  # Fournitures Exemple SARL (not in the directory)
SUBCONTRACTOR_SIRET = "39990012500010"  # Sous-Traitant Exemple SAS
COTRAITANT_SIRET = "59990009900012"  # Cotraitant Exemple SARL
LA_POSTE_SIRET = "35600000000015"  # La Poste rule: digit sum multiple of 5, Luhn key wrong
UNKNOWN_SIRET = "28990008600017"  # valid key, not in the directory

IBAN = "FR7630006000011234567890189"

UBL_NS = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "aife": "urn:AIFE:Facture:Extension",
}
CII_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
EN16931 = "urn:cen.eu:en16931:2017"
DEFAULT_LINES = (("Ramettes de papier A4", 10, "4.50"), ("Cartouches d'encre", 3, "32.00"))
CENT = Decimal("0.01")

LineSpec = tuple  # (name, quantity, unit price[, VAT rate percent])
# (file name, mime type, content[, description]): the description goes in UBL
# cbc:DocumentDescription / CII ram:Name (e.g. "Facture" for the invoice's own PDF)
Attachment = tuple  # tuple[str, str, bytes] | tuple[str, str, bytes, str]


def fr_vat(siret: str) -> str:
    """French VAT number of the SIREN in a SIRET (key = (12 + 3 * (SIREN mod 97)) mod 97)."""
    siren = int(siret[:9])
    return f"FR{(12 + 3 * (siren % 97)) % 97:02d}{siret[:9]}"


# --- amounts ------------------------------------------------------------------

def _money(x: Decimal) -> str:
    return str(x.quantize(CENT, rounding=ROUND_HALF_UP))


def compute(lines: Sequence[LineSpec], vat_rate: str | Decimal = "20.00") -> dict:
    """Line amounts, VAT breakdown and totals, rounded as EN 16931 expects."""
    out_lines = []
    for i, spec in enumerate(lines, start=1):
        name, qty, price = spec[0], Decimal(str(spec[1])), Decimal(str(spec[2]))
        rate = Decimal(str(spec[3])) if len(spec) > 3 else Decimal(str(vat_rate))
        out_lines.append({"id": str(i), "name": name, "qty": qty, "price": price, "rate": rate,
                          "net": (qty * price).quantize(CENT, rounding=ROUND_HALF_UP)})
    breakdown: dict[Decimal, Decimal] = {}
    for ln in out_lines:
        breakdown[ln["rate"]] = breakdown.get(ln["rate"], Decimal("0")) + ln["net"]
    vat = [{"rate": r, "base": b, "amount": (b * r / 100).quantize(CENT, rounding=ROUND_HALF_UP),
            "category": "S" if r else "Z"} for r, b in breakdown.items()]
    net = sum((ln["net"] for ln in out_lines), Decimal("0.00"))
    tax = sum((v["amount"] for v in vat), Decimal("0.00"))
    return {"lines": out_lines, "vat": vat, "net": net, "tax": tax, "gross": net + tax, "payable": net + tax}


# --- UBL ----------------------------------------------------------------------

def _sub(parent: etree._Element, tag: str, text: object = None, **attrs: str) -> etree._Element:
    prefix, local = tag.split(":")
    ns = UBL_NS.get(prefix) or CII_NS[prefix]
    el = etree.SubElement(parent, f"{{{ns}}}{local}", {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = str(text)
    return el


def _ubl_address(party: etree._Element, city: str, zone: str, country: str) -> None:
    addr = _sub(party, "cac:PostalAddress")
    _sub(addr, "cbc:StreetName", "1 rue de l'Exemple")
    _sub(addr, "cbc:CityName", city)
    _sub(addr, "cbc:PostalZone", zone)
    _sub(_sub(addr, "cac:Country"), "cbc:IdentificationCode", country)


@dataclass(frozen=True)
class Spec:
    """What a built invoice says: the keywords every builder takes, with their
    defaults (ubl_invoice, ubl_creditnote, ubl_aife_invoice and cii_invoice
    build from one, so a default is written once)."""

    number: str
    issue_date: str = "2024-03-15"
    due_date: str | None = "2024-04-14"
    type_code: int | str | None = None  # None: 380, or 381 for a UBL CreditNote
    currency: str = "EUR"
    supplier_siret: str | None = SUPPLIER_SIRET
    supplier_name: str = "Fournitures Exemple SARL"
    supplier_country: str = "FR"
    supplier_vat: str | None = "auto"  # "auto": the French VAT number of supplier_siret
    recipient_siret: str | None = COMMUNE_SIRET
    recipient_name: str = "Commune de Valbrune"
    service_code: str | None = "ACHATS"
    engagement: str | None = "EJ-2024-000123"
    contract: str | None = None
    cadre: str | None = "A1"
    profile: str = EN16931
    original_invoice: str | None = None
    lines: Sequence[LineSpec] | None = DEFAULT_LINES
    vat_rate: str | Decimal = "20.00"
    attachments: Sequence[Attachment] = ()
    payment_means: str | None = "30"
    validator_siret: str | None = None
    validator_service: str | None = None
    validator2_siret: str | None = None
    moe_siret: str | None = None
    payable: str | Decimal | None = None
    gross: str | Decimal | None = None
    legacy_ids: bool = False

    def amounts(self) -> dict:
        return compute(self.lines or (), self.vat_rate)


def seller_vat(spec: Spec) -> str | None:
    """The seller's VAT number (BT-31) to write, if any."""
    if spec.supplier_vat == "auto":
        return fr_vat(spec.supplier_siret) if spec.supplier_siret else None
    return spec.supplier_vat


def references(spec: Spec) -> list[tuple[str, str]]:
    """(id, name) of the validators and the MOE: the gateway reads them from
    additional document references named so (mappings/ubl.toml, cii.toml)."""
    named = ((spec.validator_siret, "VALIDEUR"), (spec.validator_service, "SERVICE_VALIDEUR"),
             (spec.validator2_siret, "VALIDEUR_2"), (spec.moe_siret, "MOE"))
    return [(ref_id, name) for ref_id, name in named if ref_id is not None]


def totals(spec: Spec, amounts: dict) -> tuple[str, str]:
    """(gross, payable): computed, unless the spec forces one (to break BR-CO-15)."""
    gross = Decimal(str(spec.gross)) if spec.gross is not None else amounts["gross"]
    payable = Decimal(str(spec.payable)) if spec.payable is not None else amounts["payable"]
    return _money(gross), _money(payable)


def _ubl(kind: str, spec: Spec, *, aife: bool = False, aife_cadre: str | None = None,
         note: str | None = None) -> bytes:
    s = spec
    credit = kind == "CreditNote"
    root_ns = UBL_NS["cn" if credit else "inv"]
    nsmap = {None: root_ns, "cac": UBL_NS["cac"], "cbc": UBL_NS["cbc"]}
    if aife:
        nsmap.update(ext=UBL_NS["ext"], aife=UBL_NS["aife"])
    root = etree.Element(f"{{{root_ns}}}{kind}", nsmap=nsmap)
    amounts = s.amounts()
    cur = s.currency

    if aife:
        content = _sub(_sub(_sub(root, "ext:UBLExtensions"), "ext:UBLExtension"), "ext:ExtensionContent")
        ext = _sub(content, "aife:FactureExtension")
        if aife_cadre is not None:
            _sub(ext, "aife:CategoryCode", aife_cadre)
    _sub(root, "cbc:CustomizationID", s.profile)
    if s.cadre is not None:
        _sub(root, "cbc:ProfileID", s.cadre)
    _sub(root, "cbc:ID", s.number)
    _sub(root, "cbc:IssueDate", s.issue_date)
    if s.due_date and not credit:
        _sub(root, "cbc:DueDate", s.due_date)
    _sub(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode", s.type_code or (381 if credit else 380))
    if note:
        _sub(root, "cbc:Note", note)
    _sub(root, "cbc:DocumentCurrencyCode", cur)
    if s.service_code is not None and not s.legacy_ids:
        _sub(root, "cbc:BuyerReference", s.service_code)
    if s.engagement is not None:
        _sub(_sub(root, "cac:OrderReference"), "cbc:ID", s.engagement)
    if s.original_invoice is not None:
        _sub(_sub(_sub(root, "cac:BillingReference"), "cac:InvoiceDocumentReference"), "cbc:ID", s.original_invoice)
    if s.contract is not None:
        ref = _sub(root, "cac:ContractDocumentReference")
        _sub(ref, "cbc:ID", s.contract)
        if s.legacy_ids:
            _sub(ref, "cbc:DocumentTypeCode", "Marché")
    for ref_id, description in references(s):
        ref = _sub(root, "cac:AdditionalDocumentReference")
        _sub(ref, "cbc:ID", ref_id)
        _sub(ref, "cbc:DocumentDescription", description)
    for i, (name, mime, data, *description) in enumerate(s.attachments, start=1):
        ref = _sub(root, "cac:AdditionalDocumentReference")
        _sub(ref, "cbc:ID", f"PJ-{i}")
        if description:
            _sub(ref, "cbc:DocumentDescription", description[0])
        _sub(_sub(ref, "cac:Attachment"), "cbc:EmbeddedDocumentBinaryObject",
             base64.b64encode(data).decode(), mimeCode=mime, filename=name)

    party = _sub(_sub(root, "cac:AccountingSupplierParty"), "cac:Party")
    if s.supplier_siret is not None:
        scheme = {"schemeName": "1"} if s.legacy_ids else {"schemeID": "0009"}
        _sub(_sub(party, "cac:PartyIdentification"), "cbc:ID", s.supplier_siret, **scheme)
    _sub(_sub(party, "cac:PartyName"), "cbc:Name", s.supplier_name)
    _ubl_address(party, "Lyon", "69001", s.supplier_country)
    if vat_id := seller_vat(s):
        pts = _sub(party, "cac:PartyTaxScheme")
        _sub(pts, "cbc:CompanyID", vat_id)
        _sub(_sub(pts, "cac:TaxScheme"), "cbc:ID", "VAT")
    ple = _sub(party, "cac:PartyLegalEntity")
    _sub(ple, "cbc:RegistrationName", s.supplier_name)
    if s.supplier_siret is not None and len(s.supplier_siret) >= 9 and not s.legacy_ids:
        _sub(ple, "cbc:CompanyID", s.supplier_siret[:9], schemeID="0002")

    customer = _sub(root, "cac:AccountingCustomerParty")
    party = _sub(customer, "cac:Party")
    if s.recipient_siret is not None:
        scheme = {"schemeName": "1"} if s.legacy_ids else {"schemeID": "0009"}
        _sub(_sub(party, "cac:PartyIdentification"), "cbc:ID", s.recipient_siret, **scheme)
    _sub(_sub(party, "cac:PartyName"), "cbc:Name", s.recipient_name)
    _ubl_address(party, "Valbrune", "99100", "FR")
    _sub(_sub(party, "cac:PartyLegalEntity"), "cbc:RegistrationName", s.recipient_name)
    if s.legacy_ids and s.service_code is not None:
        _sub(_sub(customer, "cac:AccountingContact"), "cbc:ID", s.service_code)

    if s.payment_means is not None:
        pm = _sub(root, "cac:PaymentMeans")
        _sub(pm, "cbc:PaymentMeansCode", s.payment_means)
        if credit and s.due_date:
            _sub(pm, "cbc:PaymentDueDate", s.due_date)
        if s.payment_means in ("30", "58"):
            _sub(_sub(pm, "cac:PayeeFinancialAccount"), "cbc:ID", IBAN)
    if credit or not s.due_date:
        _sub(_sub(root, "cac:PaymentTerms"), "cbc:Note", "Paiement à 30 jours")

    tt = _sub(root, "cac:TaxTotal")
    _sub(tt, "cbc:TaxAmount", _money(amounts["tax"]), currencyID=cur)
    for v in amounts["vat"]:
        st = _sub(tt, "cac:TaxSubtotal")
        _sub(st, "cbc:TaxableAmount", _money(v["base"]), currencyID=cur)
        _sub(st, "cbc:TaxAmount", _money(v["amount"]), currencyID=cur)
        cat = _sub(st, "cac:TaxCategory")
        _sub(cat, "cbc:ID", v["category"])
        _sub(cat, "cbc:Percent", v["rate"])
        _sub(_sub(cat, "cac:TaxScheme"), "cbc:ID", "VAT")
    gross, payable = totals(s, amounts)
    lmt = _sub(root, "cac:LegalMonetaryTotal")
    _sub(lmt, "cbc:LineExtensionAmount", _money(amounts["net"]), currencyID=cur)
    _sub(lmt, "cbc:TaxExclusiveAmount", _money(amounts["net"]), currencyID=cur)
    _sub(lmt, "cbc:TaxInclusiveAmount", gross, currencyID=cur)
    _sub(lmt, "cbc:PayableAmount", payable, currencyID=cur)

    for ln in amounts["lines"]:
        line = _sub(root, "cac:CreditNoteLine" if credit else "cac:InvoiceLine")
        _sub(line, "cbc:ID", ln["id"])
        _sub(line, "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity", ln["qty"], unitCode="C62")
        _sub(line, "cbc:LineExtensionAmount", _money(ln["net"]), currencyID=cur)
        item = _sub(line, "cac:Item")
        _sub(item, "cbc:Name", ln["name"])
        cat = _sub(item, "cac:ClassifiedTaxCategory")
        _sub(cat, "cbc:ID", "S" if ln["rate"] else "Z")
        _sub(cat, "cbc:Percent", ln["rate"])
        _sub(_sub(cat, "cac:TaxScheme"), "cbc:ID", "VAT")
        _sub(_sub(line, "cac:Price"), "cbc:PriceAmount", ln["price"], currencyID=cur)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def ubl_invoice(*, number: str = "FA-2024-0001", note: str | None = None, **kw) -> bytes:
    """EN 16931 UBL Invoice (type 380, cadre A1 in BT-23 by default); keywords: Spec's."""
    return _ubl("Invoice", Spec(number=number, **kw), note=note)


def ubl_creditnote(*, number: str = "AV-2024-0001", original_invoice: str | None = "FA-2024-0001",
                   note: str | None = None, **kw) -> bytes:
    """EN 16931 UBL CreditNote (type 381, positive amounts, refers to the original invoice)."""
    return _ubl("CreditNote", Spec(number=number, original_invoice=original_invoice, **kw), note=note)


def ubl_aife_invoice(*, cadre: str | None = "A1", number: str = "FA-2024-0101", bt23: str | None = None,
                     legacy_ids: bool = True, note: str | None = None, **kw) -> bytes:
    """The platform's legacy UBL: cadre in the AIFE extension (aife:CategoryCode),
    SIRETs with schemeName 1, code service in AccountingContact/cbc:ID.
    `bt23` also writes a cbc:ProfileID (normally absent)."""
    spec = Spec(number=number, cadre=bt23, legacy_ids=legacy_ids, **kw)
    return _ubl("Invoice", spec, aife=True, aife_cadre=cadre, note=note)


# --- CII ----------------------------------------------------------------------

def _cii_date(parent: etree._Element, tag: str, iso: str) -> None:
    _sub(_sub(parent, tag), "udt:DateTimeString", iso.replace("-", ""), format="102")


def cii_invoice(*, number: str = "FA-2024-0002", **kw) -> bytes:
    """CII D16B (EN 16931); keywords: Spec's. type_code=381 makes a credit note (positive amounts).
    legacy_ids puts SIRETs in SpecifiedLegalOrganization/ID schemeID 1 (Chorus CII 16B),
    which the Factur-X rules refuse (scheme not in the ISO 6523 list)."""
    return _cii(Spec(number=number, **kw))


def _cii(s: Spec) -> bytes:
    root = etree.Element(f"{{{CII_NS['rsm']}}}CrossIndustryInvoice", nsmap=dict(CII_NS))
    amounts = s.amounts()
    cur = s.currency

    ctx = _sub(root, "rsm:ExchangedDocumentContext")
    if s.cadre is not None:
        _sub(_sub(ctx, "ram:BusinessProcessSpecifiedDocumentContextParameter"), "ram:ID", s.cadre)
    _sub(_sub(ctx, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", s.profile)
    doc = _sub(root, "rsm:ExchangedDocument")
    _sub(doc, "ram:ID", s.number)
    _sub(doc, "ram:TypeCode", s.type_code or 380)
    _cii_date(doc, "ram:IssueDateTime", s.issue_date)

    tx = _sub(root, "rsm:SupplyChainTradeTransaction")
    for ln in amounts["lines"]:
        item = _sub(tx, "ram:IncludedSupplyChainTradeLineItem")
        _sub(_sub(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", ln["id"])
        _sub(_sub(item, "ram:SpecifiedTradeProduct"), "ram:Name", ln["name"])
        _sub(_sub(_sub(item, "ram:SpecifiedLineTradeAgreement"), "ram:NetPriceProductTradePrice"),
             "ram:ChargeAmount", ln["price"])
        _sub(_sub(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", ln["qty"], unitCode="C62")
        settle = _sub(item, "ram:SpecifiedLineTradeSettlement")
        tax = _sub(settle, "ram:ApplicableTradeTax")
        _sub(tax, "ram:TypeCode", "VAT")
        _sub(tax, "ram:CategoryCode", "S" if ln["rate"] else "Z")
        _sub(tax, "ram:RateApplicablePercent", ln["rate"])
        _sub(_sub(settle, "ram:SpecifiedTradeSettlementLineMonetarySummation"), "ram:LineTotalAmount",
             _money(ln["net"]))

    agr = _sub(tx, "ram:ApplicableHeaderTradeAgreement")
    if s.service_code is not None:
        _sub(agr, "ram:BuyerReference", s.service_code)
    seller = _sub(agr, "ram:SellerTradeParty")
    _sub(seller, "ram:Name", s.supplier_name)
    if s.supplier_siret is not None:
        _sub(_sub(seller, "ram:SpecifiedLegalOrganization"), "ram:ID", s.supplier_siret,
             schemeID="1" if s.legacy_ids else "0009")
    _cii_address(seller, "69001", "Lyon", s.supplier_country)
    if vat_id := seller_vat(s):
        _sub(_sub(seller, "ram:SpecifiedTaxRegistration"), "ram:ID", vat_id, schemeID="VA")
    buyer = _sub(agr, "ram:BuyerTradeParty")
    if s.recipient_siret is not None and not s.legacy_ids:
        _sub(buyer, "ram:GlobalID", s.recipient_siret, schemeID="0009")
    _sub(buyer, "ram:Name", s.recipient_name)
    if s.recipient_siret is not None and s.legacy_ids:
        _sub(_sub(buyer, "ram:SpecifiedLegalOrganization"), "ram:ID", s.recipient_siret, schemeID="1")
    _cii_address(buyer, "99100", "Valbrune", "FR")
    if s.engagement is not None:
        _sub(_sub(agr, "ram:BuyerOrderReferencedDocument"), "ram:IssuerAssignedID", s.engagement)
    if s.contract is not None:
        _sub(_sub(agr, "ram:ContractReferencedDocument"), "ram:IssuerAssignedID", s.contract)
    for ref_id, name in references(s):
        ref = _sub(agr, "ram:AdditionalReferencedDocument")
        _sub(ref, "ram:IssuerAssignedID", ref_id)
        _sub(ref, "ram:TypeCode", "916")
        _sub(ref, "ram:Name", name)
    for i, (name, mime, data, *description) in enumerate(s.attachments, start=1):
        ref = _sub(agr, "ram:AdditionalReferencedDocument")
        _sub(ref, "ram:IssuerAssignedID", f"PJ-{i}")
        _sub(ref, "ram:TypeCode", "916")
        if description:
            _sub(ref, "ram:Name", description[0])
        _sub(ref, "ram:AttachmentBinaryObject", base64.b64encode(data).decode(), mimeCode=mime, filename=name)

    delivery = _sub(_sub(tx, "ram:ApplicableHeaderTradeDelivery"), "ram:ActualDeliverySupplyChainEvent")
    _cii_date(delivery, "ram:OccurrenceDateTime", s.issue_date)
    st = _sub(tx, "ram:ApplicableHeaderTradeSettlement")
    _sub(st, "ram:InvoiceCurrencyCode", cur)
    if s.payment_means is not None:
        pm = _sub(st, "ram:SpecifiedTradeSettlementPaymentMeans")
        _sub(pm, "ram:TypeCode", s.payment_means)
        if s.payment_means in ("30", "58"):
            _sub(_sub(pm, "ram:PayeePartyCreditorFinancialAccount"), "ram:IBANID", IBAN)
    for v in amounts["vat"]:
        tax = _sub(st, "ram:ApplicableTradeTax")
        _sub(tax, "ram:CalculatedAmount", _money(v["amount"]))
        _sub(tax, "ram:TypeCode", "VAT")
        _sub(tax, "ram:BasisAmount", _money(v["base"]))
        _sub(tax, "ram:CategoryCode", v["category"])
        _sub(tax, "ram:RateApplicablePercent", v["rate"])
    terms = _sub(st, "ram:SpecifiedTradePaymentTerms")
    if s.due_date:
        _cii_date(terms, "ram:DueDateDateTime", s.due_date)
    else:
        _sub(terms, "ram:Description", "Paiement à 30 jours")
    gross, payable = totals(s, amounts)
    sums = _sub(st, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _sub(sums, "ram:LineTotalAmount", _money(amounts["net"]))
    _sub(sums, "ram:TaxBasisTotalAmount", _money(amounts["net"]))
    _sub(sums, "ram:TaxTotalAmount", _money(amounts["tax"]), currencyID=cur)
    _sub(sums, "ram:GrandTotalAmount", gross)
    _sub(sums, "ram:DuePayableAmount", payable)
    if s.original_invoice is not None:
        _sub(_sub(st, "ram:InvoiceReferencedDocument"), "ram:IssuerAssignedID", s.original_invoice)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _cii_address(party: etree._Element, zone: str, city: str, country: str) -> None:
    addr = _sub(party, "ram:PostalTradeAddress")
    _sub(addr, "ram:PostcodeCode", zone)
    _sub(addr, "ram:LineOne", "1 rue de l'Exemple")
    _sub(addr, "ram:CityName", city)
    _sub(addr, "ram:CountryID", country)


def parse(data: bytes) -> etree._ElementTree:
    """Parse a built document the way the gateway does (gateway.xmlsafe)."""
    from gateway.core import xmlsafe

    tree, findings = xmlsafe.parse(data)
    assert tree is not None, findings
    return tree


def zip_lot(members: dict[str, bytes], stored: bool = False) -> bytes:
    """A ZIP lot of the given members (deflated, or stored as is)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def targz_lot(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A tar.gz lot of the given members, and symbolic links (name -> target) if asked."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            t.addfile(info)
    return buf.getvalue()

"""French reform (XP Z12-012) invoices for tests: the builders of
invoice_support, completed with what the BR-FR-Flux2 rules ask of every
invoice on a French platform.

    fr_ubl_invoice()                          # passes EN 16931 and BR-FR-Flux2
    fr_cii_invoice(guideline=EXTENDED_CTC_FR) # declares the EXTENDED-CTC-FR profile
    fr_ubl_invoice(notes=("PMT", "AAB"))      # the PMD note missing: BR-FR-05

What it adds: the billing mode (BT-23, e.g. B1) in place of a Chorus cadre;
the legal notes (BG-3) with their subject codes PMT, PMD, AAB (and BAR, the
kind of exchange, B2B by default); both parties' electronic addresses
(BT-34, BT-49) under scheme 0225 (their SIREN); both parties' SIREN (BT-30,
BT-47, scheme 0002) beside their SIRET (BT-29, BT-46, scheme 0009).
"""
from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from invoice_support import CII_NS, COMMUNE_SIRET, SUPPLIER_SIRET, UBL_NS, cii_invoice, ubl_invoice

EXTENDED_CTC_FR = "urn:cen.eu:en16931:2017#conformant#urn.cpro.gouv.fr:1p0:extended-ctc-fr"
NOTES = {
    "PMT": "Indemnité forfaitaire pour frais de recouvrement : 40 EUR",
    "PMD": "Pénalités de retard : trois fois le taux d'intérêt légal",
    "AAB": "Pas d'escompte pour paiement anticipé",
}
ALL_NOTES = ("PMT", "PMD", "AAB")


def _el(parent: etree._Element, qname: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, local = qname.split(":")
    el = etree.Element(f"{{{(UBL_NS | CII_NS)[prefix]}}}{local}", attrs)
    if text is not None:
        el.text = text
    return el


def _notes(codes: Sequence[str], bar: str | None) -> list[tuple[str, str]]:
    out = [(code, NOTES.get(code, "Mention")) for code in codes]
    return out + ([("BAR", bar)] if bar is not None else [])


def fr_ubl_invoice(*, guideline: str = "urn:cen.eu:en16931:2017", billing_mode: str = "B1",
                   notes: Sequence[str] = ALL_NOTES, bar: str | None = "B2B",
                   supplier_endpoint: str | None = "auto", recipient_endpoint: str | None = "auto",
                   endpoint_scheme: str = "0225", supplier_siren: str | None = None, **kw) -> bytes:
    """A UBL invoice for a French platform; keywords: ubl_invoice's (Spec's).
    An endpoint "auto" is the party's SIREN; None leaves it out.
    `supplier_siren` replaces the seller's SIREN (BT-30), by default its SIRET's first 9 digits."""
    kw.setdefault("supplier_siret", SUPPLIER_SIRET)
    kw.setdefault("recipient_siret", COMMUNE_SIRET)
    root = etree.fromstring(ubl_invoice(profile=guideline, cadre=billing_mode, **kw))
    ns = dict(UBL_NS)
    type_code = root.find("cbc:InvoiceTypeCode", ns)
    for code, text in _notes(notes, bar):
        type_code.addnext(_el(root, "cbc:Note", f"#{code}#{text}"))
        type_code = type_code.getnext()
    sides = (("cac:AccountingSupplierParty", kw["supplier_siret"], supplier_endpoint),
             ("cac:AccountingCustomerParty", kw["recipient_siret"], recipient_endpoint))
    for side, siret, endpoint in sides:
        party = root.find(f"{side}/cac:Party", ns)
        if endpoint is not None:
            party.insert(0, _el(party, "cbc:EndpointID", siret[:9] if endpoint == "auto" else endpoint,
                                schemeID=endpoint_scheme))
        legal = party.find("cac:PartyLegalEntity", ns)
        if legal.find("cbc:CompanyID", ns) is None:
            legal.find("cbc:RegistrationName", ns).addnext(_el(legal, "cbc:CompanyID", siret[:9], schemeID="0002"))
    if supplier_siren is not None:
        root.find("cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID", ns).text = supplier_siren
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def fr_cii_invoice(*, guideline: str = "urn:cen.eu:en16931:2017", billing_mode: str = "B1",
                   notes: Sequence[str] = ALL_NOTES, bar: str | None = "B2B",
                   supplier_endpoint: str | None = "auto", recipient_endpoint: str | None = "auto",
                   endpoint_scheme: str = "0225", supplier_siren: str | None = None, **kw) -> bytes:
    """A CII invoice for a French platform; keywords: cii_invoice's (Spec's) and fr_ubl_invoice's."""
    kw.setdefault("supplier_siret", SUPPLIER_SIRET)
    kw.setdefault("recipient_siret", COMMUNE_SIRET)
    root = etree.fromstring(cii_invoice(profile=guideline, cadre=billing_mode, **kw))
    ns = dict(CII_NS)
    doc = root.find("rsm:ExchangedDocument", ns)
    for code, text in _notes(notes, bar):
        note = _el(doc, "ram:IncludedNote")
        note.append(_el(note, "ram:Content", text))
        note.append(_el(note, "ram:SubjectCode", code))
        doc.append(note)
    agreement = root.find("rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement", ns)
    sides = (("ram:SellerTradeParty", kw["supplier_siret"], supplier_endpoint),
             ("ram:BuyerTradeParty", kw["recipient_siret"], recipient_endpoint))
    for side, siret, endpoint in sides:
        party = agreement.find(side, ns)
        legal = party.find("ram:SpecifiedLegalOrganization", ns)
        if legal is not None:  # the builder puts the seller's SIRET here: SIRET to GlobalID, SIREN here
            party.find("ram:Name", ns).addprevious(_el(party, "ram:GlobalID", siret, schemeID="0009"))
            party.remove(legal)
        legal = _el(party, "ram:SpecifiedLegalOrganization")
        siren = supplier_siren if supplier_siren is not None and side == "ram:SellerTradeParty" else siret[:9]
        legal.append(_el(legal, "ram:ID", siren, schemeID="0002"))
        party.find("ram:Name", ns).addnext(legal)
        if endpoint is not None:
            uri = _el(party, "ram:URIUniversalCommunication")
            uri.append(_el(uri, "ram:URIID", siret[:9] if endpoint == "auto" else endpoint, schemeID=endpoint_scheme))
            party.find("ram:PostalTradeAddress", ns).addnext(uri)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

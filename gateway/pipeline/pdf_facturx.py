"""A Factur-X: the invoice XML a PDF carries, and its profile.

The invoice XML is found among the embedded files by its name (factur-x.xml,
zugferd-invoice.xml, xrechnung.xml; several is FX_INCOHERENT), parsed once,
here, and refused as IRR_TYPE_F unless it is a CII D16B invoice. Its profile
is read from the XML's guideline ID (BT-24) and from the XMP metadata
(fx:ConformanceLevel), which must agree (FX_INCOHERENT), as must the XMP's
DocumentFileName and PDF/A-3 markers; the profiles without lines (MINIMUM,
BASIC WL) are refused or taken as header data only (`[pdf] poor_profiles`).
The guideline table is gateway.rules.guidelines' (the rule sets follow it too).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from gateway.core import codes
from gateway.core import xmlsafe
from gateway.core.records import Finding, Format, Location, Severity
from gateway.pipeline.detect import format_of_root
from gateway.pipeline.pdf_safety import EF, STAGE, Embedded, PdfLimits, Revision, pdf_finding
from gateway.rules.guidelines import POOR_PROFILES, guideline_id, profile_from_guideline, profile_from_xmp

FX_STAGE = "facturx"  # findings about the invoice XML a Factur-X carries: its syntax and its kind

# Names of the invoice XML in a Factur-X / ZUGFeRD PDF, compared lower-cased
# (ZUGFeRD 1 writes ZUGFeRD-invoice.xml, ZUGFeRD 2.0 zugferd-invoice.xml).
INVOICE_XML_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")

ZF1_NS = "urn:ferd:CrossIndustryDocument:invoice:1p0"
FX_XMP_NS = (
    "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
    "urn:zugferd:pdfa:CrossIndustryDocument:invoice:2p0#",
    "urn:ferd:pdfa:CrossIndustryDocument:invoice:1p0#",
)
PDFAID_NS = "http://www.aiim.org/pdfa/ns/id/"


@dataclass(frozen=True)
class EmbeddedXml:
    """The invoice XML a Factur-X carries, parsed once, here."""

    name: str
    data: bytes
    tree: etree._ElementTree | None = None  # the parsed document; None when it is not well-formed ...
    problems: tuple[Finding, ...] = ()  # ... and why (IRR_SYNTAX), for the pipeline's syntax check
    cii: bool = False  # a CII D16B invoice; anything else is refused (IRR_TYPE_F in the findings)


NO_PROFILE_SOURCE = {"xml": None, "xmp": None}  # copied, never shared: callers may keep it


# --- profiles (guideline IDs and XMP levels: gateway.rules.guidelines) ------------

def _xmp_props(xmp: bytes | None) -> tuple[dict[str, str], dict[str, str], bool]:
    """(fx properties, pdfaid properties, parsed). Properties may be written
    as elements or as attributes of rdf:Description."""
    if not xmp:
        return {}, {}, False
    tree, _problems = xmlsafe.parse(xmp, stage=STAGE)  # unreadable XMP: reported as missing
    if tree is None:
        return {}, {}, False
    fx: dict[str, str] = {}
    aid: dict[str, str] = {}

    def take(ns: str, local: str, value: str | None) -> None:
        if ns in FX_XMP_NS:
            fx.setdefault(local, (value or "").strip())
        elif ns == PDFAID_NS:
            aid.setdefault(local, (value or "").strip())

    for el in tree.getroot().iter():
        if not isinstance(el.tag, str):
            continue  # comments, processing instructions
        q = etree.QName(el)
        take(q.namespace or "", q.localname, el.text)
        for attr, value in el.attrib.items():
            qa = etree.QName(attr)
            take(qa.namespace or "", qa.localname, value)
    return fx, aid, True


@dataclass
class FacturX:
    """What a revision's embedded files and XMP say of the Factur-X it may be."""

    invoice: EmbeddedXml | None = None
    others: list[Embedded] = field(default_factory=list)
    profile: str | None = None
    source: dict = field(default_factory=lambda: dict(NO_PROFILE_SOURCE))
    pdfa: dict = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def _choose_invoice(files: list[Embedded], xmp_name: str | None, out: FacturX) -> Embedded | None:
    candidates = [f for f in files if f.name.lower() in INVOICE_XML_NAMES]
    if len(candidates) > 1:
        names = ", ".join(f.name for f in candidates)
        out.findings.append(pdf_finding(
            "FX_INCOHERENT", f"The PDF embeds several invoice XMLs ({names}): it must carry exactly one",
            f"Le PDF contient plusieurs XML de facture ({names}) : il en faut exactement un", EF, value=names))
        named = [f for f in candidates if xmp_name and f.name.lower() == xmp_name.lower()]
        candidates = named or sorted(candidates, key=lambda f: INVOICE_XML_NAMES.index(f.name.lower()))
    return candidates[0] if candidates else None


def read_facturx(rev: Revision, limits: PdfLimits) -> FacturX:
    out = FacturX()
    fx, aid, xmp_ok = _xmp_props(rev.xmp)
    out.pdfa = {k: aid[k] for k in ("part", "conformance") if aid.get(k)}
    xmp_name = fx.get("DocumentFileName") or None
    chosen = _choose_invoice(rev.files, xmp_name, out)
    out.others = [f for f in rev.files if f is not chosen]
    if chosen is None:
        if xmp_name:
            out.findings.append(pdf_finding(
                "FX_INCOHERENT", f"The XMP metadata announce a Factur-X invoice '{xmp_name}' but the PDF embeds no "
                "invoice XML", f"Les métadonnées XMP annoncent une facture Factur-X « {xmp_name} » mais le PDF "
                "ne contient aucun XML de facture", "PDF /Root/Metadata", value=xmp_name, severity=Severity.WARNING))
        return out
    where = f"{EF} ({chosen.name})"
    # Parsed once, here; a malformed XML is returned with its problems: the
    # pipeline's syntax check reports them, once.
    tree, problems = xmlsafe.parse(chosen.data, stage=FX_STAGE)
    cii = tree is not None and format_of_root(tree.getroot()) is Format.CII
    out.invoice = EmbeddedXml(chosen.name, chosen.data, tree, tuple(problems), cii)
    xml_profile = None
    if tree is not None:
        root = tree.getroot()
        if not cii:
            out.findings.append(_not_cii(chosen.name, root, where))
        gid = guideline_id(root, ubl=False)  # a UBL here is refused (IRR_TYPE_F), its id unread
        out.source["xml"] = gid
        xml_profile = profile_from_guideline(gid)
        if gid and xml_profile is None:
            out.findings.append(pdf_finding(
                "FX_INCOHERENT", f"Guideline ID '{gid}' is not a Factur-X/ZUGFeRD profile (MINIMUM, BASIC WL, "
                "BASIC, EN 16931, EXTENDED, XRECHNUNG)", f"L'identifiant de profil « {gid} » n'est pas un profil "
                "Factur-X/ZUGFeRD connu", where + " GuidelineSpecifiedDocumentContextParameter/ID", value=gid))
    level = fx.get("ConformanceLevel") or None
    out.source["xmp"] = level
    xmp_profile = profile_from_xmp(level)
    out.findings.extend(_xmp_findings(fx, xmp_ok, level, xml_profile, xmp_profile, chosen.name, out.pdfa))
    out.profile = xml_profile or xmp_profile
    if out.profile in POOR_PROFILES:
        out.findings.append(poor_profile_finding(out.profile, limits.poor_profiles, where))
    return out


def _not_cii(name: str, root: etree._Element, where: str) -> Finding:
    """IRR_TYPE_F: a Factur-X carries a CII D16B invoice, nothing else (a
    ZUGFeRD 1.0 XML, a UBL...)."""
    tag = root.tag
    if etree.QName(root).namespace == ZF1_NS:
        en, fr = "ZUGFeRD 1.0 is not accepted", "ZUGFeRD 1.0 n'est pas accepté"
    else:
        en, fr = "a Factur-X carries a CII invoice", "un Factur-X porte une facture CII"
    return codes.finding(
        "IRR_TYPE_F", f"The embedded {name} is not a CII D16B invoice ({tag}); {en}: send a Factur-X / ZUGFeRD "
        "2.x", f"Le {name} incorporé n'est pas une facture CII D16B ({tag}) ; {fr} : déposez un Factur-X / "
        "ZUGFeRD 2.x", location=Location(xpath=where), value=tag, stage=FX_STAGE)


def _xmp_findings(fx: dict, xmp_ok: bool, level: str | None, xml_profile: str | None,
                  xmp_profile: str | None, name: str, pdfa: dict) -> list[Finding]:
    md = "PDF /Root/Metadata"
    warn = Severity.WARNING
    out: list[Finding] = []
    if not fx:
        out.append(pdf_finding(
            "FX_INCOHERENT", "The XMP metadata carry no Factur-X/ZUGFeRD properties (fx:ConformanceLevel, "
            "fx:DocumentFileName)" + ("" if xmp_ok else "; the XMP is missing or unreadable"),
            "Les métadonnées XMP ne portent pas les propriétés Factur-X (fx:ConformanceLevel, "
            "fx:DocumentFileName)", md, severity=warn))
    else:
        if not level:
            out.append(pdf_finding("FX_INCOHERENT", "The XMP metadata give no fx:ConformanceLevel",
                                   "Les métadonnées XMP ne donnent pas fx:ConformanceLevel", md, severity=warn))
        elif xml_profile and xmp_profile != xml_profile:
            out.append(pdf_finding(
                "FX_INCOHERENT", f"Profile mismatch: the XML says {xml_profile}, the XMP metadata say '{level}'",
                f"Profils incohérents : le XML indique {xml_profile}, les métadonnées XMP « {level} »",
                md, value=f"xml={xml_profile}; xmp={level}"))
        declared = fx.get("DocumentFileName")
        if declared and declared.lower() != name.lower():
            out.append(pdf_finding(
                "FX_INCOHERENT", f"The XMP metadata name the invoice '{declared}' but the embedded file is '{name}'",
                f"Les métadonnées XMP nomment la facture « {declared} » mais le fichier incorporé est « {name} »",
                md, value=declared, severity=warn))
    if not pdfa:
        out.append(pdf_finding(
            "FX_INCOHERENT", "No PDF/A marker (pdfaid:part) in the XMP metadata: a Factur-X must be PDF/A-3",
            "Pas de marqueur PDF/A (pdfaid:part) dans les métadonnées XMP : un Factur-X doit être en PDF/A-3",
            md, severity=warn))
    elif pdfa.get("part") != "3":
        out.append(pdf_finding(
            "FX_INCOHERENT", f"Marked PDF/A-{pdfa.get('part', '?')}: a Factur-X must be PDF/A-3",
            f"Marqué PDF/A-{pdfa.get('part', '?')} : un Factur-X doit être en PDF/A-3", md,
            value=pdfa.get("part"), severity=warn))
    return out


_RICHER_EN = "a Factur-X in profile BASIC, EN 16931 or EXTENDED, or a UBL/CII invoice"
_RICHER_FR = "un Factur-X de profil BASIC, EN 16931 ou EXTENDED, ou une facture UBL/CII"


def poor_profile_finding(profile: str, policy: str, where: str, *, in_pdf: bool = True) -> Finding:
    """REJ_CONT_B2G for a profile without lines (MINIMUM, BASIC WL): an error,
    or with `[pdf] poor_profiles = "pdf-only"` a warning for a Factur-X (its PDF
    is then the invoice of record). A CII file in such a profile has no PDF to
    fall back on: always an error."""
    if not in_pdf:
        return codes.finding(
            "REJ_CONT_B2G", f"The guideline (BT-24) names Factur-X profile {profile}, which carries no invoice "
            f"lines and is not accepted as an invoice: send {_RICHER_EN}", f"L'identifiant de profil (BT-24) "
            f"désigne le profil Factur-X {profile}, qui ne porte pas de lignes de facture et n'est pas accepté : "
            f"déposez {_RICHER_FR}", location=Location(xpath=where), value=profile, stage="guideline")
    if policy == "pdf-only":
        return pdf_finding(
            "REJ_CONT_B2G", f"Factur-X profile {profile} has no invoice lines: the PDF is the invoice of record "
            f"and the XML gives header data only (mixed flow); for structured lines, send {_RICHER_EN}",
            f"Le profil Factur-X {profile} n'a pas de lignes : le PDF fait foi et le XML ne donne que l'en-tête "
            f"(flux mixte) ; pour des lignes structurées, déposez {_RICHER_FR}",
            where, value=profile, severity=Severity.WARNING)
    return pdf_finding(
        "REJ_CONT_B2G", f"Factur-X profile {profile} carries no invoice lines and is not accepted as an invoice: "
        f"send {_RICHER_EN}; the PDF alone is not accepted",
        f"Le profil Factur-X {profile} ne porte pas de lignes de facture et n'est pas accepté : déposez "
        f"{_RICHER_FR} ; le PDF seul n'est pas accepté", where, value=profile)

"""What a deposited PDF is, and what is wrong with it.

`inspect_pdf` reports facts for the pipeline: the format (Factur-X, signed
PDF, plain PDF), the invoice XML a Factur-X carries (taken from the signed
revision when the PDF is signed, so an appended update cannot swap it; parsed
once, here, and refused as IRR_TYPE_F unless it is a CII D16B invoice), its
profile according to the XML and to the XMP metadata, the PDF/A markers, the
signatures and the other embedded files. It never raises: a PDF that cannot be
read is an IRR_PDF finding, whatever pypdf or pyHanko throw.

Hostile PDFs are expected: encryption (IRR_PDF_CHIFFRE) and active content
(JavaScript, Launch actions: IRR_PDF_ACTIF) are refused, and every walk over
the object graph is bounded.
"""
from __future__ import annotations

import io
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

from lxml import etree
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

from gateway.core import codes
from gateway.core import xmlsafe
from gateway.pipeline.attachments import Attachment, per_settings
from gateway.core.config import MB, Settings
from gateway.pipeline.detect import format_of_root
from gateway.core.records import Finding, Format, Location, Severity
from gateway.pipeline.signatures import SignatureReport, validate_signatures

STAGE = "pdf"
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

POOR_PROFILES = ("MINIMUM", "BASIC WL")  # no invoice lines

# Guideline IDs (BT-24) of Factur-X 1.0, ZUGFeRD 2.x and 1.0, matched whole and
# case-insensitively. ZUGFeRD 1 COMFORT is the ancestor of EN 16931.
_FX = r"(?:urn:)?(?:factur-x\.eu|zugferd\.de):\dp\d"
_EN = r"urn:cen\.eu:en16931:2017"
_SEP = r"[#:](?:compliant|conformant)[#:]"
_GUIDELINES = [
    (rf"{_FX}:minimum", "MINIMUM"),
    (rf"{_FX}:basicwl", "BASIC WL"),
    (rf"{_EN}{_SEP}{_FX}:basic", "BASIC"),
    (rf"{_EN}{_SEP}{_FX}:extended", "EXTENDED"),
    (rf"{_EN}{_SEP}urn\.cpro\.gouv\.fr:1p0:extended-ctc-fr", "EXTENDED"),
    (rf"{_EN}{_SEP}urn:xoev-de:kosit:standard:xrechnung_[\d.]+"
     rf"(?:{_SEP}urn:xoev-de:kosit:extension:xrechnung_[\d.]+)?", "XRECHNUNG"),
    (rf"{_EN}(?:{_SEP}{_FX}:en16931)?", "EN 16931"),
    (r"urn:ferd:CrossIndustryDocument:invoice:1p0:basic", "BASIC"),
    (r"urn:ferd:CrossIndustryDocument:invoice:1p0:comfort", "EN 16931"),
    (r"urn:ferd:CrossIndustryDocument:invoice:1p0:extended", "EXTENDED"),
]
_GUIDELINE_RES = [(re.compile(p, re.IGNORECASE), name) for p, name in _GUIDELINES]
_XMP_LEVELS = {
    "MINIMUM": "MINIMUM", "BASICWL": "BASIC WL", "BASIC": "BASIC", "EN16931": "EN 16931",
    "COMFORT": "EN 16931", "EXTENDED": "EXTENDED", "XRECHNUNG": "XRECHNUNG",
}


@dataclass(frozen=True)
class EmbeddedXml:
    """The invoice XML a Factur-X carries, parsed once, here."""

    name: str
    data: bytes
    tree: etree._ElementTree | None = None  # the parsed document; None when it is not well-formed ...
    problems: tuple[Finding, ...] = ()  # ... and why (IRR_SYNTAX), for the pipeline's syntax check
    cii: bool = False  # a CII D16B invoice; anything else is refused (IRR_TYPE_F in the findings)


NO_PROFILE_SOURCE = {"xml": None, "xmp": None}  # copied, never shared: callers may keep it


@dataclass(frozen=True)
class PdfInspection:
    format: Format
    findings: tuple[Finding, ...]
    invoice_xml: EmbeddedXml | None
    profile: str | None
    profile_source: dict
    pdfa: dict
    signatures: tuple[SignatureReport, ...]
    attachments: tuple[Attachment, ...]


@dataclass(frozen=True)
class PdfLimits:
    """`[pdf]` keys: max_objects, max_attachments, max_embedded_mb, max_xmp_kb, poor_profiles."""

    max_objects: int = 100_000  # objects visited by the active-content scan
    max_attachments: int = 200
    max_embedded_bytes: int = 120 * MB  # all embedded files together, decoded
    max_xmp_bytes: int = 4 * MB
    poor_profiles: str = "reject"  # MINIMUM / BASIC WL: "reject" or "pdf-only"

    @classmethod
    def from_settings(cls, settings: Settings) -> "PdfLimits":
        raw = settings.section("pdf")
        policy = str(raw.get("poor_profiles", "reject")).strip().lower()
        return cls(
            max_objects=int(raw.get("max_objects", 100_000)),
            max_attachments=int(raw.get("max_attachments", 200)),
            max_embedded_bytes=int(float(raw.get("max_embedded_mb", 120)) * MB),
            max_xmp_bytes=int(float(raw.get("max_xmp_kb", 4096)) * 1024),
            poor_profiles=policy if policy in ("reject", "pdf-only") else "reject",
        )


pdf_limits = per_settings(PdfLimits.from_settings)


def _finding(code: str, en: str, fr: str, where: str | None = None, *, value: str | None = None,
             severity: Severity = Severity.ERROR) -> Finding:
    return codes.finding(code, en, fr, location=Location(xpath=where) if where else None,
                         value=value, severity=severity, stage=STAGE)


def pdf_alone_finding() -> Finding:
    """IRR_PDF_SEUL: a PDF with no invoice data, and the three ways to send it
    with its data (a PDF is paired with an XML only inside one lot)."""
    return _finding(
        "IRR_PDF_SEUL",
        "This PDF carries no invoice data and is not accepted alone. Send instead: a Factur-X (PDF/A-3 "
        "embedding factur-x.xml, profile BASIC, EN 16931 or EXTENDED); or a UBL or CII invoice that embeds this "
        "PDF as an attachment; or, in one ZIP or tar.gz lot, this PDF beside an XML invoice with the same base "
        "name (INV-1.pdf with INV-1.xml)",
        "Ce PDF ne contient pas de données de facture et n'est pas accepté seul. Déposez plutôt : un "
        "Factur-X (PDF/A-3 avec factur-x.xml, profil BASIC, EN 16931 ou EXTENDED) ; ou une facture UBL ou CII "
        "qui joint ce PDF ; ou, dans un même lot ZIP ou tar.gz, ce PDF à côté d'une facture XML de même nom "
        "(FAC-1.pdf et FAC-1.xml)",
    )


# --- pypdf's repair warnings, per thread ------------------------------------

class _Repairs(logging.Handler):
    """pypdf logs what it had to repair (strict=False): keep those messages
    for the file being read in this thread, so they become a finding."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        sink = getattr(self.local, "sink", None)
        if sink is not None and len(sink) < 20:
            sink.append(record.getMessage())


_REPAIRS = _Repairs()
_pypdf_log = logging.getLogger("pypdf")
_pypdf_log.addHandler(_REPAIRS)
_pypdf_log.propagate = False  # reported as findings, not printed


# --- reading one revision -----------------------------------------------------

@dataclass
class _Embedded:
    name: str
    data: bytes
    mime: str | None


@dataclass
class _Revision:
    files: list[_Embedded] = field(default_factory=list)
    xmp: bytes | None = None
    findings: list[Finding] = field(default_factory=list)


EF = "PDF /Names/EmbeddedFiles"


def _name(obj: Any) -> str | None:
    return str(obj)[1:] if obj is not None and str(obj).startswith("/") else (str(obj) if obj else None)


def _read_revision(reader: PdfReader, limits: PdfLimits) -> _Revision:
    rev = _Revision()
    total = 0
    try:
        for i, ef in enumerate(reader.attachment_list):
            if i >= limits.max_attachments:
                rev.findings.append(_finding(
                    "IRR_PDF", f"More than {limits.max_attachments} embedded files; the rest were not read",
                    f"Plus de {limits.max_attachments} fichiers incorporés ; les suivants n'ont pas été lus", EF))
                break
            name = str(ef.name)
            try:
                content = ef.content
            except (Exception, RecursionError) as exc:
                rev.findings.append(_finding(
                    "IRR_PDF", f"Embedded file '{name}' cannot be read: {exc}",
                    f"Fichier incorporé « {name} » illisible : {exc}", f"{EF} ({name})", value=name))
                continue
            total += len(content)
            if total > limits.max_embedded_bytes:
                rev.findings.append(_finding(
                    "IRR_TAILLE_F", f"Embedded files exceed {limits.max_embedded_bytes} bytes once decoded",
                    f"Les fichiers incorporés dépassent {limits.max_embedded_bytes} octets une fois décodés",
                    EF, value=str(total)))
                break
            rev.files.append(_Embedded(name, content, _name(ef.subtype)))
    except (Exception, RecursionError) as exc:
        rev.findings.append(_finding(
            "IRR_PDF", f"The embedded-files tree is broken: {exc}",
            f"L'arbre des fichiers incorporés est cassé : {exc}", EF))
    try:
        md = reader.root_object.get("/Metadata")
        md = md.get_object() if md is not None else None
        if isinstance(md, StreamObject):
            xmp = md.get_data()
            if len(xmp) <= limits.max_xmp_bytes:
                rev.xmp = xmp
            else:
                rev.findings.append(_finding(
                    "IRR_PDF", f"XMP metadata larger than {limits.max_xmp_bytes} bytes: not read",
                    f"Métadonnées XMP de plus de {limits.max_xmp_bytes} octets : non lues", "PDF /Root/Metadata",
                    severity=Severity.WARNING))
    except (Exception, RecursionError) as exc:
        rev.findings.append(_finding(
            "IRR_PDF", f"XMP metadata cannot be read: {exc}", f"Métadonnées XMP illisibles : {exc}",
            "PDF /Root/Metadata", severity=Severity.WARNING))
    return rev


# --- active content and signature values: one bounded walk ------------------

@dataclass
class _Scan:
    active: list[tuple[str, str]] = field(default_factory=list)  # (what, where)
    signature_values: int = 0
    truncated: bool = False


def _children(obj: Any, path: str) -> Iterator[tuple[Any, str]]:
    short = path if len(path) < 160 else "…" + path[-150:]
    if isinstance(obj, DictionaryObject):
        for key in list(obj.keys()):
            if key != "/Parent":  # back-pointer: its target is reached from above
                yield obj.raw_get(key), f"{short}{key}"
    elif isinstance(obj, ArrayObject):
        for i, item in enumerate(obj):
            yield item, f"{short}[{i}]"


def _scan(reader: PdfReader, limits: PdfLimits) -> _Scan:
    """Walk every object reachable from the catalog (names tree, OpenAction,
    page and field /AA, annotations' /A...), each indirect object once, at
    most max_objects objects; no recursion, so no depth limit to hit."""
    out = _Scan()
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[Any, str]] = [(reader.trailer.raw_get("/Root"), "/Root")]
    visited = 0
    while stack:
        obj, path = stack.pop()
        if isinstance(obj, IndirectObject):
            ref = (obj.idnum, obj.generation)
            if ref in seen:
                continue
            seen.add(ref)
            obj = obj.get_object()
        if not isinstance(obj, (DictionaryObject, ArrayObject)):
            continue
        visited += 1
        if visited > limits.max_objects:
            out.truncated = True
            break
        if isinstance(obj, DictionaryObject):
            kind = obj.get("/S")
            if kind == "/JavaScript" or "/JS" in obj:
                out.active.append(("JavaScript action", path))
            elif kind == "/Launch":
                out.active.append(("Launch action", path))
            if "/JavaScript" in obj:
                out.active.append(("document JavaScript (names tree)", f"{path}/JavaScript"))
            if "/ByteRange" in obj and "/Contents" in obj:
                out.signature_values += 1
        stack.extend(_children(obj, path))
    return out


def _scan_findings(scan: _Scan, limits: PdfLimits) -> list[Finding]:
    out: list[Finding] = []
    for what, where in scan.active[:5]:
        out.append(_finding(
            "IRR_PDF_ACTIF", f"The PDF contains active content ({what}); invoices must not run code",
            f"Le PDF contient du contenu actif ({what}) ; une facture ne doit pas exécuter de code",
            f"PDF {where}", value=what))
    if scan.truncated:
        out.append(_finding(
            "IRR_PDF_ACTIF", f"The active-content scan stopped after {limits.max_objects} objects; the rest was "
            "not checked", f"Recherche de contenu actif arrêtée après {limits.max_objects} objets ; le reste n'a "
            "pas été contrôlé", "PDF", severity=Severity.WARNING))
    return out


# --- Factur-X -----------------------------------------------------------------

def profile_from_guideline(gid: str | None) -> str | None:
    gid = (gid or "").strip()
    for rx, name in _GUIDELINE_RES:
        if rx.fullmatch(gid):
            return name
    return None


def profile_from_xmp(level: str | None) -> str | None:
    key = re.sub(r"[\s_-]+", "", (level or "").upper())
    return _XMP_LEVELS.get(key)


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


def _guideline_id(root: etree._Element) -> str | None:
    ids = root.xpath(
        "/*/*[local-name()='ExchangedDocumentContext' or local-name()='SpecifiedExchangedDocumentContext']"
        "/*[local-name()='GuidelineSpecifiedDocumentContextParameter']/*[local-name()='ID']/text()"
    )
    return str(ids[0]).strip() if ids else None


@dataclass
class _FacturX:
    invoice: EmbeddedXml | None = None
    others: list[_Embedded] = field(default_factory=list)
    profile: str | None = None
    source: dict = field(default_factory=lambda: dict(NO_PROFILE_SOURCE))
    pdfa: dict = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def _choose_invoice(files: list[_Embedded], xmp_name: str | None, out: _FacturX) -> _Embedded | None:
    candidates = [f for f in files if f.name.lower() in INVOICE_XML_NAMES]
    if len(candidates) > 1:
        names = ", ".join(f.name for f in candidates)
        out.findings.append(_finding(
            "FX_INCOHERENT", f"The PDF embeds several invoice XMLs ({names}): it must carry exactly one",
            f"Le PDF contient plusieurs XML de facture ({names}) : il en faut exactement un", EF, value=names))
        named = [f for f in candidates if xmp_name and f.name.lower() == xmp_name.lower()]
        candidates = named or sorted(candidates, key=lambda f: INVOICE_XML_NAMES.index(f.name.lower()))
    return candidates[0] if candidates else None


def _facturx(rev: _Revision, limits: PdfLimits) -> _FacturX:
    out = _FacturX()
    fx, aid, xmp_ok = _xmp_props(rev.xmp)
    out.pdfa = {k: aid[k] for k in ("part", "conformance") if aid.get(k)}
    xmp_name = fx.get("DocumentFileName") or None
    chosen = _choose_invoice(rev.files, xmp_name, out)
    out.others = [f for f in rev.files if f is not chosen]
    if chosen is None:
        if xmp_name:
            out.findings.append(_finding(
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
        gid = _guideline_id(root)
        out.source["xml"] = gid
        xml_profile = profile_from_guideline(gid)
        if gid and xml_profile is None:
            out.findings.append(_finding(
                "FX_INCOHERENT", f"Guideline ID '{gid}' is not a Factur-X/ZUGFeRD profile (MINIMUM, BASIC WL, "
                "BASIC, EN 16931, EXTENDED, XRECHNUNG)", f"L'identifiant de profil « {gid} » n'est pas un profil "
                "Factur-X/ZUGFeRD connu", where + " GuidelineSpecifiedDocumentContextParameter/ID", value=gid))
    level = fx.get("ConformanceLevel") or None
    out.source["xmp"] = level
    xmp_profile = profile_from_xmp(level)
    out.findings.extend(_xmp_findings(fx, xmp_ok, level, xml_profile, xmp_profile, chosen.name, out.pdfa))
    out.profile = xml_profile or xmp_profile
    if out.profile in POOR_PROFILES:
        out.findings.append(_poor_profile(out.profile, limits.poor_profiles, where))
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
        out.append(_finding(
            "FX_INCOHERENT", "The XMP metadata carry no Factur-X/ZUGFeRD properties (fx:ConformanceLevel, "
            "fx:DocumentFileName)" + ("" if xmp_ok else "; the XMP is missing or unreadable"),
            "Les métadonnées XMP ne portent pas les propriétés Factur-X (fx:ConformanceLevel, "
            "fx:DocumentFileName)", md, severity=warn))
    else:
        if not level:
            out.append(_finding("FX_INCOHERENT", "The XMP metadata give no fx:ConformanceLevel",
                                "Les métadonnées XMP ne donnent pas fx:ConformanceLevel", md, severity=warn))
        elif xml_profile and xmp_profile != xml_profile:
            out.append(_finding(
                "FX_INCOHERENT", f"Profile mismatch: the XML says {xml_profile}, the XMP metadata say '{level}'",
                f"Profils incohérents : le XML indique {xml_profile}, les métadonnées XMP « {level} »",
                md, value=f"xml={xml_profile}; xmp={level}"))
        declared = fx.get("DocumentFileName")
        if declared and declared.lower() != name.lower():
            out.append(_finding(
                "FX_INCOHERENT", f"The XMP metadata name the invoice '{declared}' but the embedded file is '{name}'",
                f"Les métadonnées XMP nomment la facture « {declared} » mais le fichier incorporé est « {name} »",
                md, value=declared, severity=warn))
    if not pdfa:
        out.append(_finding(
            "FX_INCOHERENT", "No PDF/A marker (pdfaid:part) in the XMP metadata: a Factur-X must be PDF/A-3",
            "Pas de marqueur PDF/A (pdfaid:part) dans les métadonnées XMP : un Factur-X doit être en PDF/A-3",
            md, severity=warn))
    elif pdfa.get("part") != "3":
        out.append(_finding(
            "FX_INCOHERENT", f"Marked PDF/A-{pdfa.get('part', '?')}: a Factur-X must be PDF/A-3",
            f"Marqué PDF/A-{pdfa.get('part', '?')} : un Factur-X doit être en PDF/A-3", md,
            value=pdfa.get("part"), severity=warn))
    return out


_RICHER_EN = "a Factur-X in profile BASIC, EN 16931 or EXTENDED, or a UBL/CII invoice"
_RICHER_FR = "un Factur-X de profil BASIC, EN 16931 ou EXTENDED, ou une facture UBL/CII"


def _poor_profile(profile: str, policy: str, where: str) -> Finding:
    if policy == "pdf-only":
        return _finding(
            "REJ_CONT_B2G", f"Factur-X profile {profile} has no invoice lines: the PDF is the invoice of record "
            f"and the XML gives header data only (mixed flow); for structured lines, send {_RICHER_EN}",
            f"Le profil Factur-X {profile} n'a pas de lignes : le PDF fait foi et le XML ne donne que l'en-tête "
            f"(flux mixte) ; pour des lignes structurées, déposez {_RICHER_FR}",
            where, value=profile, severity=Severity.WARNING)
    return _finding(
        "REJ_CONT_B2G", f"Factur-X profile {profile} carries no invoice lines and is not accepted as an invoice: "
        f"send {_RICHER_EN}; the PDF alone is not accepted",
        f"Le profil Factur-X {profile} ne porte pas de lignes de facture et n'est pas accepté : déposez "
        f"{_RICHER_FR} ; le PDF seul n'est pas accepté", where, value=profile)


# --- the inspection -------------------------------------------------------------

def _open(data: bytes) -> PdfReader:
    """A reader whose page tree was walked (cyclic trees fail here, not
    later); an encrypted PDF is returned before, as it cannot be walked."""
    reader = PdfReader(io.BytesIO(data), strict=False)
    if not reader.is_encrypted:
        len(reader.pages)
    return reader


def _unreadable(exc: BaseException) -> Finding:
    msg = f"{type(exc).__name__}: {exc}"[:500]
    return _finding("IRR_PDF", f"The PDF cannot be read: {msg}", f"PDF illisible : {msg}", "PDF", value=msg)


def _files_differ(a: _Revision, b: _Revision) -> list[str]:
    before = {f.name: f.data for f in a.files}
    after = {f.name: f.data for f in b.files}
    return sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))


def inspect_pdf(data: bytes, settings: Settings) -> PdfInspection:
    """Inspect one PDF. Never raises; every problem is a finding."""
    _REPAIRS.local.sink = repairs = []
    try:
        return _inspect(data, settings, repairs)
    except (Exception, RecursionError) as exc:
        return _refused(_unreadable(exc))
    finally:
        _REPAIRS.local.sink = None


def _refused(finding: Finding) -> PdfInspection:
    """A PDF that could not be looked into: one finding says why."""
    return PdfInspection(Format.PDF, (finding,), None, None, dict(NO_PROFILE_SOURCE), {}, (), ())


def _inspect(data: bytes, settings: Settings, repairs: list[str]) -> PdfInspection:
    limits = pdf_limits(settings)
    reader = _open(data)  # unreadable: inspect_pdf says so
    if reader.is_encrypted:
        return _refused(_finding(
            "IRR_PDF_CHIFFRE", "The PDF is encrypted: send it without password or encryption",
            "Le PDF est chiffré : déposez-le sans mot de passe ni chiffrement", "PDF /Encrypt"))
    findings: list[Finding] = []
    scan = _scan(reader, limits)
    findings.extend(_scan_findings(scan, limits))
    final = _read_revision(reader, limits)
    findings.extend(final.findings)

    reports: list[SignatureReport] = []
    if scan.signature_values or b"/ByteRange" in data:
        reports, sig_findings = validate_signatures(data, settings)
        findings.extend(sig_findings)
        if scan.signature_values > len(reports):
            findings.append(_finding(
                "SIG_ILLISIBLE", f"{scan.signature_values} signature values in the PDF but {len(reports)} signed "
                "fields could be read", f"{scan.signature_values} valeurs de signature dans le PDF mais "
                f"{len(reports)} champs signés lisibles", "PDF /AcroForm", value=str(scan.signature_values)))
    signed = _signed_revision(data, reports, final, limits, findings)

    fx = _facturx(signed, limits)
    findings.extend(fx.findings)
    if repairs:
        findings.append(_finding(
            "IRR_PDF", "The PDF is damaged and had to be repaired to be read: " + "; ".join(repairs[:5]),
            "Le PDF est abîmé et a dû être réparé pour être lu : " + "; ".join(repairs[:5]), "PDF",
            severity=Severity.WARNING))
    really_signed = any(r.kind == "signature" for r in reports)
    fmt = Format.FACTURX if fx.invoice else Format.PDF_SIGNED if really_signed else Format.PDF
    atts = tuple(Attachment(f.name, f.data, f.mime, "pdf", f"{EF} ({f.name})") for f in fx.others)
    return PdfInspection(fmt, tuple(findings), fx.invoice, fx.profile, fx.source, fx.pdfa, tuple(reports), atts)


def _signed_revision(data: bytes, reports: list[SignatureReport], final: _Revision, limits: PdfLimits,
                     findings: list[Finding]) -> _Revision:
    """The revision the last signature covers, read on its own (the file cut
    at the end of its ByteRange), so that what was appended after signing
    cannot change the invoice XML or the attachments."""
    ends = [r.signed_end for r in reports if r.signed_end]
    if not ends:
        return final
    end = max(ends)
    if not data[end:].strip(b"\r\n\t \x00"):
        return final  # nothing appended after the last signature
    try:
        signed = _read_revision(_open(data[:end]), limits)
    except (Exception, RecursionError) as exc:
        findings.append(_finding(
            "SIG_ILLISIBLE", f"The signed revision cannot be read on its own: {exc}",
            f"La révision signée est illisible seule : {exc}", "PDF", value=str(end)))
        return final
    changed = _files_differ(signed, final)
    if changed:
        names = ", ".join(changed)
        findings.append(_finding(
            "SIG_MODIFIEE", f"Embedded files were added, removed or changed after signing ({names}); the signed "
            "version is the one used", f"Des fichiers incorporés ont été ajoutés, retirés ou modifiés après "
            f"signature ({names}) ; seule la version signée est prise en compte", EF, value=names))
    return signed

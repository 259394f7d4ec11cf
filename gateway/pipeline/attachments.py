"""Attachments (pièces jointes) of an invoice: where they come from and the
platform's rules for them (chorus-domain.md section 4).

An attachment is embedded in a Factur-X PDF (/Names/EmbeddedFiles), carried
base64 in the invoice XML (UBL `cac:AdditionalDocumentReference`, CII
`ram:AdditionalReferencedDocument`), or sent beside the invoice in a lot
(gateway/mixed.py). The rules are the same whatever carries it.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

from lxml import etree

from gateway.core import codes
from gateway.core.config import MB, Settings
from gateway.core.files import extension
from gateway.core.records import Finding, Location

STAGE = "attachments"

# Extensions the platform accepts for an attachment (case-insensitive).
ALLOWED_EXTENSIONS = frozenset(
    "BMP GIF FAX ODT PPT TIFF XLS BZ2 GZ JPEG P7S RTF TXT XML CSV GZIP JPG PDF SVG "
    "XHTML XLSX DOC HTM ODP PNG TGZ XLC ZIP DOCX HTML ODS PPS TIF XLM PPTX".split()
)

# Values of UBL cbc:DocumentTypeCode / cbc:DocumentType / cbc:DocumentDescription
# or CII ram:TypeCode / ram:Name (compared trimmed, case-folded) by which an
# XML says that an attached PDF is the invoice itself. EN 16931 has no code
# for it (CII 916 is "related document"), so these are words, configurable.
INVOICE_LABELS = frozenset({"facture", "invoice", "avoir", "credit note", "facture originale", "original invoice"})

# Media types of the accepted extensions, for documents that declare none.
MIME_TYPES = {
    "BMP": "image/bmp", "GIF": "image/gif", "FAX": "image/g3fax", "TIFF": "image/tiff", "TIF": "image/tiff",
    "JPEG": "image/jpeg", "JPG": "image/jpeg", "PNG": "image/png", "SVG": "image/svg+xml",
    "PDF": "application/pdf", "XML": "application/xml", "CSV": "text/csv", "TXT": "text/plain",
    "RTF": "application/rtf", "HTM": "text/html", "HTML": "text/html", "XHTML": "application/xhtml+xml",
    "P7S": "application/pkcs7-signature", "ZIP": "application/zip", "GZ": "application/gzip",
    "GZIP": "application/gzip", "TGZ": "application/gzip", "BZ2": "application/x-bzip2",
    "DOC": "application/msword", "XLS": "application/vnd.ms-excel", "XLC": "application/vnd.ms-excel",
    "XLM": "application/vnd.ms-excel", "PPT": "application/vnd.ms-powerpoint",
    "PPS": "application/vnd.ms-powerpoint",
    "DOCX": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "PPTX": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "ODT": "application/vnd.oasis.opendocument.text", "ODS": "application/vnd.oasis.opendocument.spreadsheet",
    "ODP": "application/vnd.oasis.opendocument.presentation",
}

UBL_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
UBL_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CII_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
_NS = {"cac": UBL_CAC, "cbc": UBL_CBC, "ram": CII_RAM}

# A name that could escape a folder or hide characters is refused like a too long one.
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
_SPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes
    mime: str | None
    source: str  # "pdf" (embedded file), "ubl" or "cii" (base64 in the XML), "lot" (member of a lot)
    where: str | None = None  # XPath or PDF path of the attachment in its carrier
    line: int | None = None  # line of the XML element carrying it
    labels: tuple[str, ...] = ()  # what the XML says the document is (type code, description, name)


@dataclass(frozen=True)
class AttachmentLimits:
    max_bytes: int = 10 * MB  # each attachment must be strictly smaller
    max_name_chars: int = 50
    max_total_bytes: int = 120 * MB  # invoice + attachments
    extensions: frozenset[str] = ALLOWED_EXTENSIONS
    # Which PDF carried in a UBL/CII is the invoice itself (document kind 01):
    # "first" = one declared so (labels below), else the first PDF; "declared" =
    # only a declared one; "none" = every attachment is a supporting document (02).
    invoice_pdf: str = "first"
    invoice_labels: frozenset[str] = INVOICE_LABELS

    @classmethod
    def from_settings(cls, settings: Settings | None) -> "AttachmentLimits":
        """`[attachments]` keys: max_mb, max_name_chars, max_total_mb, extensions,
        invoice_pdf, invoice_labels."""
        raw: dict[str, Any] = settings.section("attachments") if settings else {}
        exts = raw.get("extensions")
        labels = raw.get("invoice_labels")
        policy = str(raw.get("invoice_pdf", "first")).strip().lower()
        return cls(
            max_bytes=int(float(raw.get("max_mb", 10)) * MB),
            max_name_chars=int(raw.get("max_name_chars", 50)),
            max_total_bytes=int(float(raw.get("max_total_mb", 120)) * MB),
            extensions=frozenset(e.strip(".").upper() for e in exts) if exts else ALLOWED_EXTENSIONS,
            invoice_pdf=policy if policy in ("first", "declared", "none") else "first",
            invoice_labels=frozenset(str(x).strip().casefold() for x in labels) if labels else INVOICE_LABELS,
        )


T = TypeVar("T")


def per_settings(build: Callable[[Settings], T]) -> Callable[[Settings], T]:
    """`build(settings)` once per settings object: every piece asks for its
    limits, and a home's settings do not change while it runs. Keyed by
    identity: settings compare equal whatever their raw sections say."""
    cache: dict[int, tuple[Settings, T]] = {}

    def get(settings: Settings) -> T:
        hit = cache.get(id(settings))
        if hit is not None and hit[0] is settings:
            return hit[1]
        value = build(settings)
        if len(cache) >= 32:  # a process has one or two settings; tests make many
            cache.clear()
        cache[id(settings)] = (settings, value)
        return value

    return get


attachment_limits = per_settings(AttachmentLimits.from_settings)


def _loc(att: Attachment) -> Location:
    return Location(xpath=att.where, line=att.line, member=att.name or None)


def mime_of(att: Attachment) -> str:
    """The declared media type, else the one of its extension."""
    declared = (att.mime or "").strip()
    if declared:
        return declared
    if is_pdf(att):
        return "application/pdf"
    return MIME_TYPES.get(extension(att.name), "application/octet-stream")


def check_one(att: Attachment, limits: AttachmentLimits) -> list[Finding]:
    out: list[Finding] = []
    loc = _loc(att)
    if not att.data:
        out.append(codes.finding(
            "IRR_VID_PJ", f"Attachment '{att.name}' is empty", f"La pièce jointe « {att.name} » est vide",
            location=loc, value="0", stage=STAGE))
    elif len(att.data) >= limits.max_bytes:
        out.append(codes.finding(
            "IRR_TAILLE_PJ",
            f"Attachment '{att.name}' is {len(att.data)} bytes; each attachment must be under {limits.max_bytes}",
            f"La pièce jointe « {att.name} » fait {len(att.data)} octets ; chaque pièce doit faire moins de "
            f"{limits.max_bytes} octets",
            location=loc, value=str(len(att.data)), stage=STAGE))
    if not att.name.strip() or _BAD_NAME.search(att.name) or len(att.name) > limits.max_name_chars:
        out.append(codes.finding(
            "IRR_NOM_PJ",
            f"Attachment name '{att.name}' must be 1 to {limits.max_name_chars} characters including the "
            "extension, without path separators or control characters",
            f"Le nom de pièce jointe « {att.name} » doit faire de 1 à {limits.max_name_chars} caractères, "
            "extension comprise, sans séparateur de chemin ni caractère de contrôle",
            location=loc, value=att.name, stage=STAGE))
    ext = extension(att.name)
    if ext not in limits.extensions:
        allowed = ", ".join(sorted(limits.extensions))
        why_en = "has no extension" if not ext else f"has extension .{ext.lower()}, which is not accepted"
        why_fr = "n'a pas d'extension" if not ext else f"a l'extension .{ext.lower()}, non acceptée"
        out.append(codes.finding(
            "IRR_EXT_DOC", f"Attachment '{att.name}' {why_en}; accepted: {allowed}",
            f"La pièce jointe « {att.name} » {why_fr} ; acceptées : {allowed}",
            location=loc, value=ext or None, stage=STAGE))
    return out


def check_total(invoice_size: int, sizes: Iterable[int], limits: AttachmentLimits, *,
                member: str | None = None) -> list[Finding]:
    """IRR_TAILLE_F when the invoice file and the documents delivered beside
    it (lot members) exceed `max_total_bytes` together. What a file carries
    inside (a Factur-X's embedded files, an XML's base64) is bounded by the
    file's own size limit instead."""
    total = invoice_size + sum(sizes)
    if total <= limits.max_total_bytes:
        return []
    return [codes.finding(
        "IRR_TAILLE_F", f"The invoice and the documents delivered with it total {total} bytes; the limit is "
        f"{limits.max_total_bytes}", f"La facture et les documents qui l'accompagnent font {total} octets ; la "
        f"limite est {limits.max_total_bytes}", location=Location(member=member) if member else None,
        value=str(total), stage=STAGE)]


def _root(tree: Any) -> etree._Element:
    return tree.getroot() if hasattr(tree, "getroot") else tree


def _readable_path(el: etree._Element) -> str:
    """/Invoice/cac:AdditionalDocumentReference[2]/... : prefixed names and
    1-based positions among same-named siblings, for a sender to read."""
    prefixes = {v: k for k, v in _NS.items()}
    steps = []
    node = el
    while node is not None:
        q = etree.QName(node)
        name = f"{prefixes[q.namespace]}:{q.localname}" if q.namespace in prefixes else q.localname
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))


class TooBig(ValueError):
    """base64 that would decode to more than the limit (not decoded)."""

    def __init__(self, size: int):
        super().__init__(f"{size} bytes")
        self.size = size


def decode_base64(text: str | bytes, max_bytes: int) -> bytes:
    """base64 from an invoice's XML or a status file's JSON, whitespace
    dropped. Raises TooBig before decoding what would be too big, ValueError
    when it is not base64."""
    raw = _SPACE.sub(b"", text.encode("ascii", "replace") if isinstance(text, str) else text)
    # 3 bytes per 4 characters, less the padding (exact for well-formed base64)
    size = len(raw) // 4 * 3 - raw[-2:].count(b"=")
    if size > max_bytes:
        raise TooBig(size)
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc


def _decode(el: etree._Element, name: str, where: str, max_bytes: int) -> tuple[bytes | None, Finding | None]:
    try:
        return decode_base64(el.text or "", max_bytes), None
    except TooBig as big:
        return None, codes.finding(
            "IRR_TAILLE_PJ", f"Attachment '{name}' decodes to {big.size} bytes, more than {max_bytes}",
            f"La pièce jointe « {name} » fait {big.size} octets une fois décodée, plus que {max_bytes}",
            location=Location(xpath=where, line=el.sourceline, member=name or None),
            value=str(big.size), stage=STAGE)
    except ValueError as exc:
        return None, codes.finding(
            "IRR_SYNTAX", f"Attachment '{name}' is not valid base64 ({exc})",
            f"La pièce jointe « {name} » n'est pas du base64 valide ({exc})",
            location=Location(xpath=where, line=el.sourceline, member=name or None),
            rule="xs:base64Binary", stage=STAGE)


def extract_xml_attachments(
    tree: Any, *, max_bytes: int = 120 * MB
) -> tuple[list[Attachment], list[Finding]]:
    """Attachments carried base64 in a UBL or CII invoice, and findings for
    the ones that cannot be decoded. `max_bytes` bounds what is decoded."""
    root = _root(tree)
    found: list[tuple[etree._Element, str, str, tuple[str, ...]]] = []
    for el in root.iterfind(".//cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject", _NS):
        ref = el.getparent().getparent()
        labels = _texts(ref, "cbc:DocumentTypeCode", "cbc:DocumentType", "cbc:DocumentDescription")
        found.append((el, "ubl", el.get("filename") or (ref.findtext("cbc:ID", namespaces=_NS) or "").strip(),
                      labels))
    for el in root.iterfind(".//ram:AdditionalReferencedDocument/ram:AttachmentBinaryObject", _NS):
        ref = el.getparent()
        name = el.get("filename") or (ref.findtext("ram:IssuerAssignedID", namespaces=_NS) or "").strip()
        found.append((el, "cii", name, _texts(ref, "ram:TypeCode", "ram:Name")))
    atts: list[Attachment] = []
    problems: list[Finding] = []
    for el, source, name, labels in found:
        where = _readable_path(el)
        data, problem = _decode(el, name, where, max_bytes)
        if problem:
            problems.append(problem)
            continue
        atts.append(Attachment(name, data or b"", el.get("mimeCode"), source, where, el.sourceline, labels))
    return atts, problems


def _texts(ref: etree._Element, *paths: str) -> tuple[str, ...]:
    return tuple(t.strip() for p in paths for t in (e.text for e in ref.iterfind(p, _NS)) if t and t.strip())


def is_pdf(att: Attachment) -> bool:
    return att.data.lstrip()[:5] == b"%PDF-"


def invoice_pdf(atts: Iterable[Attachment], limits: AttachmentLimits) -> Attachment | None:
    """The PDF an XML carries as the invoice itself (document kind 01), by the
    `invoice_pdf` policy: a PDF whose labels say it is the invoice, else (with
    "first") the PDF `embedded_pdf` picks; None when there is none."""
    atts = list(atts)
    if limits.invoice_pdf == "none":
        return None
    declared = [a for a in atts if is_pdf(a) and any(x.casefold() in limits.invoice_labels for x in a.labels)]
    if declared:
        return declared[0]
    return embedded_pdf(atts) if limits.invoice_pdf == "first" else None


def embedded_pdf(atts: Iterable[Attachment]) -> Attachment | None:
    """The PDF an XML invoice carries (the invoice of record in a mixed flow):
    the first attachment that is really a PDF, preferring one declared as such."""
    pdfs = [a for a in atts if is_pdf(a)]
    declared = [a for a in pdfs if (a.mime or "").lower() == "application/pdf" or a.name.lower().endswith(".pdf")]
    return (declared or pdfs or [None])[0]

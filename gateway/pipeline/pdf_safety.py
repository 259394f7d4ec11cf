"""A deposited PDF's safety: what is refused before anything is read from it.

Hostile PDFs are expected: encryption (IRR_PDF_CHIFFRE) and active content
(JavaScript, Launch actions: IRR_PDF_ACTIF) are refused, a PDF that cannot be
read is IRR_PDF, and every walk over the object graph is bounded: the
active-content scan (`scan_pdf`) visits at most `[pdf] max_objects` objects,
and reading a revision's embedded files and XMP (`read_revision`) stops at
the `[pdf]` limits. What pypdf had to repair to read a file becomes a finding
too (`repairs_noted`).
"""
from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

from gateway.core import codes
from gateway.core.config import MB, Settings
from gateway.core.records import Finding, Location, Severity
from gateway.pipeline.attachments import per_settings

STAGE = "pdf"


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


def pdf_finding(code: str, en: str, fr: str, where: str | None = None, *, value: str | None = None,
                severity: Severity = Severity.ERROR) -> Finding:
    return codes.finding(code, en, fr, location=Location(xpath=where) if where else None,
                         value=value, severity=severity, stage=STAGE)


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


@contextmanager
def repairs_noted() -> Iterator[list[str]]:
    """What pypdf repairs while this thread reads inside the block, in the list given."""
    repairs: list[str] = []
    _REPAIRS.local.sink = repairs
    try:
        yield repairs
    finally:
        _REPAIRS.local.sink = None


def repaired_finding(repairs: list[str]) -> Finding:
    return pdf_finding(
        "IRR_PDF", "The PDF is damaged and had to be repaired to be read: " + "; ".join(repairs[:5]),
        "Le PDF est abîmé et a dû être réparé pour être lu : " + "; ".join(repairs[:5]), "PDF",
        severity=Severity.WARNING)


# --- opening ------------------------------------------------------------------

def open_pdf(data: bytes) -> PdfReader:
    """A reader whose page tree was walked (cyclic trees fail here, not
    later); an encrypted PDF is returned before, as it cannot be walked."""
    reader = PdfReader(io.BytesIO(data), strict=False)
    if not reader.is_encrypted:
        len(reader.pages)
    return reader


def unreadable(exc: BaseException) -> Finding:
    msg = f"{type(exc).__name__}: {exc}"[:500]
    return pdf_finding("IRR_PDF", f"The PDF cannot be read: {msg}", f"PDF illisible : {msg}", "PDF", value=msg)


def encrypted_finding() -> Finding:
    return pdf_finding(
        "IRR_PDF_CHIFFRE", "The PDF is encrypted: send it without password or encryption",
        "Le PDF est chiffré : déposez-le sans mot de passe ni chiffrement", "PDF /Encrypt")


# --- reading one revision -----------------------------------------------------

@dataclass
class Embedded:
    name: str
    data: bytes
    mime: str | None


@dataclass
class Revision:
    files: list[Embedded] = field(default_factory=list)
    xmp: bytes | None = None
    findings: list[Finding] = field(default_factory=list)


EF = "PDF /Names/EmbeddedFiles"


def _name(obj: Any) -> str | None:
    return str(obj)[1:] if obj is not None and str(obj).startswith("/") else (str(obj) if obj else None)


def read_revision(reader: PdfReader, limits: PdfLimits) -> Revision:
    rev = Revision()
    total = 0
    try:
        for i, ef in enumerate(reader.attachment_list):
            if i >= limits.max_attachments:
                rev.findings.append(pdf_finding(
                    "IRR_PDF", f"More than {limits.max_attachments} embedded files; the rest were not read",
                    f"Plus de {limits.max_attachments} fichiers incorporés ; les suivants n'ont pas été lus", EF))
                break
            name = str(ef.name)
            try:
                content = ef.content
            except (Exception, RecursionError) as exc:
                rev.findings.append(pdf_finding(
                    "IRR_PDF", f"Embedded file '{name}' cannot be read: {exc}",
                    f"Fichier incorporé « {name} » illisible : {exc}", f"{EF} ({name})", value=name))
                continue
            total += len(content)
            if total > limits.max_embedded_bytes:
                rev.findings.append(pdf_finding(
                    "IRR_TAILLE_F", f"Embedded files exceed {limits.max_embedded_bytes} bytes once decoded",
                    f"Les fichiers incorporés dépassent {limits.max_embedded_bytes} octets une fois décodés",
                    EF, value=str(total)))
                break
            rev.files.append(Embedded(name, content, _name(ef.subtype)))
    except (Exception, RecursionError) as exc:
        rev.findings.append(pdf_finding(
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
                rev.findings.append(pdf_finding(
                    "IRR_PDF", f"XMP metadata larger than {limits.max_xmp_bytes} bytes: not read",
                    f"Métadonnées XMP de plus de {limits.max_xmp_bytes} octets : non lues", "PDF /Root/Metadata",
                    severity=Severity.WARNING))
    except (Exception, RecursionError) as exc:
        rev.findings.append(pdf_finding(
            "IRR_PDF", f"XMP metadata cannot be read: {exc}", f"Métadonnées XMP illisibles : {exc}",
            "PDF /Root/Metadata", severity=Severity.WARNING))
    return rev


# --- active content and signature values: one bounded walk ------------------

@dataclass
class Scan:
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


def scan_pdf(reader: PdfReader, limits: PdfLimits) -> Scan:
    """Walk every object reachable from the catalog (names tree, OpenAction,
    page and field /AA, annotations' /A...), each indirect object once, at
    most max_objects objects; no recursion, so no depth limit to hit."""
    out = Scan()
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


def scan_findings(scan: Scan, limits: PdfLimits) -> list[Finding]:
    out: list[Finding] = []
    for what, where in scan.active[:5]:
        out.append(pdf_finding(
            "IRR_PDF_ACTIF", f"The PDF contains active content ({what}); invoices must not run code",
            f"Le PDF contient du contenu actif ({what}) ; une facture ne doit pas exécuter de code",
            f"PDF {where}", value=what))
    if scan.truncated:
        out.append(pdf_finding(
            "IRR_PDF_ACTIF", f"The active-content scan stopped after {limits.max_objects} objects; the rest was "
            "not checked", f"Recherche de contenu actif arrêtée après {limits.max_objects} objets ; le reste n'a "
            "pas été contrôlé", "PDF", severity=Severity.WARNING))
    return out


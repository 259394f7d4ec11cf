"""Mixed flows: a PDF with its data, and the documents delivered with each piece.

A PDF alone carries no invoice data and is refused (IRR_PDF_SEUL, saying what
to send instead). It is accepted with its data in three ways:

1. A Factur-X (gateway/pdf.py reads its CII). The PDF itself is delivered as
   the invoice's own document (kind "01"), its other embedded files as
   supporting documents (kind "02").
2. A UBL or CII invoice that carries it base64 (UBL
   `cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject`,
   CII `ram:AdditionalReferencedDocument/ram:AttachmentBinaryObject`). Every
   attachment is decoded (bounded) and checked; which PDF is the invoice
   itself (kind "01") is the `[attachments] invoice_pdf` policy: by default a
   PDF whose reference says so (UBL DocumentTypeCode / DocumentType /
   DocumentDescription, CII TypeCode / Name equal to one of `invoice_labels`:
   "Facture", "Invoice"...), else the first PDF. EN 16931 has no code for
   "this is the invoice's rendering" (CII 916 is "related document"), hence
   words and a setting. `invoice_pdf = "declared"` takes only a declared one,
   `"none"` makes every attachment a supporting document.
3. In a lot (ZIP, tar.gz), beside its XML. Names are compared without regard
   to case; a member's base name is its file name without folder and last
   extension (`in/FA-1.xml` -> `FA-1`):
   - an XML member owns the other members of the same folder and base name:
     the first PDF (by content) is its own PDF (kind 01), any other file a
     supporting document (kind 02): `FA-1.xml` + `FA-1.pdf` + `FA-1.csv`;
   - it also owns everything under a folder named after it, at any depth:
     `FA-1.xml` + `FA-1/bon-de-commande.pdf` (kind 02, delivered under its
     own file name);
   - a second XML with the same base name is an invoice of its own;
   - a PDF with no XML of its base name owns the same way (a Factur-X with
     `FA-1.csv` or `FA-1/...`); if it is no Factur-X it is refused as alone;
   - anything else alone in a lot is refused, the message saying how to send
     it: a PDF (IRR_PDF_SEUL), another file (IRR_TYPE_F).

Checks. The invoice's own PDF beside or inside an XML is checked like any
deposited PDF (IRR_PDF unreadable, IRR_PDF_CHIFFRE, IRR_PDF_ACTIF,
signatures). If it is itself a Factur-X, the XML stays the invoice of record,
the PDF's embedded data are not read, and an FX_INCOHERENT warning says so.
Its file name is shortened to `max_name_chars` if needed (the platform's PJ
name limit) rather than refused: it is the invoice, not an attachment.
Supporting documents, and every attachment carried in an XML, follow the
attachment rules (IRR_TAILLE_PJ, IRR_NOM_PJ, IRR_EXT_DOC, IRR_VID_PJ). The
invoice file plus the lot members delivered with it must stay within
`max_total_mb` (IRR_TAILLE_F). One piece has at most one kind-01 document: a
second candidate is delivered as kind 02, and checked as one.

What will be delivered is listed in the verdict (`attachments`: name, size,
mime, kind, source) and kept in `PieceWork.documents` for routing; a document
that fails its checks is not delivered (and the piece is rejected).
"""
from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gateway.core import codes
from gateway.pipeline import detect
from gateway.pipeline.attachments import (Attachment, attachment_limits, check_one, check_total, extract_xml_attachments,
                                         invoice_pdf, mime_of)
from gateway.core.files import stem
from gateway.core.config import Settings
from gateway.core.records import Check, Document, Finding, Format, Location, Part, Severity, Verdict
from gateway.core.files import fit_name
from gateway.pipeline.work import PieceWork

if TYPE_CHECKING:
    from gateway.pipeline.pdf import PdfInspection

INVOICE = "01"  # the invoice's own rendering (pivot TypePJ 01)
SUPPORTING = "02"  # pièce jointe complémentaire

# Findings about the invoice data a PDF embeds (IRR_TYPE_F: an embedded XML
# that is no CII): moot when an XML beside or around the PDF is the invoice of record.
_DATA_CODES = frozenset({"FX_INCOHERENT", "REJ_CONT_B2G", "IRR_TYPE_F"})


@dataclass(frozen=True)
class Companion:
    """A lot member delivered with the piece it sits beside."""

    part: Part
    kind: str  # INVOICE: the PDF beside its XML; SUPPORTING: any other document


@dataclass(frozen=True)
class LotPiece:
    part: Part
    companions: tuple[Companion, ...] = ()


# --- grouping the members of a lot -------------------------------------------

def _base(name: str) -> tuple[str, str]:
    """(folder, base name), case-folded: `in/FA-1.xml` -> ("in", "fa-1")."""
    return name.rpartition("/")[0].casefold(), stem(name).casefold()


def group_lot(parts: Sequence[Part]) -> list[LotPiece]:
    """The pieces of a lot, in archive order, each with the members that go
    with it (conventions in the module docstring)."""
    fams = [detect.sniff_family(p.data) for p in parts]
    keys = [_base(p.name) for p in parts]
    owner: dict[tuple[str, str], int] = {}
    for wanted in ("xml", "pdf"):  # an XML owns its base name; a PDF only where no XML does
        for i, fam in enumerate(fams):
            if fam == wanted:
                owner.setdefault(keys[i], i)
    claimed: dict[int, int] = {}  # member -> the owner it goes with
    beside: set[int] = set()  # claimed by base name (not by folder)
    # Folders first, shallow members first, so that an owner inside another
    # owner's folder is known to be claimed before its own folder is looked at.
    for i in sorted(range(len(parts)), key=lambda i: parts[i].name.count("/")):
        steps = parts[i].name.split("/")
        for depth in range(1, len(steps)):
            o = owner.get(("/".join(steps[:depth - 1]).casefold(), steps[depth - 1].casefold()))
            if o is not None and o != i and o not in claimed:
                claimed[i] = o
                break
    for i in range(len(parts)):
        o = owner.get(keys[i])
        if i in claimed or o is None or o == i or o in claimed or fams[i] == "xml":
            continue  # a second XML of the same base name is an invoice of its own
        claimed[i] = o
        beside.add(i)
    companions: dict[int, list[Companion]] = {}
    with_pdf: set[int] = set()
    for i in sorted(claimed):
        o = claimed[i]
        kind = SUPPORTING
        if i in beside and fams[i] == "pdf" and fams[o] == "xml" and o not in with_pdf:
            kind = INVOICE
            with_pdf.add(o)
        companions.setdefault(o, []).append(Companion(parts[i], kind))
    return [LotPiece(p, tuple(sorted(companions.get(i, ()), key=lambda c: c.kind)))
            for i, p in enumerate(parts) if i not in claimed]


# --- what to send instead (IRR_PDF_SEUL itself: pdf.pdf_alone_finding) ----------

def explain_orphan(verdict: Verdict, family: str) -> Verdict:
    """In a lot, say what the member lacked: the XML beside a PDF, or the
    invoice a supporting document should go with."""
    base = posixpath.basename(verdict.name)
    xml = f"{stem(base)}.xml"
    out = []
    for f in verdict.findings:
        if f.code == "IRR_PDF_SEUL":
            f = replace(f, message=f"{f.message}. This lot has no XML invoice named {xml} beside {base}",
                        message_fr=f"{f.message_fr}. Ce lot ne contient pas de facture XML {xml} à côté "
                        f"de {base}")
        elif f.code == "IRR_TYPE_F" and family != "xml":
            f = replace(f, message=f"{f.message}. A supporting document goes beside its invoice with the same base "
                        "name (INV-1.xml with INV-1.csv) or in a folder named after it (INV-1/...)",
                        message_fr=f"{f.message_fr}. Une pièce jointe se place à côté de sa facture, de même nom "
                        "(FAC-1.xml et FAC-1.csv), ou dans un dossier à son nom (FAC-1/...)")
        out.append(f)
    return replace(verdict, findings=tuple(out))


# --- delivering documents --------------------------------------------------------

def _errors(found: list[Finding]) -> bool:
    return any(f.severity >= Severity.ERROR for f in found)


def _has_invoice_document(work: PieceWork) -> bool:
    return any(d.kind == INVOICE for d in work.documents)


def deliver(work: PieceWork, doc: Document, source: str) -> None:
    """Keep a document for routing and list it for the sender. `source`:
    file (the deposited PDF itself), pdf (embedded in it), ubl / cii (in the
    XML), lot (a member of the lot)."""
    work.documents.append(doc)
    work.extra.setdefault("attachments", []).append(
        {"name": doc.name, "size": len(doc.data), "mime": doc.mime, "kind": doc.kind, "source": source})


def invoice_pdf_findings(data: bytes, settings: Settings, *, member: str | None = None,
                         att: Attachment | None = None) -> list[Finding]:
    """The checks of any deposited PDF, for the invoice's own PDF beside or
    inside an XML; located at the lot member or at the XML element."""
    from gateway.pipeline.pdf import inspect_pdf

    insp = inspect_pdf(data, settings)
    out = [_relocate(f, member, att) for f in insp.findings if f.code not in _DATA_CODES]
    if insp.format is Format.FACTURX:
        name = att.name if att else posixpath.basename(member or "")
        out.append(_relocate(codes.finding(
            "FX_INCOHERENT", f"'{name}' is itself a Factur-X: the XML invoice it comes with is the invoice of "
            "record, the invoice data embedded in the PDF are not read; send one or the other",
            f"« {name} » est lui-même un Factur-X : la facture XML qu'il accompagne fait foi, les données de "
            "facture incorporées au PDF ne sont pas lues ; déposez l'un ou l'autre",
            location=Location(xpath="PDF /Names/EmbeddedFiles"), severity=Severity.WARNING, stage="pdf"),
            member, att))
    return out


def _relocate(f: Finding, member: str | None, att: Attachment | None) -> Finding:
    inner = f.location.xpath if f.location else None
    if att is not None:
        where = f"{att.where} ({inner})" if att.where and inner else (att.where or inner)
        return replace(f, location=Location(xpath=where, line=att.line, member=att.name or None))
    return replace(f, location=replace(f.location or Location(), member=member))


def attachments_stage(work: PieceWork, settings: Settings) -> None:
    """XML stage: the attachments a UBL or CII carries, decoded (never more
    than `max_mb` each), checked, and delivered; the invoice's own PDF among
    them (kind 01) also gets the PDF checks. In a Factur-X's CII, the PDF
    itself is already the kind-01 document."""
    limits = attachment_limits(settings)
    atts, unreadable = extract_xml_attachments(work.tree, max_bytes=limits.max_bytes)
    found = list(unreadable)
    own = None if work.format.is_pdf or _has_invoice_document(work) else invoice_pdf(atts, limits)
    for att in atts:
        kind = INVOICE if att is own else SUPPORTING
        problems = check_one(att, limits)
        if kind == INVOICE and not problems:
            problems = invoice_pdf_findings(att.data, settings, att=att)
        found.extend(problems)
        if not _errors(problems):
            deliver(work, Document(att.name, mime_of(att), att.data, kind), att.source)
    work.findings.extend(found)
    work.checks.append(Check("attachments", "failed" if _errors(found) else "passed",
                             f"{len(atts) + len(unreadable)} attachment(s)"))


def deliver_facturx(work: PieceWork, insp: PdfInspection, settings: Settings) -> None:
    """The PDF stage's part: a Factur-X is its own kind-01 document; its other
    embedded files are supporting documents once they pass the rules."""
    limits = attachment_limits(settings)
    name = fit_name(posixpath.basename(work.part.name) or "facture.pdf", limits.max_name_chars)
    deliver(work, Document(name, "application/pdf", work.part.data, INVOICE), "file")
    for att in insp.attachments:
        problems = check_one(att, limits)
        work.findings.extend(problems)
        if not _errors(problems):
            deliver(work, Document(att.name, mime_of(att), att.data, SUPPORTING), "pdf")


def add_companions(work: PieceWork, companions: Sequence[Companion], settings: Settings) -> None:
    """The lot members that go with the piece: checked, then delivered; and
    the size of the whole (invoice file + those members)."""
    limits = attachment_limits(settings)
    found: list[Finding] = []
    for c in companions:
        name = posixpath.basename(c.part.name)
        if c.kind == INVOICE and not _has_invoice_document(work):
            problems = invoice_pdf_findings(c.part.data, settings, member=c.part.name)
            doc = Document(fit_name(name, limits.max_name_chars), "application/pdf", c.part.data, INVOICE)
        else:
            att = Attachment(name, c.part.data, None, "lot")
            problems = [_relocate(f, c.part.name, None) for f in check_one(att, limits)]
            doc = Document(name, mime_of(att), c.part.data, SUPPORTING)
        found.extend(problems)
        if not _errors(problems):
            deliver(work, doc, "lot")
    found.extend(check_total(len(work.part.data), (len(c.part.data) for c in companions), limits,
                             member=work.part.name or None))
    work.findings.extend(found)
    if companions:
        work.checks.append(Check("lot-documents", "failed" if _errors(found) else "passed",
                                 ", ".join(f"{c.part.name} ({c.kind})" for c in companions)))

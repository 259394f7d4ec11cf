"""Validation pipeline: from a file's bytes to one verdict per piece.

Stages are small functions; each returns findings (errors are data) and the
checks it ran. The order follows the platform's documented order (file
controls, format detection, syntax and XSD, then business rules). Nothing
here touches the store or the folders: `gateway validate` and the workers
both call `evaluate_file`.
"""
from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from gateway.core import codes
from gateway.pipeline import detect
from gateway.pipeline import lots
from gateway.pipeline import companions as mixed
from gateway.core import xmlsafe
from gateway.core.config import Settings
from gateway.core.records import Check, Finding, Format, Location, Part, Verdict
from gateway.pipeline.stages import DEFAULT_SELECTION, PDF_STAGE, SELECTIONS, run_xml_checks, skip_rest
from gateway.pipeline.work import Evaluation, PieceWork


def check_file(name: str, size: int, settings: Settings) -> list[Finding]:
    """File-level controls that need no content."""
    if size == 0:
        return [codes.finding("IRR_VIDE_F", location=Location(member=name), value="0", stage="file")]
    if size > settings.max_file_bytes:
        return [codes.finding(
            "IRR_TAILLE_F", f"File is {size} bytes; the limit is {settings.max_file_bytes}",
            f"Le fichier fait {size} octets ; la limite est {settings.max_file_bytes}",
            location=Location(member=name), value=str(size), stage="file")]
    return []


def evaluate_file(data: bytes | None, name: str, settings: Settings, *, size: int | None = None,
                  selection: str = DEFAULT_SELECTION) -> Evaluation:
    """Evaluate one deposited file. `data` may be None when the file is over
    the size limit (it is then never read). `selection` names the XML stages
    that run (stages.SELECTIONS: "chorus", all, "en16931", or "fr-ctc")."""
    if selection not in SELECTIONS:
        raise ValueError(f"unknown validation profile {selection!r} (known: {', '.join(SELECTIONS)})")
    size = len(data) if data is not None else (size or 0)
    refused = check_file(name, size, settings)
    if refused or data is None:
        fmt = detect.detect(data[:4096]) if data else Format.UNKNOWN
        return Evaluation(fmt, (), tuple(refused))
    if detect.sniff_family(data) in ("zip", "tar") and detect.is_lot(data):
        return _evaluate_lot(data, settings, selection)
    verdict = evaluate_part(Part(1, name, data), settings, selection=selection)
    # the PDF stage refines `pdf` into facturx / pdf-signed
    return Evaluation(verdict.format, (verdict,))


def _evaluate_lot(data: bytes, settings: Settings, selection: str) -> Evaluation:
    limits = lots.LotLimits(settings.max_lot_members, settings.max_lot_unpacked_bytes, settings.max_file_bytes)
    try:
        # Unpacked whole (within the lot's bounds) before any piece is judged:
        # a PDF and its XML may come in any order, and a broken archive is
        # refused before any work is spent on it.
        parts = list(lots.unpack(data, limits))
    except lots.LotError as exc:
        # A hostile or broken archive is refused whole: nothing of it is integrated.
        return Evaluation(Format.LOT, (), (exc.finding,))
    if not parts:
        return Evaluation(Format.LOT, (), (codes.finding("IRR_VIDE_F", "The lot holds no file",
                                                         "Le lot ne contient aucun fichier", stage="lot"),))
    pieces: list[mixed.LotPiece | None] = list(mixed.group_lot(parts))
    del parts
    verdicts: list[Verdict] = []
    for i, piece in enumerate(pieces):
        pieces[i] = None  # let each member's bytes go once judged (documents keep what is delivered)
        assert piece is not None
        part = piece.part
        if detect.is_lot(part.data):  # or an office file (docx, odt... are ZIPs) with no invoice to go with
            verdict = Verdict(part.index, part.name, Format.LOT, (codes.finding(
                "IRR_TYPE_F", "A lot inside a lot is not accepted", "Un lot dans un lot n'est pas accepté",
                location=Location(member=part.name), stage="lot"),))
        else:
            verdict = evaluate_part(part, settings, piece.companions, selection=selection)
        verdicts.append(mixed.explain_orphan(verdict, detect.sniff_family(part.data)))
    return Evaluation(Format.LOT, tuple(verdicts))


def evaluate_part(part: Part, settings: Settings, companions: Sequence[mixed.Companion] = (), *,
                  selection: str = DEFAULT_SELECTION) -> Verdict:
    """One piece; `companions` are the lot members delivered with it (a PDF
    beside its XML, supporting documents), checked after the piece itself."""
    member = part.name or None
    if not part.data:
        return Verdict(part.index, part.name, Format.UNKNOWN,
                       (codes.finding("IRR_VIDE_F", location=Location(member=member), stage="file"),))
    family = detect.sniff_family(part.data)
    if family == "xml":
        work = PieceWork(part, Format.UNKNOWN, selection=selection)
        _xml_stages(work, settings)
    elif family == "pdf":
        work = PieceWork(part, Format.PDF, selection=selection)
        PDF_STAGE.run(work, settings)
    else:
        work = PieceWork(part, Format.UNKNOWN, selection=selection)
        work.findings.append(codes.finding(
            "IRR_TYPE_F", "Not an invoice format the gateway accepts (UBL, CII, Factur-X, PDF, ZIP/tar.gz lot)",
            "Format non accepté (UBL, CII, Factur-X, PDF, lot ZIP/tar.gz)",
            location=Location(member=member), value=repr(part.data[:16])[:40], stage="format"))
    mixed.add_companions(work, companions, settings)
    return work.verdict()


def _xml_stages(work: PieceWork, settings: Settings) -> None:
    """One safe parse; the format comes from its root element."""
    member = work.part.name or None
    tree, problems = xmlsafe.parse(work.part.data, member=member)
    if problems:
        # say what it claimed to be, if its start is readable (a truncated UBL is still UBL)
        work.format = detect.detect_xml(work.part.data)
        work.findings.extend(problems)
        work.checks.append(Check("syntax", "failed", problems[0].message))
        skip_rest(work, "syntax")
        return
    root = tree.getroot()
    work.checks.append(Check("syntax", "passed"))
    work.format = detect.format_of_root(root)
    if work.format is Format.UNKNOWN:
        q = etree.QName(root)
        work.findings.append(codes.finding(
            "IRR_TYPE_F",
            f"XML root {{{q.namespace}}}{q.localname} is not a UBL 2.1 Invoice/CreditNote or a CII D16B invoice",
            f"La racine XML {{{q.namespace}}}{q.localname} n'est ni une facture/avoir UBL 2.1 ni une facture CII D16B",
            location=Location(xpath="/" + q.localname, line=root.sourceline, member=member),
            value=q.localname, stage="format"))
        return
    work.tree = tree
    work.xml = work.part.data
    run_xml_checks(work, settings)

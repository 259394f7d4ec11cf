"""The stages a piece goes through, in one declared order.

A `Stage` has a name, says whether its failure stops the later stages, and
runs on a piece's work: it adds findings (errors are data) and the checks it
ran. An XML piece gets its XSD, then `XML_STAGES` in order; a PDF gets
`PDF_STAGE`, whose embedded CII then goes through the same XML checks.
Adding a stage is one function and one line in `XML_STAGES`; it then runs
under the default selection (`SELECTIONS`, `gateway validate --profile`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from gateway.core.config import Settings
from gateway.core.records import Check, Format, Location, Severity
from gateway.pipeline import companions, pdf
from gateway.pipeline.work import PieceWork
from gateway.pipeline.pdf_facturx import poor_profile_finding
from gateway.rules import rulesets, schematron, xsd
from gateway.rules.guidelines import guideline_id
from gateway.rules.manifest import root_of
from gateway.rules.controls import run_controls
from gateway.rules.directory import directory_loaded
from gateway.rules.mapping.loader import mapping_source
from gateway.rules.mapping.read import map_piece
from gateway.pipeline.selection import DEFAULT_SELECTION  # noqa: F401 - the callers' name


@dataclass(frozen=True)
class Stage:
    """One step of a piece's evaluation."""

    name: str
    run: Callable[[PieceWork, Settings], None]
    # False: its failure leaves the later stages meaningful (an attachment
    # refused for its name says nothing of the invoice's rules), so they run
    # and the sender gets every verdict in one report.
    blocks: bool = True


def _with_member(f, member):  # noqa: ANN001, ANN202
    if not member:
        return f
    loc = f.location or Location()
    return replace(f, location=replace(loc, member=loc.member or member))


GUIDELINE_XPATH = ("/rsm:CrossIndustryInvoice/rsm:ExchangedDocumentContext"
                   "/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID")


def en16931_stage(work: PieceWork, settings: Settings) -> None:
    """The business rules the invoice's guideline (BT-24) calls for
    (rulesets.plan): EN 16931 core always, a Factur-X BASIC or EXTENDED
    profile's own rules added, MINIMUM and BASIC WL refused (REJ_CONT_B2G)
    and judged by their own rules only, EXTENDED-CTC-FR by its profile's
    rules and BR-FR-Flux2; the fr-ctc selection adds BR-FR-Flux2 to any
    plan. The `guideline` check says which.
    They run in the long-lived Saxon worker; if they cannot run, the piece is
    not accepted (ERR_VALIDATEUR), never passed silently."""
    fmt = work.xml_format or work.format
    kind = "cii" if fmt is Format.CII else "ubl"
    # A Factur-X's CII gets the same rules as a CII file; its XMP level stands in for a missing BT-24
    gid = guideline_id(work.tree.getroot()) if work.tree is not None else None
    xmp = work.extra.get("profile")
    profile = rulesets.profile_of(gid, xmp)
    # a policy, not a rule: refused even with the rules turned off (a Factur-X has it from its PDF)
    if rulesets.is_poor(kind, profile) and not any(f.code == "REJ_CONT_B2G" for f in work.findings):
        work.findings.append(_with_member(
            poor_profile_finding(profile or "", "reject", GUIDELINE_XPATH, in_pdf=False), work.part.name))
    if not settings.schematron:  # turned off in this home's settings
        return
    try:
        plan = rulesets.plan(kind, gid, settings, xmp_profile=xmp,
                             french=rulesets.BR_FR in SELECTIONS[work.selection])
    except rulesets.RuleSetNotFound as exc:
        res = schematron.not_run(str(exc), None)
        work.findings.extend(_with_member(f, work.part.name) for f in res.findings)
        work.checks.append(res.as_check())
        return
    refused = plan.poor and any(f.code == "REJ_CONT_B2G" and f.severity >= Severity.ERROR for f in work.findings)
    work.checks.append(Check("guideline", "failed" if refused else "passed", plan.note))
    if plan.core is None:
        work.checks.append(Check("en16931", "skipped", plan.without_core))
    engine = schematron.shared_engine(settings)
    for rs in plan.rulesets:
        res = engine.check(kind, work.xml or work.part.data, ruleset=rs)
        work.findings.extend(_with_member(f, work.part.name) for f in res.findings)
        work.checks.append(res.as_check())


def controls_stage(work: PieceWork, settings: Settings) -> None:
    """Read the canonical piece through the mappings, then the French
    public-sector controls (with the directory ones once a directory is
    loaded). The piece is kept for routing; its summary goes in the report."""
    invoice, found = map_piece(work.tree, settings)
    work.findings.extend(_with_member(f, work.part.name) for f in found)
    if invoice is None:
        work.checks.append(Check("mapping", "failed", "; ".join(f.code for f in found)))
        return
    work.checks.append(Check("mapping", "passed", invoice.syntax, used=mapping_source(settings, invoice.syntax)))
    report = run_controls(invoice, settings, directory=directory_loaded(settings))
    work.findings.extend(_with_member(f, work.part.name) for f in report.findings)
    work.checks.extend(report.checks)
    work.invoice = invoice
    work.extra["invoice"] = _summary(invoice)
    if report.structure is not None:
        work.extra["recipient"] = {"name": report.structure.raison_sociale,
                                   "service": report.service.name if report.service else None}


def _summary(invoice) -> dict:  # noqa: ANN001 - a core.invoice.Invoice
    return {
        "number": invoice.invoice_number, "date": invoice.issue_date.isoformat() if invoice.issue_date else None,
        "cadre": invoice.cadre, "piece_type": invoice.piece_type, "supplier": invoice.supplier.siret,
        "recipient": invoice.recipient.siret, "service": invoice.service_code,
        "engagement": invoice.engagement_number,
        "total": str(invoice.totals.payable) if invoice.totals.payable is not None else None,
        "currency": invoice.currency}


def _summary_of_refused(work: PieceWork, settings: Settings) -> None:
    """A piece the rules refused still says which invoice it was (number,
    date, parties) in its report: its sender finds it, and a CDAR 213 names
    it. Read through the mappings, no control run, nothing added to its findings."""
    if "invoice" in work.extra or work.tree is None or any(c.name == "mapping" for c in work.checks):
        return  # read already, or the mapping itself failed: reading again would fail the same way
    invoice, _found = map_piece(work.tree, settings)
    if invoice is not None:
        work.extra["invoice"] = _summary(invoice)


def pdf_stage(work: PieceWork, settings: Settings) -> None:
    """PDF hygiene, signatures, Factur-X extraction; the embedded CII then
    goes through the same XSD and rules as a CII file."""
    insp = pdf.inspect_pdf(work.part.data, settings)
    work.format = insp.format
    work.findings.extend(_with_member(f, work.part.name) for f in insp.findings)
    work.checks.append(Check("pdf", "failed" if any(f.severity >= Severity.ERROR for f in insp.findings) else "passed"))
    if insp.signatures:
        sig_fail = [s for s in insp.signatures if any(f.severity >= Severity.ERROR for f in s.findings)]
        work.checks.append(Check("signatures", "failed" if sig_fail else "passed",
                                 f"{len(insp.signatures)} signature(s)"))
        work.extra["signatures"] = [_sig_dict(s) for s in insp.signatures]
    if insp.profile:
        work.extra["profile"] = insp.profile
        work.extra["profile_source"] = insp.profile_source
    if insp.pdfa:
        work.extra["pdfa"] = insp.pdfa
    if insp.invoice_xml is None:
        # No data: nothing will be delivered, so its embedded files are not judged.
        if insp.format in (Format.PDF, Format.PDF_SIGNED) and not work.failed:
            work.findings.append(_with_member(pdf.pdf_alone_finding(), work.part.name))
        return
    # A Factur-X is its own kind-01 document; its other embedded files kind 02 (PJ rules).
    companions.deliver_facturx(work, insp, settings)
    # Policy findings (poor profile, XMP/XML disagreement) do not stop the XML
    # checks: the sender gets the whole picture in one report. The inspection
    # parsed the XML and judged its root (IRR_TYPE_F if no CII): used as is.
    emb = insp.invoice_xml
    if emb.tree is None:
        member = f"{work.part.name}/{emb.name}"
        problems = [replace(f, location=replace(f.location or Location(), member=member)) for f in emb.problems]
        work.findings.extend(problems)
        work.checks.append(Check("syntax", "failed", problems[0].message))
        return
    work.checks.append(Check("syntax", "passed", emb.name))
    if not emb.cii:
        return
    work.tree, work.xml, work.xml_format = emb.tree, emb.data, Format.CII
    run_xml_checks(work, settings, force=True)


def _sig_dict(s) -> dict:  # noqa: ANN001
    # not asdict(): it deep-copies the findings (ms per signature)
    d = {f.name: getattr(s, f.name) for f in fields(s) if f.name != "findings"}
    d["findings"] = [f.as_dict() for f in s.findings]
    return d


# The order of the platform's documented controls: the attachments an XML
# carries are file-level controls (IRR_*), checked before the business rules.
XML_STAGES: tuple[Stage, ...] = (
    Stage("attachments", companions.attachments_stage, blocks=False),
    Stage("en16931", en16931_stage),
    Stage("controls", controls_stage),
)
PDF_STAGE = Stage("pdf", pdf_stage)

# Which XML stages a validation profile runs (`gateway validate --profile`).
# "chorus", the default and what the workers run, runs them all; "en16931"
# runs the format, XSD, EN 16931 and signature checks only (the PDF stage
# always runs), what an editor abroad needs: not the platform's attachment
# rules nor the French public-sector controls.
# "fr-ctc" is "en16931" plus the French reform's BR-FR-Flux2 rules on any
# UBL or CII (rulesets.BR_FR names no stage: the en16931 stage adds them to
# its plan), what a supplier asks before sending to a French platform.
SELECTIONS: dict[str, frozenset[str]] = {
    "chorus": frozenset(s.name for s in XML_STAGES),
    "en16931": frozenset({"en16931"}),
    "fr-ctc": frozenset({"en16931", rulesets.BR_FR}),
}


def run_xml_checks(work: PieceWork, settings: Settings, *, force: bool = False) -> None:
    """XSD, then the registered business stages. Also used for the CII a
    Factur-X carries (`force`: run the rules even if a PDF policy finding
    already rejects the piece, so the report is complete)."""
    found, check = xsd.validate(work.tree, work.xml_format or work.format, settings.schema_dirs,
                                artefacts=root_of(settings), member=work.part.name or None)
    work.findings.extend(found)
    work.checks.append(check)
    work.extra.setdefault("schema", check.used)
    if check.outcome != "passed":
        skip_rest(work, "xsd")
        return
    wanted = SELECTIONS[work.selection]
    for stage in XML_STAGES:
        if stage.name not in wanted:
            work.checks.append(Check(stage.name, "skipped", f"not in the {work.selection} validation profile"))
            continue
        if (_blocking(work) and not force) or _xml_failed(work):
            work.checks.append(Check(stage.name, "skipped", "an earlier control failed"))
            continue
        stage.run(work, settings)
    if "controls" in wanted and _blocking(work):
        _summary_of_refused(work, settings)


def _blocking(work: PieceWork) -> bool:
    non_blocking = {s.name for s in XML_STAGES if not s.blocks}
    return any(f.severity >= Severity.ERROR and f.stage not in non_blocking for f in work.findings)


def _xml_failed(work: PieceWork) -> bool:
    return any(f.severity >= Severity.ERROR and f.stage in ("syntax", "xsd", "facturx") for f in work.findings)


def skip_rest(work: PieceWork, failed: str) -> None:
    if failed == "syntax":
        work.checks.append(Check("xsd", "skipped", "the XML is not well-formed"))
    for stage in XML_STAGES:
        work.checks.append(Check(stage.name, "skipped", f"{failed} failed"))

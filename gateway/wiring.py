"""The one place that plugs optional parts into the core: pipeline stages,
steps after evaluation, channels started by `gateway run`, and sub-commands.
"""
from __future__ import annotations

from dataclasses import fields, replace

from gateway.pipeline import evaluate as pipeline
from gateway.core.config import Settings
from gateway.core.records import Check, Format, Location, Severity

_installed = False


def install(settings: Settings) -> None:
    """Register stages and channels (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    # registered whatever this first caller's settings say: each call reads its own
    pipeline.XML_STAGES.append(("en16931", en16931_stage))
    pipeline.XML_STAGES.append(("controls", controls_stage))
    pipeline.PDF_STAGE.append(pdf_stage)
    from gateway.runtime.service import CHANNELS

    # imported only where a channel starts: workers never load paramiko
    CHANNELS.append(_sftp_server)
    CHANNELS.append(_sftp_poller)


def _sftp_server(s: Settings):  # noqa: ANN202
    if not s.sftp_enabled:
        return None
    from gateway.channels.sftp.server import SftpServer

    return SftpServer(s)


def _sftp_poller(s: Settings):  # noqa: ANN202
    if not s.raw.get("remote"):
        return None
    from gateway.channels.poller import PollerService

    return PollerService(s)


def _with_member(f, member):  # noqa: ANN001, ANN202
    if not member:
        return f
    loc = f.location or Location()
    return replace(f, location=replace(loc, member=loc.member or member))


def en16931_stage(work: pipeline.PieceWork, settings: Settings) -> None:
    """EN 16931 rules in the long-lived Saxon worker; if it cannot run, the
    piece is not accepted (ERR_VALIDATEUR), never passed silently."""
    if not settings.schematron:  # turned off in this home's settings
        return
    from gateway.rules import schematron

    fmt = work.xml_format or work.format
    kind = "cii" if fmt is Format.CII else "ubl"
    # A Factur-X's CII gets the same EN 16931 rules as a CII file (issue: same XSD, rules, routing)
    # a Factur-X's profile (BASIC, EXTENDED...) picks its rule set; a CII file has none
    profile = work.extra.get("profile") if kind == "cii" else None
    res = schematron.shared_engine(settings).check(kind, work.xml or work.part.data, profile=profile)
    work.findings.extend(_with_member(f, work.part.name) for f in res.findings)
    work.checks.append(res.as_check())


def controls_stage(work: pipeline.PieceWork, settings: Settings) -> None:
    """Read the canonical piece through the mappings, then the French
    public-sector controls (with the directory ones once a directory is
    loaded). The piece is kept for routing; its summary goes in the report."""
    from gateway.rules.controls import run_controls
    from gateway.rules.directory import directory_loaded
    from gateway.rules.mapping import map_piece, mapping_source

    invoice, found = map_piece(work.tree, settings)
    work.findings.extend(_with_member(f, work.part.name) for f in found)
    if invoice is None:
        work.checks.append(Check("mapping", "failed", "; ".join(f.code for f in found)))
        return
    work.checks.append(Check("mapping", "passed", invoice.syntax, used=mapping_source(settings, invoice.syntax)))
    report = run_controls(invoice, settings, directory=directory_loaded(settings))
    work.findings.extend(_with_member(f, work.part.name) for f in report.findings)
    work.checks.extend(report.checks)
    work.piece = invoice
    work.extra["invoice"] = {
        "number": invoice.invoice_number, "date": invoice.issue_date.isoformat() if invoice.issue_date else None,
        "cadre": invoice.cadre, "piece_type": invoice.piece_type, "supplier": invoice.supplier.siret,
        "recipient": invoice.recipient.siret, "service": invoice.service_code,
        "engagement": invoice.engagement_number,
        "total": str(invoice.totals.payable) if invoice.totals.payable is not None else None,
        "currency": invoice.currency}
    if report.structure is not None:
        work.extra["recipient"] = {"name": report.structure.raison_sociale,
                                   "service": report.service.name if report.service else None}


def pdf_stage(work: pipeline.PieceWork, settings: Settings) -> None:
    """PDF hygiene, signatures, Factur-X extraction; the embedded CII then
    goes through the same XSD and rules as a CII file."""
    from gateway.pipeline import companions as mixed
    from gateway.pipeline import pdf

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
    mixed.deliver_facturx(work, insp, settings)
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
    pipeline.run_xml_checks(work, settings, force=True)


def _sig_dict(s) -> dict:  # noqa: ANN001
    # not asdict(): it deep-copies the findings (ms per signature)
    d = {f.name: getattr(s, f.name) for f in fields(s) if f.name != "findings"}
    d["findings"] = [f.as_dict() for f in s.findings]
    return d


def register_commands(app) -> None:  # noqa: ANN001 - a typer.Typer
    """Mount the sub-command groups of other modules."""
    from gateway.ops import commands_directory
    from gateway.ops import commands_partner
    from gateway.ops import commands_piece
    from gateway.ops import conformance

    app.add_typer(commands_directory.app, name="directory", help="Directory of public structures and services.")

    app.add_typer(commands_partner.app, name="partner", help="Partner accounts (SFTP logins, folders).")

    app.add_typer(commands_piece.app, name="piece",
                  help="A piece's history (gateway piece ID) and status changes (gateway piece set-status).")
    app.command("deadlines", help="Apply the delays that ran out (validators, MOE).")(commands_piece.deadlines)
    app.command("pieces", help="Accepted pieces and where they stand (filters: status, recipient, partner, due).")(
        commands_piece.pieces)

    app.command("conformance", help="Compare `gateway validate` with a corpus's EXPECTED.tsv.")(conformance.main)

    from gateway.ops import rejections as report_rejections
    from gateway.ops import web

    app.add_typer(report_rejections.app, name="report", help="Operators' reports (rejections by partner and code).")
    app.command("web", help="Serve the operators' read-only web pages.")(web.main)
    from gateway.ops import operators

    app.add_typer(operators.app, name="operator", help="Operators who log in to the web pages.")

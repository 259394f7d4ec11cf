"""What a deposited PDF is, and what is wrong with it.

`inspect_pdf` reports facts for the pipeline: the format (Factur-X, signed
PDF, plain PDF), the invoice XML a Factur-X carries (taken from the signed
revision when the PDF is signed, so an appended update cannot swap it), its
profile according to the XML and to the XMP metadata, the PDF/A markers, the
signatures and the other embedded files. It never raises: a PDF that cannot be
read is an IRR_PDF finding, whatever pypdf or pyHanko throw.

It composes the safety scan (pdf_safety: encryption, active content, bounded
reading), the signatures (signatures) and the Factur-X reading (pdf_facturx).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.core.config import Settings
from gateway.core.records import Finding, Format
from gateway.pipeline.attachments import Attachment
from gateway.pipeline.pdf_facturx import NO_PROFILE_SOURCE, EmbeddedXml, read_facturx
from gateway.pipeline.pdf_safety import (EF, PdfLimits, Revision, encrypted_finding, open_pdf, pdf_finding,
                                         pdf_limits, read_revision, repaired_finding, repairs_noted, scan_findings,
                                         scan_pdf, unreadable)
from gateway.pipeline.signatures import SignatureReport, validate_signatures

log = logging.getLogger("gateway.pipeline.signatures")  # the signed revision's problems are the signatures'


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


def pdf_alone_finding() -> Finding:
    """IRR_PDF_SEUL: a PDF with no invoice data, and the three ways to send it
    with its data (a PDF is paired with an XML only inside one lot)."""
    return pdf_finding(
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


# --- the inspection -------------------------------------------------------------

def _files_differ(a: Revision, b: Revision) -> list[str]:
    before = {f.name: f.data for f in a.files}
    after = {f.name: f.data for f in b.files}
    return sorted(n for n in before.keys() | after.keys() if before.get(n) != after.get(n))


def inspect_pdf(data: bytes, settings: Settings) -> PdfInspection:
    """Inspect one PDF. Never raises; every problem is a finding."""
    with repairs_noted() as repairs:
        try:
            return _inspect(data, settings, repairs)
        except (Exception, RecursionError) as exc:
            return _refused(unreadable(exc), data, settings)


def _refused(finding: Finding, data: bytes, settings: Settings) -> PdfInspection:
    """A PDF that could not be looked into: one finding says why, after what
    its signatures say if it has any (or the bytes show one: a broken xref
    must not make a signed PDF look unsigned). Encryption is refused this way too."""
    reports: list[SignatureReport] = []
    findings: list[Finding] = []
    if b"/ByteRange" in data:
        try:
            reports, found = validate_signatures(data, settings)
            findings.extend(found)
        except (Exception, RecursionError):  # the refusal stands on its own
            log.exception("signatures of a refused PDF not examined")
    fmt = Format.PDF_SIGNED if any(r.kind == "signature" for r in reports) else Format.PDF
    return PdfInspection(fmt, (*findings, finding), None, None, dict(NO_PROFILE_SOURCE), {}, tuple(reports), ())


def _inspect(data: bytes, settings: Settings, repairs: list[str]) -> PdfInspection:
    limits = pdf_limits(settings)
    reader = open_pdf(data)  # unreadable: inspect_pdf says so
    if reader.is_encrypted:
        return _refused(encrypted_finding(), data, settings)
    findings: list[Finding] = []
    scan = scan_pdf(reader, limits)
    findings.extend(scan_findings(scan, limits))
    final = read_revision(reader, limits)
    findings.extend(final.findings)

    reports: list[SignatureReport] = []
    if scan.signature_values or b"/ByteRange" in data:
        reports, sig_findings = validate_signatures(data, settings)
        findings.extend(sig_findings)
        if scan.signature_values > len(reports):
            findings.append(pdf_finding(
                "SIG_MASQUEE", f"{scan.signature_values} signature values are in the PDF but only {len(reports)} "
                "are in its form's signature fields: the others cannot be validated",
                f"{scan.signature_values} valeurs de signature sont dans le PDF mais seulement {len(reports)} dans "
                "les champs de signature de son formulaire : les autres ne peuvent pas être validées",
                "PDF /AcroForm", value=str(scan.signature_values)))
    signed = _signed_revision(data, reports, final, limits, findings)

    fx = read_facturx(signed, limits)
    findings.extend(fx.findings)
    if repairs:
        findings.append(repaired_finding(repairs))
    really_signed = any(r.kind == "signature" for r in reports)
    fmt = Format.FACTURX if fx.invoice else Format.PDF_SIGNED if really_signed else Format.PDF
    atts = tuple(Attachment(f.name, f.data, f.mime, "pdf", f"{EF} ({f.name})") for f in fx.others)
    return PdfInspection(fmt, tuple(findings), fx.invoice, fx.profile, fx.source, fx.pdfa, tuple(reports), atts)


def _signed_revision(data: bytes, reports: list[SignatureReport], final: Revision, limits: PdfLimits,
                     findings: list[Finding]) -> Revision:
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
        signed = read_revision(open_pdf(data[:end]), limits)
    except (Exception, RecursionError) as exc:
        log.warning("signed revision (bytes 0-%d) not readable on its own", end, exc_info=exc)
        findings.append(pdf_finding(
            "SIG_ILLISIBLE", "The signed revision cannot be read on its own (the PDF it was cut from is damaged), "
            "so the invoice data it signs cannot be checked", "La révision signée est illisible seule (le PDF dont "
            "elle est tirée est abîmé) : les données de facture qu'elle signe ne peuvent pas être contrôlées",
            "PDF", value=str(end)))
        return final
    changed = _files_differ(signed, final)
    if changed:
        names = ", ".join(changed)
        findings.append(pdf_finding(
            "SIG_MODIFIEE", f"Embedded files were added, removed or changed after signing ({names}); the signed "
            "version is the one used", f"Des fichiers incorporés ont été ajoutés, retirés ou modifiés après "
            f"signature ({names}) ; seule la version signée est prise en compte", EF, value=names))
    return signed

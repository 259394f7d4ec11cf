"""inspect_pdf: format, Factur-X profile and metadata, hostile and broken PDFs."""
from __future__ import annotations

import io

import pytest
from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from gateway.rules.guidelines import profile_from_guideline, profile_from_xmp
from gateway.pipeline.pdf import inspect_pdf, pdf_alone_finding
from gateway.core.records import Format, Severity
from pdf_support import (GUIDELINES, cii, make_action_loop_pdf, make_cyclic_pages_pdf, make_deep_pdf,
                         make_empty_field_pdf, make_encrypted_pdf, make_facturx, make_garbage_pdf,
                         make_launch_pdf, make_names_js_pdf, make_openaction_js_pdf, make_pdf,
                         make_pdf_with_files, make_pki, make_signed_encrypted, settings_for)

ZF1 = b"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryDocument xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12">
 <rsm:SpecifiedExchangedDocumentContext>
  <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:ferd:CrossIndustryDocument:invoice:1p0:comfort</ram:ID>
  </ram:GuidelineSpecifiedDocumentContextParameter>
 </rsm:SpecifiedExchangedDocumentContext>
</rsm:CrossIndustryDocument>"""


@pytest.fixture()
def settings(tmp_path):
    return settings_for(tmp_path)


def codes(insp, severity: Severity | None = None) -> list[str]:
    return [f.code for f in insp.findings if severity is None or f.severity == severity]


def test_plain_pdf_is_pdf_with_nothing_wrong(settings):
    insp = inspect_pdf(make_pdf(), settings)
    assert insp.format is Format.PDF
    assert insp.findings == () and insp.invoice_xml is None and insp.signatures == () and insp.profile is None


def test_pdf_alone_finding_says_what_to_send_instead():
    f = pdf_alone_finding()
    assert f.code == "IRR_PDF_SEUL" and f.severity is Severity.ERROR
    for hint in ("Factur-X", "UBL or CII invoice that embeds this PDF", "same base name"):
        assert hint in f.message
    assert "Factur-X" in f.message_fr and "même nom" in f.message_fr


def test_pdf_alone_finding_pairs_a_pdf_with_its_xml_only_in_a_lot():
    f = pdf_alone_finding()
    assert "ZIP or tar.gz lot" in f.message and "next to the PDF" not in f.message
    assert "lot ZIP ou tar.gz" in f.message_fr


@pytest.mark.parametrize("level,profile", [
    ("basic", "BASIC"), ("en16931", "EN 16931"), ("extended", "EXTENDED")])
def test_facturx_profile_is_read_from_xml_and_xmp(settings, level, profile):
    insp = inspect_pdf(make_facturx(level), settings)
    assert insp.format is Format.FACTURX
    assert insp.profile == profile
    assert insp.profile_source["xml"] == GUIDELINES[level]
    assert profile_from_xmp(insp.profile_source["xmp"]) == profile
    assert insp.invoice_xml.name == "factur-x.xml" and insp.invoice_xml.data.startswith(b"<?xml")
    assert insp.pdfa == {"part": "3", "conformance": "B"}
    assert insp.findings == ()


def test_xml_and_xmp_profiles_that_disagree_are_flagged_with_both_values(settings):
    insp = inspect_pdf(make_facturx("en16931", xmp_level="basic"), settings)
    bad = [f for f in insp.findings if f.code == "FX_INCOHERENT"]
    assert len(bad) == 1 and bad[0].severity is Severity.ERROR
    assert bad[0].value == "xml=EN 16931; xmp=BASIC"
    assert insp.profile == "EN 16931"  # the XML is the data of record


@pytest.mark.parametrize("level,profile", [("minimum", "MINIMUM"), ("basicwl", "BASIC WL")])
def test_profiles_without_lines_are_rejected_by_default_with_what_to_send(settings, level, profile):
    insp = inspect_pdf(make_facturx(level), settings)
    assert insp.profile == profile
    [f] = insp.findings
    assert f.code == "REJ_CONT_B2G" and f.severity is Severity.ERROR and f.value == profile
    assert "BASIC, EN 16931 or EXTENDED" in f.message and "UBL/CII" in f.message


def test_profiles_without_lines_can_be_accepted_as_pdf_invoices(tmp_path):
    s = settings_for(tmp_path, pdf={"poor_profiles": "pdf-only"})
    insp = inspect_pdf(make_facturx("minimum"), s)
    assert insp.format is Format.FACTURX and insp.invoice_xml is not None
    [f] = insp.findings
    assert f.severity is Severity.WARNING and "invoice of record" in f.message


def test_zugferd1_xml_without_xmp_is_read_but_refused_and_missing_metadata_is_warned(settings):
    insp = inspect_pdf(make_pdf_with_files({"ZUGFeRD-invoice.xml": ZF1}), settings)
    assert insp.format is Format.FACTURX and insp.invoice_xml.name == "ZUGFeRD-invoice.xml"
    assert insp.profile == "EN 16931"  # ZUGFeRD 1 COMFORT
    assert insp.profile_source == {"xml": "urn:ferd:CrossIndustryDocument:invoice:1p0:comfort", "xmp": None}
    # judged here, once: ZUGFeRD 1.0 is no CII D16B invoice
    assert codes(insp, Severity.ERROR) == ["IRR_TYPE_F"] and "ZUGFeRD 1.0" in insp.findings[0].message
    assert not insp.invoice_xml.cii and insp.invoice_xml.tree is not None
    warned = [f for f in insp.findings if f.code != "IRR_TYPE_F"]
    assert codes(insp)[1:] == ["FX_INCOHERENT", "FX_INCOHERENT"]  # no Factur-X XMP, no PDF/A marker
    assert all(f.severity is Severity.WARNING for f in warned)
    assert insp.pdfa == {}


def test_several_invoice_xmls_are_incoherent(settings):
    data = make_pdf_with_files({"factur-x.xml": cii(), "zugferd-invoice.xml": cii(number="OTHER")})
    insp = inspect_pdf(data, settings)
    assert "FX_INCOHERENT" in codes(insp, Severity.ERROR)
    assert insp.invoice_xml.name == "factur-x.xml"
    assert [a.name for a in insp.attachments] == ["zugferd-invoice.xml"]


def test_unknown_guideline_and_non_cii_xml_are_flagged(settings):
    odd = cii(guideline="urn:example:my-own-profile")
    insp = inspect_pdf(make_pdf_with_files({"factur-x.xml": odd}), settings)
    assert any(f.code == "FX_INCOHERENT" and f.value == "urn:example:my-own-profile" for f in insp.findings)
    ubl = b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>'
    insp = inspect_pdf(make_pdf_with_files({"factur-x.xml": ubl}), settings)
    # one fact, one finding: the file type (it was also FX_INCOHERENT before)
    assert any(f.code == "IRR_TYPE_F" and "not a CII" in f.message for f in insp.findings)
    assert codes(insp, Severity.ERROR) == ["IRR_TYPE_F"] and not insp.invoice_xml.cii


def test_the_embedded_cii_is_parsed_once_and_kept(settings):
    insp = inspect_pdf(make_facturx(), settings)
    emb = insp.invoice_xml
    assert emb.cii and emb.problems == () and emb.tree.getroot().tag.endswith("CrossIndustryInvoice")


def test_malformed_embedded_xml_is_returned_for_the_xml_stage(settings):
    insp = inspect_pdf(make_pdf_with_files({"factur-x.xml": b"<rsm:CrossIndustryInvoice"}), settings)
    assert insp.format is Format.FACTURX and insp.invoice_xml.data == b"<rsm:CrossIndustryInvoice"
    assert insp.profile_source["xml"] is None
    assert "IRR_SYNTAX" not in codes(insp)  # reported once, by the XML stage
    assert insp.invoice_xml.tree is None and [f.code for f in insp.invoice_xml.problems] == ["IRR_SYNTAX"]


def test_other_embedded_files_are_attachments(settings):
    insp = inspect_pdf(make_facturx(attachments={"bon.pdf": make_pdf(), "detail.csv": b"a;b"}), settings)
    assert sorted((a.name, a.source) for a in insp.attachments) == [("bon.pdf", "pdf"), ("detail.csv", "pdf")]
    assert all("EmbeddedFiles" in a.where for a in insp.attachments)


def test_guideline_ids_seen_in_the_wild():
    assert profile_from_guideline("urn:cen.eu:en16931:2017:compliant:factur-x.eu:1p0:basic") == "BASIC"
    assert profile_from_guideline("urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:en16931") == "EN 16931"
    assert profile_from_guideline("urn:zugferd.de:2p0:minimum") == "MINIMUM"
    assert profile_from_guideline(
        "urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_2.1") == "XRECHNUNG"
    assert profile_from_guideline(
        "urn:cen.eu:en16931:2017#conformant#urn.cpro.gouv.fr:1p0:extended-ctc-fr") == "EXTENDED"
    assert profile_from_guideline("urn:ferd:CrossIndustryDocument:order:1p0:extended") is None
    assert profile_from_guideline(None) is None
    assert profile_from_xmp("basic-wl") == "BASIC WL" and profile_from_xmp("EN16931") == "EN 16931"


def test_encrypted_pdf_is_refused(settings):
    insp = inspect_pdf(make_encrypted_pdf(), settings)
    assert codes(insp) == ["IRR_PDF_CHIFFRE"] and insp.format is Format.PDF


def test_encrypted_signed_pdf_is_refused_after_its_signature_is_reported(settings):
    insp = inspect_pdf(make_signed_encrypted(make_pki()), settings)  # nobody trusted in this home
    assert codes(insp) == ["SIG_NON_APPROUVEE", "IRR_PDF_CHIFFRE"] and insp.format is Format.PDF_SIGNED
    assert [(s.field_name, s.intact) for s in insp.signatures] == [("Sig1", True)]


@pytest.mark.parametrize("make,what", [
    (make_openaction_js_pdf, "JavaScript action"),
    (make_names_js_pdf, "document JavaScript"),
    (make_launch_pdf, "Launch action"),
])
def test_active_content_is_refused(settings, make, what):
    insp = inspect_pdf(make(), settings)
    hits = [f for f in insp.findings if f.code == "IRR_PDF_ACTIF"]
    assert hits and all(f.severity is Severity.ERROR for f in hits)
    assert any(f.value.startswith(what) for f in hits)
    assert all(f.location.xpath.startswith("PDF /Root") for f in hits)


def test_javascript_on_a_page_is_found(settings):
    w = PdfWriter()
    page = w.add_blank_page(200, 200)
    page[NameObject("/AA")] = DictionaryObject({NameObject("/O"): DictionaryObject({
        NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject("app.beep(0)")})})
    out = io.BytesIO()
    w.write(out)
    insp = inspect_pdf(out.getvalue(), settings)
    assert any(f.code == "IRR_PDF_ACTIF" and "/AA/O" in f.location.xpath for f in insp.findings)


def test_scan_ends_on_action_loops_and_is_bounded(tmp_path):
    assert inspect_pdf(make_action_loop_pdf(), settings_for(tmp_path)).findings == ()
    small = settings_for(tmp_path / "small", pdf={"max_objects": 40})
    [f] = inspect_pdf(make_action_loop_pdf(), small).findings
    assert f.code == "IRR_PDF_ACTIF" and f.severity is Severity.WARNING and "40" in f.message


@pytest.mark.parametrize("make", [make_garbage_pdf, make_cyclic_pages_pdf, lambda: make_deep_pdf(20000),
                                  lambda: b"%PDF-", lambda: b""])
def test_unreadable_pdfs_are_a_finding_never_an_exception(settings, make):
    insp = inspect_pdf(make(), settings)
    assert insp.format is Format.PDF
    [f] = insp.findings
    assert f.code == "IRR_PDF" and f.severity is Severity.ERROR and f.value


def test_every_truncation_of_a_facturx_is_handled(settings):
    data = make_facturx()
    for cut in range(0, len(data), max(1, len(data) // 60)):
        insp = inspect_pdf(data[:cut], settings)
        assert insp.format in (Format.PDF, Format.FACTURX)


def test_a_repaired_pdf_is_read_with_a_warning(settings):
    data = make_pdf()
    broken = data.replace(b"startxref\n", b"startxref\n9").replace(b"\n%%EOF", b"\n%%EOF")
    insp = inspect_pdf(broken, settings)
    assert insp.format is Format.PDF
    assert [(f.code, f.severity) for f in insp.findings] == [("IRR_PDF", Severity.WARNING)]
    assert "repaired" in insp.findings[0].message


def test_an_empty_signature_field_does_not_make_a_signed_pdf(settings):
    insp = inspect_pdf(make_empty_field_pdf(), settings)
    assert insp.format is Format.PDF and insp.signatures == () and insp.findings == ()

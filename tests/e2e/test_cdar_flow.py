"""The reform's life-cycle messages (CDAR D22B) end to end, through folders:
an invoice deposited and routed, the recipient's statuses written as CDAR
beside its CPPStatut and JSON (and only for the parties whose settings ask
for it), statuses sent back as CDAR by the recipient's software changing the
piece, a CDAR from a party without the right refused with a readable reason,
and an intake refusal told as CDAR. Every CDAR written passes the CDAR XSD and
the BR-FR-CDV rules, run for real."""
from __future__ import annotations

import json

import pytest
from lxml import etree

from cdar_support import assert_cdv, party_cdar
from conftest import TEST_TOML, drop, home_with, report_for
from gateway.outputs import cdar_codes as cc
from gateway.rules import directory
from gateway.runtime.service import Gateway
from gateway.store import db
from gateway.store.repository import Store
from invoice_support import COMMUNE_SIRET, SUPPLIER_SIRET, UNKNOWN_SIRET, ubl_invoice

NS = {"rsm": cc.RSM, "ram": cc.RAM, "udt": cc.UDT, "qdt": cc.QDT}


@pytest.fixture()
def gw(tmp_path):
    """The commune's software receives CDAR beside the default formats; the
    supplier ("fournisseur") keeps the default (CPPStatut and JSON)."""
    toml = TEST_TOML + f'[statuses.parties]\n"{COMMUNE_SIRET}" = ["cppstatut", "json", "cdar"]\n' \
                       '"fournisseur_cdar" = ["cppstatut", "json", "cdar"]\n'
    s = home_with(tmp_path / "home", toml)
    directory.import_files(s, directory.demo_files())
    yield s
    db.dispose_all()


def run(settings) -> None:
    Gateway(settings, once=True).run()


def send(settings, partner: str, name: str, data: bytes) -> dict:
    drop(settings, partner, name, data)
    run(settings)
    return report_for(settings, partner, name)


def codes_in(root: etree._Element) -> list[str]:
    return root.xpath("//ram:ReferenceReferencedDocument/ram:ProcessConditionCode/text()", namespaces=NS)


def test_statuses_as_cdar_there_and_back(gw):
    r = send(gw, "fournisseur", "FA-CDAR-1.xml", ubl_invoice(number="FA-CDAR-1"))
    assert r["state"] == "IN_INTEGRE", r
    pid = r["pieces"][0]["piece_id"]
    box = gw.outbox / COMMUNE_SIRET / "statuses"
    # the recipient's three platform statuses, as CDAR beside the CPPStatut and the JSON
    assert sorted(p.name for p in box.glob(f"{pid}.003*")) == [
        f"{pid}.003.cdar.xml", f"{pid}.003.json", f"{pid}.003.xml"]
    root = assert_cdv((box / f"{pid}.003.cdar.xml").read_bytes())
    assert codes_in(root) == ["200", "201", "203"]
    assert root.xpath("//rsm:AcknowledgementDocument/ram:TypeCode/text()", namespaces=NS) == ["305"] * 3
    assert root.xpath("//ram:ReferenceReferencedDocument/ram:IssuerAssignedID/text()",
                      namespaces=NS) == ["FA-CDAR-1"] * 3
    # the supplier did not ask for CDAR: it gets none
    assert not list((gw.outbox / "fournisseur" / "statuses").glob("*.cdar.xml"))

    # the commune's software answers in CDAR: 204 "Prise en charge", naming the invoice as it knows it
    taken = party_cdar(invoice_number="FA-CDAR-1", cdv=204, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET,
                       note="Reçue au service achats")
    assert_cdv(taken)
    r = send(gw, COMMUNE_SIRET, "cdv-204.xml", taken)
    assert r["format"] == "status" and r["state"] == "IN_INTEGRE", r
    assert Store(gw).piece(pid).status == "PRISE_EN_COMPTE_DESTINATAIRE"
    # 205 names several of the gateway's statuses: the one the commune may set now applies
    r = send(gw, COMMUNE_SIRET, "cdv-205.xml", party_cdar(
        invoice_number="FA-CDAR-1", cdv=205, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET))
    assert r["state"] == "IN_INTEGRE", r
    assert Store(gw).piece(pid).status == "SERVICE_FAIT"
    told = sorted(box.glob(f"{pid}.*.cdar.xml"))
    assert len(told) == 3
    for f in told:
        assert_cdv(f.read_bytes())
    last = etree.parse(str(told[-1])).getroot()
    assert codes_in(last) == ["205"]
    assert last.xpath("//rsm:ExchangedDocument/ram:IssuerTradeParty/ram:RoleCode/text()", namespaces=NS) == ["BY"]
    assert last.xpath("//ram:ReferenceReferencedDocument/ram:Status/text()", namespaces=NS) == ["SERVICE_FAIT"]
    # the JSON and the CDAR tell the same CDV code
    sent = json.loads((box / f"{told[-1].name.removesuffix('.cdar.xml')}.json").read_text())
    assert [s["cdv"] for s in sent["statuses"]] == [205]


def test_a_cdar_from_a_party_without_the_right_is_refused(gw):
    r = send(gw, "fournisseur", "FA-CDAR-2.xml", ubl_invoice(number="FA-CDAR-2"))
    pid = r["pieces"][0]["piece_id"]
    # the supplier cannot refuse its own invoice in the buyer's name
    refusal = party_cdar(invoice_number="FA-CDAR-2", cdv=210, seller_siret=SUPPLIER_SIRET,
                         issuer_siret=SUPPLIER_SIRET, role="SE", reason_code="TX_TVA_ERR", reason="Taux erroné")
    assert_cdv(refusal)
    r = send(gw, "fournisseur", "cdv-210.xml", refusal)
    assert r["state"] == "IN_REJETE", r
    err = r["pieces"][0]["errors"][0]
    assert err["code"] == "STATUT_NON_AUTORISE"
    assert "recipient" in err["message"] and "supplier" in err["message"]  # says who may, and who asked
    assert err["location"]["xpath"].endswith("rsm:AcknowledgementDocument[1]/ram:ReferenceReferencedDocument[1]")
    assert Store(gw).piece(pid).status == "MISE_A_DISPOSITION"
    # the commune may; its reason code and text are kept as the motif
    r = send(gw, COMMUNE_SIRET, "cdv-210.xml", party_cdar(
        invoice_number="FA-CDAR-2", cdv=210, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET,
        reason_code="TX_TVA_ERR", reason="Taux de TVA erroné"))
    assert r["state"] == "IN_INTEGRE", r
    piece = Store(gw).piece(pid)
    assert piece.status == "REJETEE"
    told = sorted((gw.outbox / COMMUNE_SIRET / "statuses").glob(f"{pid}.*.cdar.xml"))[-1]
    root = assert_cdv(told.read_bytes())
    assert root.xpath("//ram:SpecifiedDocumentStatus/ram:ReasonCode/text()", namespaces=NS) == ["TX_TVA_ERR"]


def test_unreadable_and_wrong_cdar_are_refused_with_their_reason(gw):
    pid = send(gw, "fournisseur", "FA-CDAR-3.xml", ubl_invoice(number="FA-CDAR-3"))["pieces"][0]["piece_id"]
    # the wrong guideline (the PPF's) and a status the rules refuse (210 without a reason)
    ppf = party_cdar(invoice_number="FA-CDAR-3", cdv=204, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET,
                     guideline="urn.cpro.gouv.fr:1p0:CDV:einvoicingF2")
    r = send(gw, COMMUNE_SIRET, "ppf.xml", ppf)
    assert r["state"] == "IN_REJETE" and r["errors"][0]["code"] == "REJ_SEMAN", r
    assert "BR-FR-CDV-02" in r["errors"][0].get("rule", "")
    bare = party_cdar(invoice_number="FA-CDAR-3", cdv=210, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET)
    r = send(gw, COMMUNE_SIRET, "bare.xml", bare)
    assert r["state"] == "IN_REJETE", r
    assert any(e["code"] == "REJ_SEMAN" and "BR-FR-CDV-15" in (e.get("rule") or "") for e in r["errors"]), r
    # not valid against the CDAR XSD: IRR_SYNTAX with the line
    broken = bare.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"<ram:Oops>380</ram:Oops>")
    r = send(gw, COMMUNE_SIRET, "broken.xml", broken)
    assert r["state"] == "IN_REJETE" and r["errors"][0]["code"] == "IRR_SYNTAX", r
    assert r["errors"][0]["location"]["line"] > 1 and "Oops" in r["errors"][0]["message"]
    assert Store(gw).piece(pid).status == "MISE_A_DISPOSITION"  # none of them changed the piece


def test_an_intake_refusal_told_as_cdar(gw):
    # a partner with "cdar" in its formats gets its refusals as CDAR beside the report: an invoice read and
    # refused (its recipient is unknown) is 213 Rejetée
    r = send(gw, "fournisseur_cdar", "bad.xml", ubl_invoice(number="FA-CDAR-4", recipient_siret=UNKNOWN_SIRET))
    assert r["state"] == "IN_REJETE", r
    assert r["pieces"][0]["errors"][0]["code"] == "DEST_INC", r
    root = assert_cdv((gw.reports_dir("fournisseur_cdar") / f"{r['flow_id']}.cdar.xml").read_bytes())
    assert codes_in(root) == ["213"]
    assert root.xpath("//ram:ReasonCode/text()", namespaces=NS) == ["DEST_INC"]
    assert root.xpath("//ram:IssuerAssignedID/text()", namespaces=NS) == ["FA-CDAR-4"]
    assert root.xpath("//ram:FormattedIssueDateTime/qdt:DateTimeString/text()", namespaces=NS) == ["20240315"]
    # a file that is no invoice at all: 501 Irrecevable
    r = send(gw, "fournisseur_cdar", "empty.xml", b"<nothing/>")
    assert r["state"] == "IN_REJETE", r
    root = assert_cdv((gw.reports_dir("fournisseur_cdar") / f"{r['flow_id']}.cdar.xml").read_bytes())
    assert codes_in(root) == ["501"]
    assert root.xpath("//ram:ReasonCode/text()", namespaces=NS) == ["IRR_TYPE_F"]
    # refused by the EN 16931 rules: still read for its number and date, so a 213 names it
    r = send(gw, "fournisseur_cdar", "sum.xml", ubl_invoice(number="FA-CDAR-6", payable="999.99"))
    assert r["state"] == "IN_REJETE" and r["pieces"][0]["errors"][0]["code"] == "REJ_SEMAN", r
    assert r["pieces"][0]["invoice"]["number"] == "FA-CDAR-6"  # the report says which invoice too
    root = assert_cdv((gw.reports_dir("fournisseur_cdar") / f"{r['flow_id']}.cdar.xml").read_bytes())
    assert codes_in(root) == ["213"] and root.xpath("//ram:ReasonCode/text()", namespaces=NS) == ["REJ_SEMAN"]
    assert root.xpath("//ram:IssuerAssignedID/text()", namespaces=NS) == ["FA-CDAR-6"]
    # the default partner gets no CDAR report
    r = send(gw, "fournisseur", "bad2.xml", ubl_invoice(number="FA-CDAR-5", recipient_siret=UNKNOWN_SIRET))
    assert r["state"] == "IN_REJETE", r
    assert not (gw.reports_dir("fournisseur") / f"{r['flow_id']}.cdar.xml").exists()

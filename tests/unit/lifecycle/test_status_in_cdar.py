"""CDAR (the reform's life-cycle messages) read as status files: recognised
by content, parsed with the locked-down parser, validated against the CDAR
XSD and the BR-FR-CDV rules, each status read back through the machine; a
message that fails is refused with a code, a message and where."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from cdar_support import party_cdar
from gateway.core.config import Settings
from gateway.lifecycle import status_in
from gateway.lifecycle.machine import Machine
from gateway.lifecycle.status_in_cdar import cdar_xsd, cdv_rules, parse_cdar
from gateway.outputs.status_cdar import status_cdar_for
from gateway.outputs.status_files import StatusNotice
from invoice_support import COMMUNE_SIRET, SUPPLIER_SIRET

MACHINE = Machine.load()


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path)


def read(settings: Settings, data: bytes):  # noqa: ANN201
    return status_in.parse_status_file(data, MACHINE, cdar=cdar_xsd(settings),
                                       cdar_rules=lambda d: cdv_rules(settings, d))


def test_recognised_by_content_whatever_its_prefix():
    data = party_cdar(invoice_number="FA-1", cdv=204, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET)
    assert status_in.is_status_file(data)
    unprefixed = data.replace(b"rsm:", b"").replace(b"xmlns:rsm=", b"xmlns=")
    assert status_in.is_status_file(unprefixed)
    # the root's name alone is not enough: the CDAR namespace must be there
    assert not status_in.is_status_file(b"<CrossDomainAcknowledgementAndResponse xmlns='urn:other'/>")


def test_a_party_cdar_read_as_a_status_request(settings):
    data = party_cdar(invoice_number="FA-1", cdv=210, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET,
                      reason_code="TX_TVA_ERR", reason="Taux erroné", note="voir avoir")
    requests, problems = read(settings, data)
    assert problems == []
    [req] = requests
    # 210 names several of the gateway's statuses: the first, and the others for the piece's state to choose
    assert req.status == "REJETEE" and "REFUSEE_1" in req.alternatives and "REFUSEE_MOE" in req.alternatives
    assert (req.invoice_number, req.piece_id, req.supplier_id) == ("FA-1", None, SUPPLIER_SIRET)
    assert (req.reason, req.comment) == ("TX_TVA_ERR: Taux erroné", "voir avoir")
    assert req.at == datetime(2026, 9, 14, 9, 30, tzinfo=timezone.utc)
    assert req.location.xpath.endswith("rsm:AcknowledgementDocument[1]/ram:ReferenceReferencedDocument[1]")


def test_the_gateways_own_cdar_reads_back_exactly(settings):
    note = StatusNotice(piece_id="F20260914080000-1a2b3c4d-001", invoice_number="FA-2", invoice_date=date(2026, 9, 1),
                        cadre="A9", supplier_id=SUPPLIER_SIRET, supplier_name="S", supplier_country="FR",
                        debtor_siret=COMMUNE_SIRET, debtor_name="C", service_code=None, status="VALIDEE_1",
                        previous=None, reason=None, comment="ok", at=datetime(2026, 9, 14, tzinfo=timezone.utc),
                        by_role="validator1", by_id="49990010800014")
    data = status_cdar_for([note], MACHINE, platform_id="GTW001")("X", "X")
    [req], problems = read(settings, data)
    assert problems == []
    # ram:Status names the gateway's status among those 205 covers: no alternatives
    assert (req.status, req.alternatives, req.comment) == ("VALIDEE_1", (), "ok")


def test_refused_with_code_message_and_place(settings):
    base = party_cdar(invoice_number="FA-1", cdv=204, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET)
    # not the CDAR XSD's: IRR_SYNTAX at its line
    [], [p] = read(settings, base.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"<ram:Oops>380</ram:Oops>"))
    assert p.code == "IRR_SYNTAX" and "Oops" in p.message and p.location.line > 10
    # the PPF's guideline: not for the gateway
    [], [p] = read(settings, base.replace(b"CDV:invoice", b"CDV:einvoicingF2"))
    assert (p.code, p.rule) == ("REJ_SEMAN", "BR-FR-CDV-02")
    # the BR-FR-CDV rules, run for real: 210 needs a reason
    bare = party_cdar(invoice_number="FA-1", cdv=210, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET)
    [], found = read(settings, bare)
    assert any(f.code == "REJ_SEMAN" and f.rule and f.rule.startswith("BR-FR-CDV-15") for f in found), found
    # a CDV code none of the gateway's statuses has (202 "Reçue par la plateforme")
    received = party_cdar(invoice_number="FA-1", cdv=202, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET,
                          type_code="305", role="WK")
    [], [p] = read(settings, received)
    assert p.code == "STATUT_INCONNU" and "202" in p.message
    # a DOCTYPE never reaches the parser
    [], [p] = read(settings, b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>' + base.split(b"?>", 1)[1])
    assert (p.code, p.rule) == ("IRR_SYNTAX", "no-doctype")


def test_an_altered_cdar_xsd_refuses_every_cdar(settings, tmp_path):
    data = party_cdar(invoice_number="FA-1", cdv=204, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET)
    [], [p] = parse_cdar(data, MACHINE, tmp_path / "missing.xsd")
    assert p.code == "ERR_VALIDATEUR"

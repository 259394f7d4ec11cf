"""Status files and flow refusals as the reform's CDAR (CDV) messages: every
status with a CDV code written, each message valid against the CDAR XSD and
the BR-FR-CDV rules (run for real); the codes, phases, issuers and reasons as
cdar.toml and the rules say; what cannot be told is refused, not faked."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from lxml import etree

from cdar_support import assert_cdv, cdv_problems
from gateway.lifecycle.machine import Machine
from gateway.outputs import cdar_codes as cc
from gateway.outputs.registry import OUTPUTS
from gateway.outputs.reports_cdar import report_cdar
from gateway.outputs.status_cdar import status_cdar_for
from gateway.outputs.status_files import StatusFileError, StatusNotice

NS = {"rsm": cc.RSM, "ram": cc.RAM, "udt": cc.UDT, "qdt": cc.QDT}
MACHINE = Machine.load()
AT = datetime(2026, 9, 14, 8, 0, tzinfo=timezone.utc)


def notice(status: str, by_role: str = "recipient", **kw) -> StatusNotice:
    base = dict(piece_id="F20260914080000-1a2b3c4d-001", invoice_number="FA-2026-7", invoice_date=date(2026, 9, 1),
                cadre="A1", supplier_id="79990011300017", supplier_name="Fournitures Exemple SARL",
                supplier_country="FR", debtor_siret="21990001600011", debtor_name="Commune de Valbrune",
                service_code="ACHATS", status=status, previous=None, reason=None, comment=None, at=AT,
                by_role=by_role, type_code="380", by_id=None)
    base.update(kw)
    return StatusNotice(**base)


def write(*notices: StatusNotice) -> etree._Element:
    return assert_cdv(status_cdar_for(notices, MACHINE, platform_id="GTW001", flow_id="F1.001")("COMMUNE", "COMMUNE"))


def xp(root: etree._Element, path: str) -> list[str]:
    return root.xpath(path, namespaces=NS)


TOLD = [s for s in MACHINE.statuses() if cc.load().code(s.cdv) is not None]


def test_registered_as_cdar_with_its_own_suffix():
    assert OUTPUTS["cdar"].suffix == ".cdar.xml"
    assert list(OUTPUTS)[-1] == "json"  # connectors poll for the JSON: written last


@pytest.mark.parametrize("status", [s.name for s in TOLD])
def test_every_status_with_a_cdv_code_passes_the_xsd_and_the_rules(status):
    info = MACHINE.info(status)
    code = cc.load().code(info.cdv)
    reason = "Pièce justificative absente" if info.needs_reason or code.reason else None
    # a platform status is set by the platform; the others by the party that holds the piece
    role = "platform" if code.type_code == cc.TRANSMISSION else "recipient"
    root = write(notice(status, role, reason=reason, comment="vu"))
    assert xp(root, "//ram:ProcessConditionCode/text()") == [str(info.cdv)]
    assert xp(root, "//rsm:AcknowledgementDocument/ram:TypeCode/text()") == [code.type_code]
    assert xp(root, "//ram:ReferenceReferencedDocument/ram:Status/text()") == [status]
    assert xp(root, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID/text()") == [
        "urn.cpro.gouv.fr:1p0:CDV:invoice"]
    if code.reason and reason:  # a free-text motif: the status's reason code, the text beside it
        assert xp(root, "//ram:SpecifiedDocumentStatus/ram:ReasonCode/text()") == [code.reason]
        assert xp(root, "//ram:SpecifiedDocumentStatus/ram:Reason/text()") == [reason]


def test_the_checker_fails_what_the_rules_refuse():
    # not a test of the gateway: proof that the checker used everywhere can say no
    good = status_cdar_for([notice("REJETEE", reason="TX_TVA_ERR")], MACHINE, platform_id="GTW001")("P", "P")
    assert cdv_problems(good) == []
    no_reason = etree.fromstring(good)
    for st in xp(no_reason, "//ram:SpecifiedDocumentStatus"):
        st.getparent().remove(st)
    problems = cdv_problems(etree.tostring(no_reason))
    assert any(p.startswith("BR-FR-CDV-15") for p in problems), problems
    bad_guideline = good.replace(b"CDV:invoice", b"CDV:other")
    assert any(p.startswith("BR-FR-CDV-02") for p in cdv_problems(bad_guideline))
    assert any(p.startswith("BR-FR-CDV-09") for p in cdv_problems(good.replace(b"<ram:TypeCode>23<",
                                                                                b"<ram:TypeCode>2x<")))
    assert cdv_problems(good.replace(b"ram:ProcessCondition>", b"ram:Condition>"))[0].startswith("XSD")


def test_reasons_follow_the_rules_of_each_status():
    # a reform code at the head of the motif is used when the status allows it
    root = write(notice("REJETEE", reason="TX_TVA_ERR : taux de 19,6 %"))
    assert xp(root, "//ram:ReasonCode/text()") == ["TX_TVA_ERR"]
    # a code the status does not allow (AUTRE on a refusal outside B2G) gives way to the status's default
    root = write(notice("REJETEE", reason="AUTRE raison"))
    assert xp(root, "//ram:ReasonCode/text()") == ["NON_CONFORME"]
    assert xp(root, "//ram:Reason/text()") == ["AUTRE raison"]
    # a comment alone, on a status that needs no reason
    root = write(notice("SERVICE_FAIT", comment="Livraison conforme"))
    assert xp(root, "//ram:ReasonCode") == [] and xp(root, "//ram:IncludedNote/ram:Content/text()") == [
        "Livraison conforme"]


def test_issuers_and_parties():
    root = write(notice("DEPOSEE", "platform"), notice("EN_COURS_ACHEMINEMENT", "platform"),
                 notice("MISE_A_DISPOSITION", "platform"))
    assert xp(root, "//ram:ProcessConditionCode/text()") == ["200", "201", "203"]
    assert xp(root, "//rsm:ExchangedDocument/ram:IssuerTradeParty/ram:RoleCode/text()") == ["WK"]
    assert xp(root, "//rsm:ExchangedDocument/ram:IssuerTradeParty/ram:GlobalID") == []
    assert xp(root, "//rsm:ExchangedDocument/ram:RecipientTradeParty/ram:Name/text()") == ["COMMUNE"]
    # the seller by its SIREN (BT-30's legal id) and its SIRET
    assert xp(root, "//ram:ReferenceReferencedDocument/ram:IssuerTradeParty/ram:GlobalID/text()")[:2] == [
        "799900113", "79990011300017"]
    root = write(notice("SERVICE_FAIT"))
    assert xp(root, "//rsm:ExchangedDocument/ram:IssuerTradeParty/ram:RoleCode/text()") == ["BY"]
    assert xp(root, "//rsm:ExchangedDocument/ram:IssuerTradeParty/ram:GlobalID[@schemeID='0002']/text()") == [
        "219900016"]
    # a validator by its own SIRET
    root = write(notice("VALIDEE_1", "validator1", by_id="49990010800014"))
    assert xp(root, "//rsm:ExchangedDocument/ram:IssuerTradeParty/ram:RoleCode/text()") == ["PE"]
    assert "499900108" in xp(root, "//rsm:ExchangedDocument/ram:IssuerTradeParty/ram:GlobalID/text()")
    # a tacit validation the platform sets is issued in the recipient's name
    root = write(notice("ABSENCE_VALIDATION_1_HORS_DELAI", "platform"))
    assert xp(root, "//rsm:ExchangedDocument/ram:IssuerTradeParty/ram:RoleCode/text()") == ["BY"]


def test_a_change_of_both_phases_tells_the_phase_of_its_last_status():
    root = write(notice("VALIDEE_1", "validator1", by_id="49990010800014"),
                 notice("EN_COURS_ACHEMINEMENT", "platform"), notice("MISE_A_DISPOSITION", "platform"))
    assert xp(root, "//ram:ProcessConditionCode/text()") == ["201", "203"]


def test_what_cannot_be_told_is_refused():
    with pytest.raises(StatusFileError, match="no status of this change has a CDV code"):
        status_cdar_for([notice("MANDATEE")], MACHINE, platform_id="GTW001")
    with pytest.raises(StatusFileError, match="no invoice date"):
        status_cdar_for([notice("SERVICE_FAIT", invoice_date=None)], MACHINE, platform_id="GTW001")
    with pytest.raises(StatusFileError, match="SIRET is not known"):
        status_cdar_for([notice("VALIDEE_1", "validator1")], MACHINE, platform_id="GTW001")
    # a foreign seller has no legal id the rules know: no seller block, still valid
    root = write(notice("SERVICE_FAIT", supplier_id="DE123456789", supplier_country="DE"))
    assert xp(root, "//ram:ReferenceReferencedDocument/ram:IssuerTradeParty") == []


def test_codes_file_is_checked_when_loaded(tmp_path):
    codes = cc.load()
    assert codes.guideline == "urn.cpro.gouv.fr:1p0:CDV:invoice"
    assert codes.code(212) is None  # needs the amount received: never written
    for c in codes.codes:
        assert c.reason is None or codes.allowed(c, c.reason)
    bad = cc.packaged_file().read_text(encoding="utf-8").replace('reason = "NON_CONFORME"', 'reason = "AUTRE"')
    (tmp_path / "cdar.toml").write_text(bad, encoding="utf-8")
    with pytest.raises(cc.CdarCodesError, match=r"reason 'AUTRE' is not among its reasons"):
        cc.load(tmp_path / "cdar.toml")


def _report(**kw) -> dict:
    base = {"report_version": 1, "flow_id": "F20260914080000-1a2b3c4d", "partner": "fournisseur",
            "file": "lot\x01.zip", "processed_at": "2026-09-14T08:00:00Z", "format": "ubl-invoice",
            "state": "IN_REJETE", "errors": [], "pieces": []}
    base.update(kw)
    return base


def _piece(index: int, code: str, invoice: dict | None = None, valid: bool = False) -> dict:
    p = {"index": index, "name": f"m{index}.xml", "valid": valid,
         "errors": [] if valid else [{"code": code, "message": "why", "message_fr": "pourquoi", "severity": "error"}]}
    if invoice:
        p["invoice"] = invoice
    return p


def test_flow_refusals_as_cdar():
    inv = {"number": "FA-1", "date": "2026-09-01", "supplier": "79990011300017"}
    report = _report(state="IN_INTEGRE_PARTIEL", pieces=[
        _piece(1, "", inv, valid=True), _piece(2, "SIRET_ERR", inv), _piece(3, "IRR_SYNTAX"),
        _piece(4, "REJ_SEMAN"), _piece(5, "ERR_VALIDATEUR", inv)])
    root = assert_cdv(report_cdar(report))
    # accepted: told by its status files; read and refused: 213; unreadable: 501; the rest: the report alone
    assert xp(root, "//ram:ProcessConditionCode/text()") == ["213", "501"]
    assert xp(root, "//ram:ReasonCode/text()") == ["REJ_COH", "IRR_SYNTAX"]  # SIRET_ERR: not a 213 reason
    assert xp(root, "//ram:IssuerAssignedID/text()") == ["FA-1", "m3.xml"]
    # a file refused whole: one 501 about it, its hostile name made safe
    root = assert_cdv(report_cdar(_report(errors=[{"code": "IRR_LOT", "message": "zip bomb", "severity": "error"}])))
    assert xp(root, "//ram:ReasonCode/text()") == ["IRR_TYPE_F"]
    assert xp(root, "//ram:IssuerAssignedID/text()") == ["lot?.zip"]
    # nothing the reform names: no message
    assert report_cdar(_report(state="IN_INTEGRE", pieces=[_piece(1, "", inv, valid=True)])) is None
    assert report_cdar(_report(errors=[{"code": "DOUBLON", "message": "again", "severity": "error"}])) is None
    assert report_cdar(_report(format="status", pieces=[_piece(1, "STATUT_INTERDIT")])) is None
    for gateways_own in ("ERR_INTERNE", "ERR_INTERROMPU", "ERR_VALIDATEUR"):  # never a 501: the file was not judged
        assert report_cdar(_report(errors=[{"code": gateways_own, "message": "x", "severity": "error"}])) is None


def test_the_same_message_for_each_receiver_but_its_name():
    write_for = status_cdar_for([notice("SERVICE_FAIT")], MACHINE, platform_id="GTW001", flow_id="F1.002")
    a, b = write_for("A", "Alpha"), write_for("B", "Beta")
    assert a.replace(b"Alpha", b"Beta") == b

"""French public-sector controls, each failing on its own, with the checks that
depend on it skipped; the directory checks against the demo directory."""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from gateway.core import config
from gateway.rules import directory
from gateway.rules.controls import CONTROLS, invoice_key, run_controls
from gateway.rules.mapping.read import map_piece
from gateway.core.invoice import Invoice, Party, Totals, Validator, siret_error
from gateway.core.records import Format, Severity, Verdict
from gateway.routing.parties import new_piece

from invoice_support import (
    COMMUNE_SIRET, DDT_MOE_SIRET, DEPARTEMENT_SIRET, HOPITAL_SIRET, LA_POSTE_SIRET, OPH_MOA_SIRET, SUPPLIER_SIRET,
    SYNDICAT_SIRET, TITULAIRE_SIRET, UNIVERSITE_SIRET, UNKNOWN_SIRET, cii_invoice, parse, ubl_aife_invoice,
    ubl_creditnote, ubl_invoice,
)

WORKS = dict(recipient_siret=OPH_MOA_SIRET, service_code="TRAVAUX")  # an A4, A10... goes to the OPH, a MOA

NAMES = [c.name for c in CONTROLS]
DIRECTORY_CHECKS = [c.name for c in CONTROLS if c.uses_directory]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = config.load(tmp_path_factory.mktemp("home"))
    reports = directory.import_files(s, directory.demo_files())
    assert all(r.ok for r in reports)
    return s


def piece(data: bytes, settings) -> Invoice:
    invoice, findings = map_piece(parse(data), settings)
    assert invoice is not None and not [f for f in findings if f.severity >= Severity.ERROR], findings
    return invoice


def outcomes(report) -> dict[str, str]:
    return {c.name: c.outcome for c in report.checks}


@pytest.mark.parametrize("data", [
    ubl_invoice(), ubl_creditnote(), cii_invoice(), cii_invoice(type_code=381),
    ubl_aife_invoice(), ubl_invoice(cadre="A9", validator_siret=TITULAIRE_SIRET),
    ubl_invoice(recipient_siret=HOPITAL_SIRET, service_code=None),
    ubl_invoice(recipient_siret=DEPARTEMENT_SIRET, service_code=None),
    ubl_invoice(recipient_siret=UNIVERSITE_SIRET, service_code=None, engagement=None),
    ubl_invoice(recipient_siret=OPH_MOA_SIRET, cadre="A4", service_code="TRAVAUX"),
    ubl_invoice(supplier_siret=LA_POSTE_SIRET),
    ubl_invoice(supplier_siret=None, supplier_country="DE", supplier_vat="DE123456789"),
    ubl_invoice(cadre="A4", moe_siret=DDT_MOE_SIRET, **WORKS),
    cii_invoice(cadre="A13", validator_siret=TITULAIRE_SIRET, validator2_siret=COMMUNE_SIRET, moe_siret=DDT_MOE_SIRET,
                **WORKS),
], ids=["ubl", "ubl-credit", "cii", "cii-credit", "aife", "a9-validator", "engagement-given", "either-one",
        "nothing-required", "works-to-moa", "la-poste", "foreign-supplier", "works-with-moe", "two-validators-and-moe"])
def test_valid_pieces_pass_every_check(settings, data):
    report = run_controls(piece(data, settings), settings, directory=True)
    assert report.findings == () and report.passed
    assert [c.name for c in report.checks] == NAMES
    assert set(outcomes(report).values()) == {"passed"}
    assert all(c.detail and c.used for c in report.checks)
    assert report.structure is not None


# (builder call, failing checks, codes, field the finding points at)
FAILURES = {
    "supplier-key": (lambda: ubl_invoice(supplier_siret="79990011300018"), ["supplier-siret"], ["SIRET_ERR"],
                     "supplier.siret"),
    "supplier-short": (lambda: cii_invoice(supplier_siret="7999001130"), ["supplier-siret"], ["SIRET_ERR"],
                       "supplier.siret"),
    "supplier-missing": (lambda: ubl_invoice(supplier_siret=None), ["supplier-siret"], ["SIRET_ERR"], None),
    "la-poste-sum": (lambda: ubl_invoice(supplier_siret="35600000000016"), ["supplier-siret"], ["SIRET_ERR"],
                     "supplier.siret"),
    "recipient-key": (lambda: ubl_invoice(recipient_siret="21990001600012"), ["recipient-siret"], ["SIRET_ERR"],
                      "recipient.siret"),
    "recipient-letters": (lambda: cii_invoice(recipient_siret="2199000160001A"), ["recipient-siret"], ["SIRET_ERR"],
                          "recipient.siret"),
    "recipient-missing": (lambda: ubl_invoice(recipient_siret=None), ["recipient-siret"], ["SIRET_ERR"], None),
    "currency": (lambda: cii_invoice(currency="EURO"), ["mandatory"], ["REJ_SEMAN"], "currency"),
    "number-21": (lambda: ubl_invoice(number="F" * 21), ["lengths"], ["REJ_CONT_B2G"], "invoice_number"),
    "engagement-51": (lambda: cii_invoice(engagement="E" * 51), ["lengths"], ["REJ_CONT_B2G"], "engagement_number"),
    "contract-51": (lambda: ubl_invoice(contract="M" * 51), ["lengths"], ["REJ_CONT_B2G"], "contract_number"),
    "service-101": (lambda: ubl_invoice(recipient_siret=UNIVERSITE_SIRET, service_code="S" * 101), ["lengths"],
                    ["REJ_CONT_B2G"], "service_code"),
    "credit-not-381": (lambda: ubl_creditnote(type_code=261), ["credit-note"], ["REJ_CONT_B2G"], "type_code"),
    "type-751": (lambda: ubl_invoice(type_code=751), ["credit-note"], ["REJ_CONT_B2G"], "type_code"),
    "negative-invoice": (lambda: ubl_invoice(lines=[("Remboursement", -2, "10")]), ["credit-note"], ["REJ_CONT_B2G"],
                         "totals.payable"),
    "negative-credit": (lambda: cii_invoice(type_code=381, lines=[("Avoir", -1, "10")]), ["credit-note"],
                        ["REJ_CONT_B2G"], "totals.payable"),
    "reserved-service": (lambda: ubl_invoice(service_code="FACTURES_PUBLIQUES"), ["reserved-service"],
                         ["REJ_CONT_B2G"], "service_code"),
    "a9-no-validator": (lambda: ubl_invoice(cadre="A9"), ["validator"], ["REJ_CONT_B2G"], "cadre.bt23"),
    "a12-no-validator-aife": (lambda: ubl_aife_invoice(cadre="A12"), ["validator"], ["REJ_CONT_B2G"],
                              "cadre.extension"),
    "a10-bad-validator": (lambda: cii_invoice(cadre="A10", recipient_siret=OPH_MOA_SIRET, service_code="TRAVAUX",
                                              validator_siret="49990010800015"), ["validator"], ["SIRET_ERR"],
                          "validator.siret"),
    "unknown-recipient": (lambda: ubl_invoice(recipient_siret=UNKNOWN_SIRET), ["recipient-known"], ["DEST_INC"],
                          "recipient.siret"),
    "inactive-recipient": (lambda: ubl_invoice(recipient_siret=SYNDICAT_SIRET), ["recipient-active"], ["DEST_ERR"],
                           "recipient.siret"),
    "service-missing": (lambda: ubl_invoice(service_code=None), ["service-required"], ["REJ_CONT_B2G"], None),
    "service-unknown": (lambda: ubl_invoice(service_code="COMPTA"), ["service-exists"], ["REJ_CONT_B2G"],
                        "service_code"),
    "service-inactive": (lambda: cii_invoice(service_code="ANCIEN"), ["service-exists"], ["REJ_CONT_B2G"],
                         "service_code"),
    "engagement-missing": (lambda: ubl_invoice(recipient_siret=HOPITAL_SIRET, service_code=None, engagement=None),
                           ["engagement-required"], ["REJ_CONT_B2G"], None),
    "service-needs-engagement": (lambda: ubl_invoice(service_code="VOIRIE", engagement=None),
                                 ["engagement-required"], ["REJ_CONT_B2G"], None),
    "neither-one": (lambda: cii_invoice(recipient_siret=DEPARTEMENT_SIRET, service_code=None, engagement=None),
                    ["service-or-engagement"], ["REJ_CONT_B2G"], None),
    "works-not-to-moa": (lambda: ubl_invoice(cadre="A4"), ["moa"], ["REJ_CONT_B2G"], "recipient.siret"),
    "invoice-to-moa-only": (lambda: ubl_invoice(recipient_siret=OPH_MOA_SIRET, service_code="TRAVAUX"), ["moa"],
                            ["REJ_CONT_B2G"], "recipient.siret"),
    "validator-unknown": (lambda: ubl_invoice(cadre="A9", validator_siret=SUPPLIER_SIRET), ["validator-known"],
                          ["REJ_CONT_B2G"], "validator.siret"),
    "validator-service-unknown": (lambda: ubl_invoice(cadre="A12", validator_siret=COMMUNE_SIRET,
                                                      validator_service="NOPE"), ["validator-known"],
                                  ["REJ_CONT_B2G"], "validator.service"),
    "a10-bad-validator2": (lambda: cii_invoice(cadre="A10", validator_siret=TITULAIRE_SIRET,
                                               validator2_siret="21990001600012", **WORKS), ["validator2"],
                           ["SIRET_ERR"], "validator2.siret"),
    "a12-validator2-unknown": (lambda: ubl_invoice(cadre="A12", validator_siret=TITULAIRE_SIRET,
                                                   validator2_siret=SUPPLIER_SIRET), ["validator2-known"],
                               ["REJ_CONT_B2G"], "validator2.siret"),
    "a4-bad-moe": (lambda: ubl_invoice(cadre="A4", moe_siret="27990007000013", **WORKS), ["moe"], ["SIRET_ERR"],
                   "moe.siret"),
    "a7-moe-inactive": (lambda: cii_invoice(cadre="A7", moe_siret=SYNDICAT_SIRET, **WORKS), ["moe-known"],
                        ["REJ_CONT_B2G"], "moe.siret"),
}


@pytest.mark.parametrize("build, failing, codes, field", FAILURES.values(), ids=FAILURES.keys())
def test_each_control_fails_alone(settings, build, failing, codes, field):
    data = build()
    invoice = piece(data, settings)
    report = run_controls(invoice, settings, directory=True)
    got = outcomes(report)
    assert [n for n in NAMES if got[n] == "failed"] == failing
    assert [f.code for f in report.findings] == codes
    for f in report.findings:
        assert f.message and f.message_fr and f.message != f.message_fr and f.stage == "controls"
        if field:
            assert f.location == invoice.location(field) and f.location.line
            assert f.value and f.value in data.decode().splitlines()[f.location.line - 1]
    # what depends on a failed check is skipped, and says why
    for c in report.checks:
        if c.outcome == "skipped":
            assert c.detail.startswith("because ") and ("failed" in c.detail or "skipped" in c.detail)


def test_dependent_checks_are_skipped_not_passed(settings):
    report = run_controls(piece(ubl_invoice(recipient_siret="21990001600012"), settings), settings, directory=True)
    checks = {c.name: c for c in report.checks}
    assert checks["recipient-known"].detail == "because recipient-siret failed"
    assert checks["recipient-active"].detail == "because recipient-known was skipped"
    for name in ("service-required", "service-exists", "engagement-required", "service-or-engagement", "moa"):
        assert checks[name].outcome == "skipped"
    assert checks["validator-known"].outcome == "passed"  # does not depend on the recipient

    report = run_controls(piece(ubl_invoice(service_code="FACTURES_PUBLIQUES"), settings), settings, directory=True)
    assert report.check("service-exists").detail == "because reserved-service failed"


def test_without_directory_the_directory_checks_are_skipped(settings):
    # an unknown recipient is not refused when no directory is loaded
    report = run_controls(piece(ubl_invoice(recipient_siret=UNKNOWN_SIRET), settings), settings, directory=False)
    assert report.passed and report.structure is None
    for c in report.checks:
        if c.name in DIRECTORY_CHECKS:
            assert (c.outcome, c.detail) == ("skipped", "no directory loaded")
        else:
            assert c.outcome == "passed"


def test_several_failures_are_all_reported(settings):
    data = ubl_invoice(number="N" * 25, service_code="FACTURES_PUBLIQUES", cadre="A9",
                       supplier_siret="79990011300018")
    report = run_controls(piece(data, settings), settings, directory=True)
    assert sorted(f.code for f in report.findings) == ["REJ_CONT_B2G", "REJ_CONT_B2G", "REJ_CONT_B2G", "SIRET_ERR"]
    assert {c.name for c in report.checks if c.outcome == "failed"} == {
        "supplier-siret", "lengths", "reserved-service", "validator"}


def test_missing_data_is_reported_and_credit_check_skipped(settings):
    bare = Invoice(syntax="ubl", supplier=Party(siret=SUPPLIER_SIRET), recipient=Party(siret=COMMUNE_SIRET))
    report = run_controls(bare, settings, directory=False)
    assert [f.rule for f in report.findings] == ["BR-02", "BR-03", "BR-04", "BR-05", "BR-13", "BR-14", "BR-15"]
    assert {f.code for f in report.findings} == {"REJ_SEMAN"}
    assert report.check("credit-note").detail == "because mandatory failed"


def test_report_carries_the_recipient_and_its_service(settings):
    report = run_controls(piece(ubl_invoice(service_code="VOIRIE"), settings), settings, directory=True)
    assert report.structure.identifiant == COMMUNE_SIRET and report.structure.service_required
    assert report.service.code == "VOIRIE" and report.service.engagement_required


def test_siret_rules():
    assert siret_error(COMMUNE_SIRET) is None
    assert siret_error("35600000000048") is None  # La Poste head office: Luhn
    assert siret_error(LA_POSTE_SIRET) is None  # other La Poste sites: digit sum multiple of 5
    assert "14 digits" in siret_error("219 900 016 00011")[0]
    assert "check key" in siret_error("21990001600012")[0]


def test_invoice_key_is_the_same_across_syntaxes(settings):
    a = piece(ubl_invoice(number="FA-77"), settings)
    b = piece(cii_invoice(number="FA-77"), settings)
    assert invoice_key(a) == invoice_key(b) == (SUPPLIER_SIRET, "FA-77", 2024)
    assert invoice_key(piece(ubl_invoice(number="FA-77", issue_date="2025-01-02"), settings))[2] == 2025
    foreign = replace(a, supplier=Party(vat_id="DE123456789"), issue_date=None)
    assert invoice_key(foreign) == ("DE123456789", "FA-77", None)


def test_piece_types():
    base = Invoice(syntax="ubl", type_code=380, totals=Totals(net=Decimal("1")), issue_date=date(2024, 1, 1))
    assert replace(base, cadre="A1").piece_type == "facture"
    assert replace(base, cadre="A1", type_code=381).piece_type == "avoir"
    assert replace(base, cadre="A1", type_code=386).piece_type == "facture d'acompte"
    assert replace(base, cadre="A4").piece_type == "projet de décompte mensuel"
    assert replace(base, cadre="A19").piece_type == "état d'acompte validé"
    assert replace(base, cadre="A8").piece_type == "décompte général et définitif"


def test_parties_outside_their_cadre_are_not_checked(settings):
    """A validator or MOE the cadre does not use is ignored (routing never waits for it)."""
    report = run_controls(piece(ubl_invoice(validator2_siret=UNKNOWN_SIRET, moe_siret=SUPPLIER_SIRET), settings),
                          settings, directory=True)
    assert report.passed
    assert report.check("moe").detail == "cadre A1 needs no maîtrise d'oeuvre (MOE) (the one given is ignored)"


def test_routing_files_the_supplier_under_its_invoice_key(settings):
    """Status files find a piece by Piece.supplier_id: the very supplier REJ_UNI registers."""
    inv = piece(ubl_invoice(number="FA-78"), settings)
    for supplier in (inv.supplier, Party(vat_id=" DE123456789 "), Party(name=" Beispiel GmbH ")):
        one = replace(inv, supplier=supplier)
        verdict = Verdict(index=1, name="f.xml", format=Format.UBL_INVOICE, invoice=one)
        assert new_piece("F1", "acme", "F1-001", verdict, {}).supplier_id == invoice_key(one)[0]


def test_validator_levels(settings):
    inv = piece(ubl_invoice(), settings)
    assert inv.validator_levels == 0
    assert replace(inv, validator=Validator(TITULAIRE_SIRET)).validator_levels == 1
    assert replace(inv, validator=Validator(TITULAIRE_SIRET), validator2=Validator(COMMUNE_SIRET),
                   moe=Validator(DDT_MOE_SIRET)).validator_levels == 2
    assert replace(inv, validator=Validator(service="S")).validator_levels == 0  # a service alone is no validator

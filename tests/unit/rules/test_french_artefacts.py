"""The French reform's rule sets as shipped and as used: listed in the
manifest and by `gateway rules list`, run by `gateway validate --profile
fr-ctc` and by a deposit, and never a pass when they cannot run (missing from
the artefacts, or not compiling)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from conftest import drop, gateway_cli, report_for
from gateway.core.config import Settings
from gateway.core.records import FlowState
from gateway.pipeline.evaluate import evaluate_file
from gateway.rules import manifest
from fr_support import EXTENDED_CTC_FR, fr_cii_invoice, fr_ubl_invoice
from invoice_support import ubl_invoice

SHIPPED = manifest.packaged_root()
FRENCH = ("br-fr-flux2", "extended-ctc-fr")


def without_french_rules(dest: Path) -> Path:
    """A copy of schemas/ whose manifest and folders hold no French rules, the others intact."""
    shutil.copytree(SHIPPED, dest, ignore=shutil.ignore_patterns("fr-ctc"))
    text = (dest / manifest.MANIFEST).read_text(encoding="utf-8")
    head, *blocks = re.split(r"\n(?=\[\[artefact\]\])", text)
    kept = [b for b in blocks if not any(f'id = "{i}"' in b for i in FRENCH)]
    assert len(kept) == len(blocks) - 2
    (dest / manifest.MANIFEST).write_text("\n".join([head, *kept]), encoding="utf-8")
    return dest


def test_the_french_artefacts_are_in_the_manifest():
    m = manifest.require(None)
    ids = {a.id: a for a in m.artefacts}
    assert set(FRENCH) <= set(ids)
    files = {p for i in FRENCH for p, _ in ids[i].files}
    for syntax in ("UBL", "CII"):
        assert f"fr-ctc/{syntax}/EN16931/2xslt/BR-FR-Flux2-Schematron-{syntax}.xslt" in files
        assert f"fr-ctc/{syntax}/EXTENDED-CTC-FR/2xslt/EXTENDED-CTC-FR-{syntax}.xslt" in files
        assert f"fr-ctc/{syntax}/EXTENDED-CTC-FR/schematron/EXTENDED-CTC-FR-{syntax}.sch" in files
    assert all(ids[i].upstream.startswith("fnfempe/France_RFE@e9520ce398cc99bed4bab493773a494af8ca5aff ")
               for i in FRENCH)
    assert (SHIPPED / "fr-ctc" / "NOTICE").is_file() and (SHIPPED / "fr-ctc" / "LICENSE-Apache-2.0.txt").is_file()


def test_missing_french_rules_refuse_the_piece_never_pass_it(tmp_path):
    s = Settings(home=tmp_path / "home", artefacts_dir=without_french_rules(tmp_path / "artefacts"))
    for data, selection in ((fr_ubl_invoice(), "fr-ctc"), (fr_cii_invoice(guideline=EXTENDED_CTC_FR), "chorus")):
        ev = evaluate_file(data, "a.xml", s, selection=selection)
        (f,) = ev.verdicts[0].errors
        assert ev.state is FlowState.IN_REJETE
        assert f.code == "ERR_VALIDATEUR" and "rule set" in f.message and "is not listed in" in f.message
        assert f.message.startswith("The business rules could not be checked: ")
        assert not any(c.name in ("br-fr", "extended-ctc-fr") and c.outcome == "passed"
                       for c in ev.verdicts[0].checks)
    # the other rules are untouched: a plain invoice's default verdict
    assert evaluate_file(ubl_invoice(), "b.xml", s).state is FlowState.IN_INTEGRE


def test_a_br_fr_rule_set_that_does_not_compile_refuses_the_piece(tmp_path):
    broken = tmp_path / "newer"
    broken.mkdir()
    (broken / "BR-FR-Flux2-Schematron-UBL.xslt").write_text(
        '<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="2.0">'
        '<xsl:template match="/"><xsl:value-of select="no-such-function()"/></xsl:template></xsl:stylesheet>',
        encoding="utf-8")
    s = Settings(home=tmp_path / "home", schema_dirs=(broken,))
    ev = evaluate_file(fr_ubl_invoice(), "a.xml", s, selection="fr-ctc")
    v = ev.verdicts[0]
    assert ev.state is FlowState.IN_REJETE
    assert [(f.code, f.stage) for f in v.errors] == [("ERR_VALIDATEUR", "br-fr")]
    assert v.errors[0].message.startswith("BR-FR (French reform) rules could not be checked: rule set configured: ")
    assert "does not compile" in v.errors[0].message
    assert {c.name: c.outcome for c in v.checks}["br-fr"] == "skipped"


def test_validate_profile_fr_ctc(tmp_path):
    good, bad = tmp_path / "good.xml", tmp_path / "bad.xml"
    good.write_bytes(fr_cii_invoice())
    bad.write_bytes(fr_ubl_invoice(notes=("PMT", "AAB"), number="FA 2024*1"))
    r = gateway_cli("validate", "--profile", "fr-ctc", "--json", str(good), str(bad), env={"GATEWAY_HOME": ""},
                    cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    ok, ko = (json.loads(line) for line in r.stdout.splitlines())
    assert (ok["valid"], ok["profile"], ko["valid"]) == (True, "fr-ctc", False)
    assert {c["name"]: c["outcome"] for c in ok["pieces"][0]["checks"]}["br-fr"] == "passed"
    found = {(e["rule"], e["code"], e["stage"], e["location"]["xpath"], e.get("value")) for e in ko["errors"]}
    assert found == {("BR-FR-05_BT-22-2", "REJ_SEMAN", "br-fr", "/Invoice", None),
                     ("BR-FR-01_BT-1-2", "REJ_SEMAN", "br-fr", "/Invoice/cbc:ID", "FA 2024*1"),
                     ("BR-FR-02_BT-1", "REJ_SEMAN", "br-fr", "/Invoice/cbc:ID", "FA 2024*1")}
    assert all(e["message"].startswith("[BR-FR-0") for e in ko["errors"])
    r = gateway_cli("validate", "--profile", "fr", str(good), env={"GATEWAY_HOME": ""}, cwd=tmp_path)
    assert r.returncode == 2 and "unknown --profile 'fr'; valid: chorus, en16931, fr-ctc" in r.stderr
    assert r.stdout == ""


def test_rules_list_shows_the_french_rules(tmp_path):
    r = gateway_cli("rules", "list", "--json", cwd=tmp_path, env={"GATEWAY_HOME": ""})
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {(x["what"], x["check"]): x for x in json.loads(r.stdout)["rows"]}
    for syntax in ("UBL", "CII"):
        own = rows[(f"{syntax}: EXTENDED-CTC-FR (French reform)", "extended-ctc-fr")]
        assert (own["file"], own["sha256"]) == (
            f"schemas/fr-ctc/{syntax}/EXTENDED-CTC-FR/2xslt/EXTENDED-CTC-FR-{syntax}.xslt", "ok")
        assert own["artefact"].startswith("FNFE-MPE EXTENDED-CTC-FR profile rules")
        br = rows[(f"{syntax}: EXTENDED-CTC-FR (French reform)", "br-fr")]
        assert br["file"].endswith(f"EXTENDED-CTC-FR/2xslt/BR-FR-Flux2-Schematron-{syntax}.xslt")
        added = rows[(f"{syntax}, validate --profile fr-ctc (added to its rules)", "br-fr")]
        assert (added["file"], added["sha256"]) == (
            f"schemas/fr-ctc/{syntax}/EN16931/2xslt/BR-FR-Flux2-Schematron-{syntax}.xslt", "ok")
        assert added["artefact"] == "FNFE-MPE BR-FR-Flux2 rules (French e-invoicing reform, UBL and CII) V1.4.0 (2026-06-30)"


def test_a_deposited_extended_ctc_fr_invoice_is_judged_by_its_profile(home):
    drop(home, "ACME", "ctc-fr.xml", fr_ubl_invoice(guideline=EXTENDED_CTC_FR, number="FA-2026-1"))
    drop(home, "ACME", "sans-pmd.xml", fr_cii_invoice(guideline=EXTENDED_CTC_FR, number="FA-2026-2",
                                                      notes=("PMT", "AAB")))
    r = gateway_cli("run", "--once", home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    piece = report_for(home, "ACME", "ctc-fr.xml")["pieces"][0]
    outcomes = {c["name"]: c["outcome"] for c in piece["checks"]}
    assert (outcomes["extended-ctc-fr"], outcomes["br-fr"], outcomes["en16931"]) == ("passed", "passed", "skipped")
    assert piece["errors"] == []
    report = report_for(home, "ACME", "sans-pmd.xml")
    assert report["state"] == "IN_REJETE"
    assert [(e["code"], e["rule"], e["stage"]) for e in report["pieces"][0]["errors"]] == [
        ("REJ_SEMAN", "BR-FR-05_BT-22_PMD", "br-fr")]

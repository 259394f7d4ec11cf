"""`gateway validate`: JSON lines, exit codes, locations, which schema was used."""
from __future__ import annotations

import json

from conftest import gateway_cli
from invoice_support import cii_invoice, ubl_invoice


def test_validate_json_lines_and_exit_codes(tmp_path):
    good = tmp_path / "good.xml"
    good.write_bytes(ubl_invoice())
    bad = tmp_path / "bad.txt"
    bad.write_bytes(cii_invoice().replace(b"<ram:TypeCode>380</ram:TypeCode>", b"<ram:TypeCode>380</ram:TypeCode><ram:Bogus/>", 1))
    r = gateway_cli("validate", "--json", str(good), home=tmp_path)
    assert r.returncode == 0, r.stderr
    (line,) = r.stdout.splitlines()
    obj = json.loads(line)
    assert obj["file"] == str(good) and obj["format"] == "ubl-invoice" and obj["valid"] is True
    assert obj["errors"] == []
    xsd = [c for c in obj["pieces"][0]["checks"] if c["name"] == "xsd"][0]
    assert xsd["outcome"] == "passed" and "UBL-Invoice-2.1.xsd" in xsd["used"]

    r = gateway_cli("validate", "--json", str(good), str(bad), home=tmp_path)
    assert r.returncode == 1
    objs = [json.loads(x) for x in r.stdout.splitlines()]
    assert [o["valid"] for o in objs] == [True, False]
    err = objs[1]["errors"][0]
    assert objs[1]["format"] == "cii"
    assert err["code"] == "IRR_SYNTAX" and "Bogus" in err["message"]
    assert err["location"]["line"] > 1 and err["location"]["xpath"].startswith("/")


def test_validate_usage_error(tmp_path):
    r = gateway_cli("validate", str(tmp_path / "missing.xml"), home=tmp_path)
    assert r.returncode == 2
    r = gateway_cli("validate", "--no-such-flag", home=tmp_path)
    assert r.returncode == 2


def test_validate_creates_nothing_in_a_bare_folder(tmp_path):
    f = tmp_path / "a.xml"
    f.write_bytes(ubl_invoice())
    r = gateway_cli("validate", str(f), env={"GATEWAY_HOME": ""}, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.xml"]


def test_validate_reads_a_status_file_under_the_homes_attachment_settings(tmp_path):
    import base64

    from gateway.core import config

    config.init_home(tmp_path / "home")
    (tmp_path / "home" / "gateway.toml").write_text("[attachments]\nmax_mb = 0.001\n", encoding="utf-8")  # 1 KB
    home = config.load(tmp_path / "home")
    f = tmp_path / "complete.json"
    f.write_text(json.dumps({"statuses": [{"piece_id": "F20261122091501-1a2b3c4d-001", "status": "COMPLETEE",
                                           "attachments": [{"name": "pv.pdf", "mime": "application/pdf",
                                                            "content_base64": base64.b64encode(
                                                                b"%PDF-1.4 " + b"x" * 4000).decode()}]}]}))
    r = gateway_cli("validate", "--json", str(f), home=home)
    assert r.returncode == 1, r.stdout + r.stderr
    obj = json.loads(r.stdout)
    assert obj["format"] == "status" and [e["code"] for e in obj["errors"]] == ["IRR_TAILLE_PJ"]
    r = gateway_cli("validate", str(f), home=home)  # the location, as the reports write it
    assert r.returncode == 1 and "IRR_TAILLE_PJ" in r.stdout and "[/statuses/0/attachments/0]" in r.stdout


def test_without_a_home_the_deposit_checks_are_listed_as_skipped(tmp_path):
    good = tmp_path / "good.xml"
    good.write_bytes(ubl_invoice())
    r = gateway_cli("validate", "--json", str(good), home=tmp_path)
    obj = json.loads(r.stdout)
    assert {s["check"] for s in obj["skipped"]} == {"addressee", "deposit_right", "link", "uniqueness", "duplicate"}
    assert all("no --home" in s["why"] for s in obj["skipped"])
    r = gateway_cli("validate", str(good), home=tmp_path)
    assert "check uniqueness: skipped (no --home: no store to ask)" in r.stdout


def test_with_a_home_validate_says_what_a_deposit_would_and_changes_nothing(tmp_path):
    from conftest import TEST_TOML, drop, home_with, report_for
    from gateway.rules import directory
    from gateway.runtime.service import Gateway
    from gateway.store.repository import Store

    home = home_with(tmp_path / "home", TEST_TOML)
    directory.import_files(home, directory.demo_files())
    first = ubl_invoice(number="FA-VH-1")
    drop(home, "fournisseur", "FA-VH-1.xml", first)
    Gateway(home, once=True).run()
    assert report_for(home, "fournisseur", "FA-VH-1.xml")["state"] == "IN_INTEGRE"
    flows_before = len(Store(home).recent_flows(limit=100))

    again = tmp_path / "again.xml"  # the same number, other bytes: REJ_UNI at deposit
    again.write_bytes(ubl_invoice(number="FA-VH-1", note="sent twice"))
    same = tmp_path / "same.xml"  # the very same bytes: DOUBLON for the partner that sent them
    same.write_bytes(first)
    fresh = tmp_path / "fresh.xml"
    fresh.write_bytes(ubl_invoice(number="FA-VH-2"))
    r = gateway_cli("validate", "--json", "--home", str(home.home), "--partner", "fournisseur",
                    str(again), str(same), str(fresh))
    assert r.returncode == 1, r.stderr
    by_file = {json.loads(x)["file"]: json.loads(x) for x in r.stdout.splitlines()}
    assert [e["code"] for e in by_file[str(again)]["errors"]] == ["REJ_UNI"]
    assert "DOUBLON" in [e["code"] for e in by_file[str(same)]["errors"]]
    assert by_file[str(fresh)]["valid"] is True and by_file[str(fresh)]["skipped"] == []
    checks = {c["name"]: c["outcome"] for c in by_file[str(fresh)]["pieces"][0]["checks"]}
    assert checks["uniqueness"] == "passed" and checks.get("addressee") != "failed"

    # read-only: no flow, no number taken (FA-VH-2 is still free for a real deposit)
    assert len(Store(home).recent_flows(limit=100)) == flows_before
    drop(home, "fournisseur", "fresh.xml", fresh.read_bytes())
    Gateway(home, once=True).run()
    assert report_for(home, "fournisseur", "fresh.xml")["state"] == "IN_INTEGRE"


def test_a_mistyped_home_is_an_error_and_is_not_created(tmp_path):
    good = tmp_path / "good.xml"
    good.write_bytes(ubl_invoice())
    r = gateway_cli("validate", "--home", str(tmp_path / "nohome"), str(good))
    assert r.returncode == 2 and not (tmp_path / "nohome").exists()


def test_validate_profile_en16931_skips_the_french_controls(tmp_path):
    # an EN 16931 invoice with no recipient SIRET: fine for a foreign editor, not for the platform
    f = tmp_path / "foreign.xml"
    f.write_bytes(ubl_invoice(recipient_siret=None, service_code=None, engagement=None))
    r = gateway_cli("validate", "--json", str(f), home=tmp_path)
    assert r.returncode == 1 and "SIRET_ERR" in {e["code"] for e in json.loads(r.stdout)["errors"]}
    r = gateway_cli("validate", "--json", "--profile", "en16931", str(f), home=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    obj = json.loads(r.stdout)
    assert obj["valid"] is True and obj["profile"] == "en16931"
    checks = {c["name"]: c for c in obj["pieces"][0]["checks"]}
    assert checks["controls"]["outcome"] == "skipped" and "mapping" not in checks
    assert checks["en16931"]["outcome"] == "passed" and checks["xsd"]["outcome"] == "passed"
    assert gateway_cli("validate", "--profile", "everything", str(f), home=tmp_path).returncode == 2


def test_validate_text_output_shows_warnings_and_the_guideline(tmp_path):
    xrechnung = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
    test = b"<ram:TestIndicator><udt:Indicator>true</udt:Indicator></ram:TestIndicator>"
    data = cii_invoice(profile=xrechnung).replace(b"<rsm:ExchangedDocumentContext>",
                                                  b"<rsm:ExchangedDocumentContext>" + test, 1)
    f = tmp_path / "xr.xml"
    f.write_bytes(data)
    r = gateway_cli("validate", "--profile", "en16931", str(f), home=tmp_path, env={"COLUMNS": "300"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning REJ_SEMAN: [CII-SR-002] - TestIndicator should not be present" in r.stdout
    assert f"check guideline: passed: guideline {xrechnung}: XRechnung, judged by EN 16931 core" in r.stdout
    assert "check controls: skipped: not in the en16931 validation profile" in r.stdout


def test_run_refuses_settings_it_cannot_start_with_in_one_line(tmp_path):
    """A malformed [sftp] limit or an unknown status-file format: exit 2, the reason, no traceback."""
    from conftest import TEST_TOML, home_with

    for extra, once in (('[sftp]\nenabled = true\nport = 0\nidle_timeout_seconds = "soon"\n', ()),
                        ('[statuses]\nformats = ["cppstatut", "telex"]\n', ("--once",))):
        home = home_with(tmp_path / str(len(extra)), TEST_TOML.replace("[sftp]\nenabled = false\n", "") + extra)
        r = gateway_cli("run", *once, "--home", str(home.home), timeout=60)
        assert r.returncode == 2, r.stderr
        assert r.stderr.splitlines()[-1].startswith("error: ") and "Traceback" not in r.stderr, r.stderr

"""Folder intake end to end: drop files, run the real CLI, read the return files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lxml import etree

from conftest import REPO, aife_schema, codes_of, drop, gateway_cli, report_for, reports
from gateway.channels.folders import Claimer
from gateway.store.repository import Store
from invoice_support import cii_invoice, ubl_invoice
from sftp_support import running_gateway, wait_until


def test_run_once_reports_every_file_and_empties_the_inbox(home):
    drop(home, "ACME", "a.xml", ubl_invoice(number="A-1"))
    drop(home, "ACME", "b.xml", cii_invoice(number="B-1"))
    drop(home, "ACME", "c.xml", b"<not-closed")
    drop(home, "ACME", "empty.xml", b"")
    drop(home, "ACME", "upload.xml.part", b"still writing")   # a sender's temporary name: left alone
    drop(home, "OTHER", "x.xml", ubl_invoice(number="X-1"))
    r = gateway_cli("run", "--once", home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "processed 5 flow(s)" in r.stdout
    assert sorted(os.listdir(home.inbox / "ACME")) == ["upload.xml.part"]

    a = report_for(home, "ACME", "a.xml")
    assert a["state"] == "IN_INTEGRE" and a["format"] == "ubl-invoice" and a["flux_status"] == "90"
    assert a["pieces"][0]["valid"] and a["pieces"][0]["index"] == 1
    for key in ("flow_id", "partner", "file", "sha256", "received_at", "format", "state", "pieces"):
        assert key in a
    c = report_for(home, "ACME", "c.xml")
    assert c["state"] == "IN_REJETE" and codes_of(c) == {"IRR_SYNTAX"}
    assert codes_of(report_for(home, "ACME", "empty.xml")) == {"IRR_VIDE_F"}
    assert report_for(home, "OTHER", "x.xml")["partner"] == "OTHER"
    assert not (home.reports_dir("OTHER") / f"{a['flow_id']}.json").exists()  # partners never mix


def test_xml_reports_are_valid_cppstatut(home):
    schema = aife_schema("CPPStatutPivot_V1_19.xsd")
    drop(home, "ACME", "ok.xml", ubl_invoice())
    drop(home, "ACME", "bad.xml", ubl_invoice().replace(b"<cbc:IssueDate>", b"<cbc:IssueDate>X"))
    assert gateway_cli("run", "--once", home=home).returncode == 0
    xmls = sorted(home.reports_dir("ACME").glob("*.xml"))
    assert len(xmls) == 2
    statuses = set()
    for x in xmls:
        doc = etree.parse(str(x))
        assert schema.validate(doc), schema.error_log
        statuses.add(doc.findtext(".//IdStatut"))
        if doc.findtext(".//IdStatut") == "93":
            assert doc.findtext(".//LigneErreurDetail/CodeErreur") == "IRR_SYNTAX"
            assert "IssueDate" in doc.findtext(".//LigneErreurDetail/DescriptionErreur")
    assert statuses == {"90", "93"}


def test_same_bytes_twice_is_a_duplicate_flow(home):
    data = ubl_invoice(number="D-1")
    drop(home, "ACME", "first.xml", data)
    assert gateway_cli("run", "--once", home=home).returncode == 0
    drop(home, "ACME", "again.xml", data)
    drop(home, "OTHER", "same-bytes-other-partner.xml", data)
    assert gateway_cli("run", "--once", home=home).returncode == 0
    first = report_for(home, "ACME", "first.xml")
    again = report_for(home, "ACME", "again.xml")
    assert again["state"] == "IN_REJETE" and again["duplicate_of"] == first["flow_id"]
    assert codes_of(again) == {"DOUBLON"}
    assert report_for(home, "OTHER", "same-bytes-other-partner.xml")["duplicate_of"] is None
    assert report_for(home, "ACME", "first.xml")["state"] == "IN_INTEGRE"  # the original is untouched


def test_flows_and_flow_commands_show_history(home):
    drop(home, "ACME", "a.xml", ubl_invoice())
    assert gateway_cli("run", "--once", home=home).returncode == 0
    fid = reports(home, "ACME")[0]["flow_id"]
    r = gateway_cli("flows", "--json", home=home)
    assert r.returncode == 0 and json.loads(r.stdout.splitlines()[0])["flow_id"] == fid
    r = gateway_cli("flow", fid, "--json", home=home)
    detail = json.loads(r.stdout)
    stages = [e["stage"] for e in detail["history"]]
    assert stages[0] == "reception" and "validation" in stages and stages[-1] == "report"
    assert detail["pieces"][0]["valid"] is True
    assert gateway_cli("flow", "F-nope", home=home).returncode == 1


def test_symlink_dropped_in_inbox_is_refused_and_never_read(home, tmp_path):
    secret = tmp_path / "secret.xml"
    secret.write_bytes(ubl_invoice())
    (home.inbox / "ACME").mkdir(parents=True)
    os.symlink(secret, home.inbox / "ACME" / "link.xml")
    old = time.time() - 10
    os.utime(home.inbox / "ACME" / "link.xml", (old, old), follow_symlinks=False)
    assert gateway_cli("run", "--once", home=home).returncode == 0
    rep = report_for(home, "ACME", "link.xml")
    assert rep["state"] == "IN_REJETE" and "IRR_TYPE_F" in codes_of(rep)
    assert secret.exists()


def test_interrupted_claim_is_recovered(home):
    """A crash between the claim (rename into the archive) and the database
    insert leaves a note and the bytes; the next start records the flow."""
    adir = home.archive / "2026" / "01" / "01"
    adir.mkdir(parents=True)
    (adir / "F20260101000000-deadbeef.bin").write_bytes(ubl_invoice())
    (adir / "F20260101000000-deadbeef.claim").write_text(json.dumps(
        {"partner": "ACME", "name": "lost.xml", "channel": "folder", "received_at": "2026-01-01T00:00:00+00:00"}))
    assert gateway_cli("run", "--once", home=home).returncode == 0
    rep = report_for(home, "ACME", "lost.xml")
    assert rep["flow_id"] == "F20260101000000-deadbeef" and rep["state"] == "IN_INTEGRE"
    assert not list(adir.glob("*.claim"))


def test_kill_at_any_moment_loses_nothing_and_reports_once(home):
    n = 120
    for i in range(n):
        drop(home, "ACME", f"inv-{i:03d}.xml", ubl_invoice(number=f"K-{i}"))
    env = dict(os.environ, GATEWAY_HOME=str(home.home), GATEWAY_INTAKE_WORKERS="2")
    for delay in (0.8, 1.6):
        p = subprocess.Popen([sys.executable, "-m", "gateway.ops.cli", "run", "--once"], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    r = gateway_cli("run", "--once", home=home, env={"GATEWAY_INTAKE_WORKERS": "2"})
    assert r.returncode == 0, r.stderr
    reps = reports(home, "ACME")
    assert sorted(x["file"] for x in reps) == [f"inv-{i:03d}.xml" for i in range(n)]
    assert all(x["state"] == "IN_INTEGRE" for x in reps)
    st = Store(home)
    assert len(st.recent_flows(1000)) == n and st.pending() == 0
    assert not list(home.inbox.glob("ACME/*.xml"))


def test_service_picks_up_a_slowly_written_file_and_stops_on_sigterm(home):
    with running_gateway(home, "run") as gw:
        time.sleep(2.0)
        (home.inbox / "ACME").mkdir(parents=True, exist_ok=True)
        data = ubl_invoice(number="S-1")
        target = home.inbox / "ACME" / "slow.xml"
        with open(target, "wb") as fh:  # written in pieces: must not be taken half-written
            for i in range(0, len(data), len(data) // 4 + 1):
                fh.write(data[i:i + len(data) // 4 + 1])
                fh.flush()
                time.sleep(0.15)
        wait_until(lambda: reports(home, "ACME"), timeout=20, step=0.2)
        rep = report_for(home, "ACME", "slow.xml")
        assert rep["state"] == "IN_INTEGRE" and rep["size"] == len(data)
    assert gw.returncode == 0, gw.out


def test_claimer_never_claims_twice(home):
    drop(home, "ACME", "a.xml", ubl_invoice())
    from gateway.channels.folders import scan

    cands = list(scan(home))
    c1 = Claimer(home, Store(home)).claim(cands)
    c2 = Claimer(home, Store(home)).claim(cands)  # the file is gone: nothing to claim
    assert len(c1) == 1 and c2 == []
    assert not list(home.archive.rglob("*.claim"))
    archived = Path(Store(home).flow(c1[0]).archive_path)  # the bytes the flow is processed from
    assert archived.is_file() and home.archive in archived.parents
    assert archived.read_bytes() == ubl_invoice()

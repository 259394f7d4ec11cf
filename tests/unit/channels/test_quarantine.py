"""Folders of inbox/ that no partner owns, or whose name no partner can
have: their files are set aside in quarantine/ with a reason, never lost,
never processed as a new partner's, and never left waiting forever."""
from __future__ import annotations

import json
import os

from conftest import drop, gateway_cli, home_with, report_for
from gateway.runtime.service import Gateway
from invoice_support import ubl_invoice

CLOSED = "[intake]\nstability_seconds = 0.2\nworkers = 0\n[sftp]\nenabled = false\n[parties]\nediteur-x = [\"79990011300017\"]\n"


def _notes(home):
    return sorted((json.loads(p.read_text()) for p in home.quarantine.rglob("*.json")), key=lambda n: n["file"])


def test_unknown_and_unusable_folders_are_set_aside_with_a_reason(tmp_path):
    home = home_with(tmp_path / "h", CLOSED)
    (home.outbox / "ACME").mkdir(parents=True)  # `gateway partner add ACME` makes it
    drop(home, "ACME", "mine.xml", ubl_invoice(number="OK-1"))
    drop(home, "editeur-x", "declared.xml", ubl_invoice(number="OK-2"))
    drop(home, "STRANGER", "who.xml", ubl_invoice(number="NO-1"))
    drop(home, "my folder", "spaced.xml", ubl_invoice(number="NO-2"))
    summary = Gateway(home, once=True).run()
    assert summary.processed == 2
    assert report_for(home, "ACME", "mine.xml")["state"] == "IN_INTEGRE"
    assert report_for(home, "editeur-x", "declared.xml")["state"] == "IN_INTEGRE"
    assert not (home.outbox / "STRANGER").exists()  # never taken as a new partner
    assert os.listdir(home.inbox / "STRANGER") == [] and os.listdir(home.inbox / "my folder") == []
    spaced, who = _notes(home)
    assert who["code"] == "IRR_PARTENAIRE" and who["folder"] == "STRANGER" and "gateway partner add STRANGER" in who["message"]
    assert spaced["code"] == "IRR_NOM_DOSSIER" and spaced["folder"] == "my folder" and "not a partner code" in spaced["message"]
    kept = home.quarantine / "my_folder" / spaced["kept_as"]
    assert kept.read_bytes() == ubl_invoice(number="NO-2")  # nothing lost: the very bytes, beside their note
    assert who["size"] == len(ubl_invoice(number="NO-1")) and len(who["sha256"]) == 64


def test_open_partners_takes_a_new_folder_as_a_new_partners(tmp_path):
    home = home_with(tmp_path / "h", CLOSED.replace("[intake]\n", "[intake]\nopen_partners = true\n"))
    drop(home, "NEWCO", "a.xml", ubl_invoice(number="NEW-1"))
    drop(home, "bad name", "b.xml", ubl_invoice(number="NEW-2"))  # a name no partner can have stays refused
    assert Gateway(home, once=True).run().processed == 1
    assert report_for(home, "NEWCO", "a.xml")["state"] == "IN_INTEGRE"
    assert [n["code"] for n in _notes(home)] == ["IRR_NOM_DOSSIER"]


def test_a_fresh_home_processes_its_demo_and_quarantines_a_stranger(tmp_path):
    root = tmp_path / "fresh"
    root.mkdir()
    r = gateway_cli("run", "--once", home=str(root), env={"GATEWAY_SFTP_ENABLED": "false", "GATEWAY_INTAKE_WORKERS": "0", "GATEWAY_DEMO_SEED": "true"})
    assert r.returncode == 0, r.stderr
    assert list((root / "outbox" / "demo-fournisseur" / "reports").glob("*.json")), r.stdout + r.stderr
    (root / "inbox" / "STRANGER").mkdir()
    (root / "inbox" / "STRANGER" / "x.xml").write_bytes(ubl_invoice(number="S-1"))
    r = gateway_cli("run", "--once", home=str(root), env={"GATEWAY_SFTP_ENABLED": "false", "GATEWAY_INTAKE_WORKERS": "0",
                                                    "GATEWAY_INTAKE_STABILITY_SECONDS": "0.1"})
    assert r.returncode == 0, r.stderr
    assert "IRR_PARTENAIRE" in r.stderr and "quarantine/STRANGER" in r.stderr
    assert list((root / "quarantine" / "STRANGER").glob("*-x.xml"))

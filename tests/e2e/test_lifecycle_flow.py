"""The life of pieces end to end, through folders: deposit, delivery,
statuses sent back by recipients, validators and the public-works chain,
deadlines, forbidden moves; every file produced is checked against the
platform's schemas."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from conftest import AIFE_XSD, PgDatabase, drop, gateway_cli, report_for
from gateway.core import config
from gateway.store import db
from gateway.rules import directory
from gateway.lifecycle import changes as lifecycle
from gateway.lifecycle import new_pieces, status_apply
from gateway.lifecycle.machine import Machine
from gateway.pipeline import evaluate
from gateway.runtime.service import Gateway
from gateway.store.pieces import piece_history
from gateway.store.repository import Store
from invoice_support import (COMMUNE_SIRET, DDT_MOE_SIRET, OPH_MOA_SIRET, SUBCONTRACTOR_SIRET, SUPPLIER_SIRET,
                             TITULAIRE_SIRET, UNIVERSITE_SIRET, ubl_invoice)

# a public-works piece of the titulaire, addressed to the OPH as MOA
WORKS = dict(recipient_siret=OPH_MOA_SIRET, recipient_name="OPH de Valbrune", service_code="TRAVAUX",
             supplier_siret=TITULAIRE_SIRET, supplier_name="Bâtiments Exemple SA")
STATUT_XSD = AIFE_XSD / "CPPStatutPivot_V1_19.xsd"
PIVOT_XSD = AIFE_XSD / "CPPFacturePivot_V2_02.xsd"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gw(request, home):
    """A home with the demo directory, on SQLite, and on PostgreSQL when CI gives one
    (written into gateway.toml, so the CLI run by the tests uses it too)."""
    pg = None
    if request.param == "postgres":
        pg = PgDatabase()
        with open(home.config_file, "a", encoding="utf-8") as fh:
            fh.write(f'[store]\ndatabase_url = "{pg.url}"\n')
        home = config.load(home.home)
    directory.import_files(home, directory.demo_files())
    yield home
    if pg is not None:
        pg.close()


def run(settings) -> None:
    Gateway(settings, once=True).run()


def deposit(settings, partner: str, name: str, data: bytes) -> dict:
    drop(settings, partner, name, data)
    run(settings)
    return report_for(settings, partner, name)


def send_status(settings, partner: str, name: str, *entries: dict) -> dict:
    drop(settings, partner, name, json.dumps({"statuses": list(entries)}).encode())
    run(settings)
    return report_for(settings, partner, name)


def status_of(settings, piece_id: str) -> str:
    return Store(settings).piece(piece_id).status


def only_piece(report: dict) -> str:
    assert report["state"] == "IN_INTEGRE", report
    return report["pieces"][0]["piece_id"]


def _valid(xsd: Path, files: list[Path]) -> None:
    if not xsd.exists():
        pytest.skip("AIFE schemas not beside the repo")
    schema = etree.XMLSchema(etree.parse(str(xsd)))
    for f in files:
        doc = etree.parse(str(f))
        assert schema.validate(doc), f"{f}: {schema.error_log.last_error}"


def test_a1_from_deposit_to_payment_through_the_recipients_status_files(gw):
    r = deposit(gw, "fournisseur", "FA-LC-1.xml", ubl_invoice(number="FA-LC-1"))
    pid = only_piece(r)
    assert r["pieces"][0]["status"] == "MISE_A_DISPOSITION"
    # delivered to the recipient's service: original and pivot, the pivot valid against the platform's XSD
    box = gw.outbox / COMMUNE_SIRET / "ACHATS"
    assert (box / f"{pid}.xml").read_bytes() == ubl_invoice(number="FA-LC-1")
    _valid(PIVOT_XSD, [box / f"{pid}.pivot.xml"])
    # both parties got a status file with the three platform statuses
    for party in ("fournisseur", COMMUNE_SIRET):
        sent = json.loads((gw.outbox / party / "statuses" / f"{pid}.003.json").read_text())
        assert [s["status"] for s in sent["statuses"]] == ["DEPOSEE", "EN_COURS_ACHEMINEMENT", "MISE_A_DISPOSITION"]
        assert [s["cdv"] for s in sent["statuses"]] == [200, 201, 203]

    r = send_status(gw, COMMUNE_SIRET, "st1.json", {"piece_id": pid, "status": "SERVICE_FAIT"})
    assert r["state"] == "IN_INTEGRE", r
    assert status_of(gw, pid) == "SERVICE_FAIT"
    # the recipient names the piece by invoice number and supplier, as its software knows it
    r = send_status(gw, COMMUNE_SIRET, "st2.json",
                    {"invoice_number": "FA-LC-1", "supplier": SUPPLIER_SIRET, "status": "MANDATEE"},
                    {"piece_id": pid, "status": "MISE_EN_PAIEMENT"})
    assert r["state"] == "IN_INTEGRE", r
    assert status_of(gw, pid) == "MISE_EN_PAIEMENT"
    sent = json.loads((gw.outbox / "fournisseur" / "statuses" / f"{pid}.006.json").read_text())
    assert sent["statuses"][0]["status"] == "MISE_EN_PAIEMENT" and sent["statuses"][0]["cdv"] == 211
    _valid(STATUT_XSD, sorted(gw.outbox.glob("*/statuses/*.xml")))
    # the full history, as an operator sees it
    out = gateway_cli("piece", pid, "--json", home=gw)
    assert out.returncode == 0, out.stderr
    hist = [e["outcome"] for e in json.loads(out.stdout)["history"] if e["stage"] == "status"]
    assert hist == ["DEPOSEE", "EN_COURS_ACHEMINEMENT", "MISE_A_DISPOSITION", "SERVICE_FAIT", "MANDATEE",
                    "MISE_EN_PAIEMENT"]


def test_forbidden_moves_and_wrong_senders_change_nothing(gw):
    pid = only_piece(deposit(gw, "fournisseur", "FA-LC-2.xml", ubl_invoice(number="FA-LC-2")))
    # the supplier cannot pay itself; a stranger cannot touch the piece; REJETEE needs a reason
    r = send_status(gw, "fournisseur", "s1.json", {"piece_id": pid, "status": "MISE_EN_PAIEMENT"})
    assert r["state"] == "IN_REJETE" and r["pieces"][0]["errors"][0]["code"] in ("STATUT_NON_AUTORISE",
                                                                                  "STATUT_INTERDIT")
    r = send_status(gw, UNIVERSITE_SIRET, "s2.json", {"piece_id": pid, "status": "SERVICE_FAIT"})
    assert r["pieces"][0]["errors"][0]["code"] == "STATUT_NON_AUTORISE"
    r = send_status(gw, COMMUNE_SIRET, "s3.json", {"piece_id": pid, "status": "REJETEE"})
    assert r["pieces"][0]["errors"][0]["code"] == "STATUT_MOTIF"
    r = send_status(gw, COMMUNE_SIRET, "s4.json", {"piece_id": "F20990101000000-00000000-001", "status": "REJETEE"})
    assert r["pieces"][0]["errors"][0]["code"] == "PIECE_INCONNUE"
    assert status_of(gw, pid) == "MISE_A_DISPOSITION"
    # a status XML the refused sender reads: a CPPFluxStatuts 93 naming the code
    xml = (gw.reports_dir(COMMUNE_SIRET) / f"{r['flow_id']}.xml").read_text()
    assert "PIECE_INCONNUE" in xml
    # REJETEE with a reason is final: nothing may follow
    r = send_status(gw, COMMUNE_SIRET, "s5.json", {"piece_id": pid, "status": "REJETEE", "reason": "Doublon"})
    assert r["state"] == "IN_INTEGRE"
    r = send_status(gw, COMMUNE_SIRET, "s6.json", {"piece_id": pid, "status": "SERVICE_FAIT"})
    assert r["pieces"][0]["errors"][0]["code"] == "STATUT_INTERDIT"
    assert status_of(gw, pid) == "REJETEE"
    # a second invoice with the same number is refused and the first keeps its status
    r = deposit(gw, "fournisseur", "again.xml", ubl_invoice(number="FA-LC-2", issue_date="2024-05-02"))
    assert r["state"] == "IN_REJETE" and "REJ_UNI" in {e["code"] for e in r["pieces"][0]["errors"]}
    assert status_of(gw, pid) == "REJETEE"


def test_suspended_piece_is_completed_and_delivered_again(gw):
    pid = only_piece(deposit(gw, "fournisseur", "FA-LC-3.xml", ubl_invoice(number="FA-LC-3")))
    send_status(gw, COMMUNE_SIRET, "s1.json", {"piece_id": pid, "status": "SUSPENDUE", "reason": "PV manquant"})
    assert status_of(gw, pid) == "SUSPENDUE"
    import base64
    r = send_status(gw, "fournisseur", "c1.json", {
        "piece_id": pid, "status": "COMPLETEE", "comment": "PV joint",
        "attachments": [{"name": "pv.pdf", "mime": "application/pdf",
                         "content_base64": base64.b64encode(b"%PDF-1.4 pv").decode()}]})
    assert r["state"] == "IN_INTEGRE", r
    assert status_of(gw, pid) == "MISE_A_DISPOSITION"
    pivot = (gw.outbox / COMMUNE_SIRET / "ACHATS" / f"{pid}.pivot.xml").read_text()
    assert "Complétée" in pivot and "pv.pdf" in pivot


def test_recycled_piece_goes_to_the_corrected_recipient(gw):
    pid = only_piece(deposit(gw, "fournisseur", "FA-LC-4.xml", ubl_invoice(number="FA-LC-4")))
    send_status(gw, COMMUNE_SIRET, "s1.json", {"piece_id": pid, "status": "A_RECYCLER", "reason": "Mauvais service"})
    out = gateway_cli("piece", "set-status", pid, "DEPOSEE", "--as", "supplier", "--siret", UNIVERSITE_SIRET,
                      "--service", "", home=gw)
    assert out.returncode == 0, out.stdout + out.stderr
    assert status_of(gw, pid) == "MISE_A_DISPOSITION"
    pivot = (gw.outbox / UNIVERSITE_SIRET / "_" / f"{pid}.pivot.xml").read_text()
    assert "Recyclée" in pivot and UNIVERSITE_SIRET in pivot
    # a correction to an unknown recipient is refused and changes nothing
    send_status(gw, UNIVERSITE_SIRET, "s2.json", {"piece_id": pid, "status": "A_RECYCLER", "reason": "Pas chez nous"})
    out = gateway_cli("piece", "set-status", pid, "DEPOSEE", "--as", "supplier", "--siret", "28990008600017",
                      home=gw)
    assert out.returncode == 1 and "DEST_INC" in out.stderr
    assert status_of(gw, pid) == "A_RECYCLER"


def _a9(number: str) -> bytes:
    return ubl_invoice(number=number, cadre="A9", supplier_siret=SUBCONTRACTOR_SIRET,
                       supplier_name="Sous-Traitant Exemple SAS", validator_siret=TITULAIRE_SIRET)


def test_subcontractor_invoice_validated_refused_and_timed_out(gw):
    ok = only_piece(deposit(gw, "soustraitant", "A9-1.xml", _a9("ST-1")))
    no = only_piece(deposit(gw, "soustraitant", "A9-2.xml", _a9("ST-2")))
    late = only_piece(deposit(gw, "soustraitant", "A9-3.xml", _a9("ST-3")))
    out = gateway_cli("pieces", "--due", "--json", home=gw)
    assert [json.loads(line)["piece_id"] for line in out.stdout.splitlines()] == [ok, no, late]  # soonest delay first
    for pid in (ok, no, late):
        assert status_of(gw, pid) == "A_VALIDER_1"
        assert (gw.outbox / TITULAIRE_SIRET / "_" / f"{pid}.pivot.xml").exists()
        assert not (gw.outbox / COMMUNE_SIRET / "ACHATS" / f"{pid}.pivot.xml").exists()
    # the recipient cannot act before the validator
    r = send_status(gw, COMMUNE_SIRET, "early.json", {"piece_id": ok, "status": "SERVICE_FAIT"})
    assert r["state"] == "IN_REJETE"
    r = send_status(gw, TITULAIRE_SIRET, "v.json", {"piece_id": ok, "status": "VALIDEE_1"},
                    {"piece_id": no, "status": "REFUSEE_1", "reason": "Travaux non réalisés"})
    assert r["state"] == "IN_INTEGRE", r
    assert status_of(gw, ok) == "MISE_A_DISPOSITION"
    assert (gw.outbox / COMMUNE_SIRET / "ACHATS" / f"{ok}.pivot.xml").exists()
    assert status_of(gw, no) == "REFUSEE_1"
    # nothing due yet; after 15 days the silent validator's piece goes on
    at = db.utcnow() + timedelta(days=10)
    out = gateway_cli("deadlines", "--at", at.isoformat(), home=gw)
    assert out.returncode == 0 and status_of(gw, late) == "A_VALIDER_1", out.stdout + out.stderr
    out = gateway_cli("deadlines", "--at", (at + timedelta(days=6)).isoformat(), home=gw)
    assert out.returncode == 0, out.stderr
    assert status_of(gw, late) == "MISE_A_DISPOSITION"
    hist = [e.outcome for e in piece_history(Store(gw), late).events if e.stage == "status"]
    assert "ABSENCE_VALIDATION_1_HORS_DELAI" in hist
    assert (gw.outbox / COMMUNE_SIRET / "ACHATS" / f"{late}.pivot.xml").exists()
    # what an operator lists: the refused one, the two now with the recipient
    out = gateway_cli("pieces", "--recipient", COMMUNE_SIRET, "--status", "MISE_A_DISPOSITION", "--json", home=gw)
    assert out.returncode == 0, out.stderr
    assert sorted(json.loads(line)["piece_id"] for line in out.stdout.splitlines()) == sorted([ok, late])
    _valid(STATUT_XSD, sorted(gw.outbox.glob("*/statuses/*.xml")))


def test_public_works_chain_from_the_titulaire_to_the_financial_service(gw):
    works = WORKS
    a4 = only_piece(deposit(gw, "titulaire", "PDM-1.xml",
                            ubl_invoice(number="PDM-1", cadre="A4", moe_siret=DDT_MOE_SIRET, **works)))
    assert status_of(gw, a4) == "MISE_A_DISPOSITION_MOE"
    assert (gw.outbox / DDT_MOE_SIRET / "_" / f"{a4}.pivot.xml").exists()
    r = send_status(gw, DDT_MOE_SIRET, "moe.json", {"piece_id": a4, "status": "PRISE_EN_COMPTE_MOE"})
    assert r["state"] == "IN_INTEGRE", r
    # an A15 that names no A4 is refused; the one that does links it
    r = deposit(gw, DDT_MOE_SIRET, "EA-0.xml", ubl_invoice(number="EA-0", cadre="A15", **works))
    assert r["state"] == "IN_REJETE" and "REJ_COH" in {e["code"] for e in r["pieces"][0]["errors"]}
    a15 = only_piece(deposit(gw, DDT_MOE_SIRET, "EA-1.xml",
                             ubl_invoice(number="EA-1", cadre="A15", original_invoice="PDM-1", **works)))
    assert status_of(gw, a4) == "ASSOCIEE"
    assert status_of(gw, a15) == "MISE_A_DISPOSITION_MOA"
    assert (gw.outbox / OPH_MOA_SIRET / "TRAVAUX" / f"{a15}.pivot.xml").exists()
    send_status(gw, OPH_MOA_SIRET, "moa.json", {"piece_id": a15, "status": "PRISE_EN_COMPTE_MOA"})
    a19 = only_piece(deposit(gw, OPH_MOA_SIRET, "EAV-1.xml",
                             ubl_invoice(number="EAV-1", cadre="A19", original_invoice="EA-1", **works)))
    assert status_of(gw, a15) == "ASSOCIEE"
    assert status_of(gw, a19) == "MISE_A_DISPOSITION"
    r = send_status(gw, OPH_MOA_SIRET, "pay.json", {"piece_id": a19, "status": "MISE_EN_PAIEMENT"})
    assert r["state"] == "IN_INTEGRE", r
    assert status_of(gw, a19) == "MISE_EN_PAIEMENT"
    # the billing file is kept and shown from any of its pieces
    h = piece_history(Store(gw), a15)
    assert {p.id for p in h.dossier} == {a4, a19}
    out = gateway_cli("piece", a4, home=gw)
    assert out.returncode == 0 and a19 in out.stdout
    # the titulaire heard of every step of its A4
    names = sorted(p.name for p in (gw.outbox / "titulaire" / "statuses").glob(f"{a4}.*.json"))
    assert len(names) >= 3
    _valid(STATUT_XSD, sorted(gw.outbox.glob("*/statuses/*.xml")))


def test_a_status_file_is_applied_after_the_invoices_received_before_it(gw):
    """A backlog (the gateway was stopped): an invoice and its recipient's
    status file wait together. Received in the order they were written, the
    status file waits for the invoice; one written before its invoice existed
    is refused, not held."""
    import os
    import time

    def written(path: Path, seconds_ago: float) -> None:
        t = time.time() - seconds_ago
        os.utime(path, (t, t))

    def status(number: str) -> bytes:
        return json.dumps({"statuses": [{"invoice_number": number, "supplier": SUPPLIER_SIRET,
                                         "status": "SERVICE_FAIT"}]}).encode()

    written(drop(gw, "fournisseur", "FA-ORD-1.xml", ubl_invoice(number="FA-ORD-1")), 30)
    written(drop(gw, COMMUNE_SIRET, "st-ord-1.json", status("FA-ORD-1")), 20)
    written(drop(gw, COMMUNE_SIRET, "st-ord-2.json", status("FA-ORD-2")), 25)
    written(drop(gw, "fournisseur", "FA-ORD-2.xml", ubl_invoice(number="FA-ORD-2")), 15)
    run(gw)

    r = report_for(gw, COMMUNE_SIRET, "st-ord-1.json")
    assert r["state"] == "IN_INTEGRE", r
    assert status_of(gw, only_piece(report_for(gw, "fournisseur", "FA-ORD-1.xml"))) == "SERVICE_FAIT"
    early = report_for(gw, COMMUNE_SIRET, "st-ord-2.json")
    assert early["state"] == "IN_REJETE" and early["pieces"][0]["errors"][0]["code"] == "PIECE_INCONNUE"
    assert status_of(gw, only_piece(report_for(gw, "fournisseur", "FA-ORD-2.xml"))) == "MISE_A_DISPOSITION"
    assert Store(gw).queued() == 0


def test_status_xml_from_a_recipient_is_applied(gw):
    from gateway.outputs.status_cppstatut import status_xml
    from gateway.outputs.status_files import StatusNotice

    pid = only_piece(deposit(gw, "fournisseur", "FA-LC-5.xml", ubl_invoice(number="FA-LC-5")))
    p = Store(gw).piece(pid)
    note = StatusNotice(piece_id=pid, invoice_number="FA-LC-5", invoice_date=None, cadre="A1",
                        supplier_id=SUPPLIER_SIRET, supplier_name="Fournitures Exemple SARL", supplier_country="FR",
                        debtor_siret=COMMUNE_SIRET, debtor_name="Commune", service_code="ACHATS",
                        status="SERVICE_FAIT", previous=p.status, reason=None, comment=None, at=db.utcnow(),
                        by_role="recipient")
    xml = status_xml([note], Machine.load(gw), platform_id="COMMUNE", receiver_id="GTW001",
                     receiver_name="Passerelle")
    drop(gw, COMMUNE_SIRET, "statut.xml", xml)
    run(gw)
    r = report_for(gw, COMMUNE_SIRET, "statut.xml")
    assert r["format"] == "status" and r["state"] == "IN_INTEGRE", r
    assert status_of(gw, pid) == "SERVICE_FAIT"


def test_invoice_with_its_pdf_in_a_lot_is_delivered_with_it(gw):
    import io
    import zipfile

    from pdf_support import make_pdf

    pdf = make_pdf()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:  # stored: the PDF's header sits near the start
        z.writestr("FA-M-1.pdf", pdf)
        z.writestr("FA-M-1.xml", ubl_invoice(number="FA-M-1"))
    r = deposit(gw, "fournisseur", "mixte.zip", buf.getvalue())
    pid = only_piece(r)
    box = gw.outbox / COMMUNE_SIRET / "ACHATS"
    delivered = {p.name: p.read_bytes() for p in box.glob(f"{pid}*")}
    assert delivered[f"{pid}.xml"] == ubl_invoice(number="FA-M-1")
    assert [b for n, b in delivered.items() if n.endswith(".pdf")] == [pdf]
    pivot = etree.fromstring(delivered[f"{pid}.pivot.xml"])
    assert [(pj.findtext("NomPJ"), pj.findtext("TypePJ")) for pj in pivot.iter("PJ")] == [("FA-M-1.pdf", "01")]
    _valid(PIVOT_XSD, [box / f"{pid}.pivot.xml"])


def test_wrong_validator_is_corrected_by_the_supplier(gw):
    new_validator = DDT_MOE_SIRET  # any active structure of the demo directory

    pid = only_piece(deposit(gw, "soustraitant", "A9-W.xml", _a9("ST-W")))
    r = send_status(gw, TITULAIRE_SIRET, "w.json", {"piece_id": pid, "status": "ERREUR_FOURNISSEUR_SUR_VALIDEUR",
                                                     "reason": "Je ne suis pas le titulaire de ce marché"})
    assert r["state"] == "IN_INTEGRE", r
    # a validator unknown to the directory is refused; a known one gets the piece
    r = send_status(gw, "soustraitant", "c0.json", {"piece_id": pid, "status": "A_VALIDER_1",
                                                     "correction": {"validator_siret": "28990008600017"}})
    assert r["state"] == "IN_REJETE" and status_of(gw, pid) == "ERREUR_FOURNISSEUR_SUR_VALIDEUR"
    r = send_status(gw, "soustraitant", "c1.json", {"piece_id": pid, "status": "A_VALIDER_1",
                                                     "correction": {"validator_siret": new_validator}})
    assert r["state"] == "IN_INTEGRE", r
    assert status_of(gw, pid) == "A_VALIDER_1"
    assert (gw.outbox / new_validator / "_" / f"{pid}.pivot.xml").exists()
    # the old validator has no say any more; the new one has
    r = send_status(gw, TITULAIRE_SIRET, "v0.json", {"piece_id": pid, "status": "VALIDEE_1"})
    assert r["pieces"][0]["errors"][0]["code"] == "STATUT_NON_AUTORISE"
    r = send_status(gw, new_validator, "v1.json", {"piece_id": pid, "status": "VALIDEE_1"})
    assert r["state"] == "IN_INTEGRE" and status_of(gw, pid) == "MISE_A_DISPOSITION"


def test_a_new_home_routes_the_demo_samples(tmp_path):
    """The README's run command on a fresh machine: the demo directory and samples route on their own."""
    out = gateway_cli("run", "--once", "--workers", "0", env={"GATEWAY_SFTP_ENABLED": "false"}, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    reports = [json.loads(p.read_text()) for p in (tmp_path / "outbox" / "demo-fournisseur" / "reports").glob("*.json")]
    assert sorted(r["state"] for r in reports) == ["IN_INTEGRE", "IN_INTEGRE", "IN_REJETE"]
    refused = next(r for r in reports if r["state"] == "IN_REJETE")
    assert "DEST_INC" in {e["code"] for p in refused["pieces"] for e in p["errors"]}
    assert list((tmp_path / "outbox" / COMMUNE_SIRET / "ACHATS").glob("*.pivot.xml"))
    assert list((tmp_path / "outbox" / UNIVERSITE_SIRET / "_").glob("*.pivot.xml"))
    # a second start seeds nothing again
    out = gateway_cli("run", "--once", "--workers", "0", env={"GATEWAY_SFTP_ENABLED": "false"}, cwd=tmp_path)
    assert "received 0 file(s)" in out.stdout


def test_end_of_contract_chain_to_the_signed_final_account(gw):
    works = WORKS
    a7 = only_piece(deposit(gw, "titulaire", "PDF-1.xml",
                            ubl_invoice(number="PDF-1", cadre="A7", moe_siret=DDT_MOE_SIRET, **works)))
    assert status_of(gw, a7) == "MISE_A_DISPOSITION_MOE"
    a17 = only_piece(deposit(gw, DDT_MOE_SIRET, "PDG-1.xml",
                             ubl_invoice(number="PDG-1", cadre="A17", original_invoice="PDF-1", **works)))
    assert (status_of(gw, a7), status_of(gw, a17)) == ("ASSOCIEE", "MISE_A_DISPOSITION_MOA")
    a20 = only_piece(deposit(gw, OPH_MOA_SIRET, "DG-1.xml",
                             ubl_invoice(number="DG-1", cadre="A20", original_invoice="PDG-1", **works)))
    assert (status_of(gw, a17), status_of(gw, a20)) == ("ASSOCIEE", "A_ASSOCIER_FOURNISSEUR")
    # the décompte général goes to the titulaire, who signs it by depositing the A8
    assert (gw.outbox / TITULAIRE_SIRET / "_" / f"{a20}.pivot.xml").exists()
    a8 = only_piece(deposit(gw, "titulaire", "DGD-1.xml",
                            ubl_invoice(number="DGD-1", cadre="A8", original_invoice="DG-1", **works)))
    assert (status_of(gw, a20), status_of(gw, a8)) == ("ASSOCIEE", "MISE_A_DISPOSITION")
    assert (gw.outbox / OPH_MOA_SIRET / "TRAVAUX" / f"{a8}.pivot.xml").exists()
    assert {p.id for p in piece_history(Store(gw), a8).dossier} == {a7, a17, a20}


def test_facturx_is_routed_like_a_cii_and_delivered_as_its_pdf(gw):
    from invoice_support import cii_invoice
    from pdf_support import make_facturx

    pdf = make_facturx("en16931", xml=cii_invoice(number="FX-LC-1"))
    r = deposit(gw, "fournisseur", "FX-LC-1.pdf", pdf)
    pid = only_piece(r)
    assert r["format"] == "facturx" and r["pieces"][0]["status"] == "MISE_A_DISPOSITION"
    box = gw.outbox / COMMUNE_SIRET / "ACHATS"
    assert (box / f"{pid}.pdf").read_bytes() == pdf
    assert sorted(p.name for p in box.glob(f"{pid}*")) == [f"{pid}.pdf", f"{pid}.pivot.xml"]  # the PDF once
    _valid(PIVOT_XSD, [box / f"{pid}.pivot.xml"])


def test_validate_reads_a_status_file_without_applying_it(tmp_path):
    f = tmp_path / "st.json"
    f.write_text(json.dumps({"statuses": [{"piece_id": "F20261122091501-1a2b3c4d-001", "status": "SERVICE_FAIT"},
                                          {"piece_id": "F20261122091501-1a2b3c4d-002", "status": "PAYEE"}]}))
    out = gateway_cli("validate", "--json", str(f))
    assert out.returncode == 1, out.stderr
    res = json.loads(out.stdout)
    assert res["format"] == "status" and [e["code"] for e in res["errors"]] == ["STATUT_INCONNU"]
    assert not list(tmp_path.glob("*.db"))


def test_a_flow_failing_after_registering_its_numbers_gives_them_back(gw, monkeypatch):
    real = new_pieces.route_new_pieces

    def broken(*a, **kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr(new_pieces, "route_new_pieces", broken)
    r = deposit(gw, "fournisseur", "first.xml", ubl_invoice(number="FA-LC-9"))
    assert r["state"] == "IN_REJETE" and [e["code"] for e in r["errors"]] == ["ERR_INTERNE"]
    monkeypatch.setattr(new_pieces, "route_new_pieces", real)
    # the supplier sends it again (a new file): the number is free, it is accepted
    r = deposit(gw, "fournisseur", "again.xml", ubl_invoice(number="FA-LC-9", issue_date="2024-03-16"))
    assert r["state"] == "IN_INTEGRE", r


def test_one_failing_change_does_not_take_the_others_down(gw, monkeypatch):
    a = only_piece(deposit(gw, "fournisseur", "FA-LC-10.xml", ubl_invoice(number="FA-LC-10")))
    b = only_piece(deposit(gw, "fournisseur", "FA-LC-11.xml", ubl_invoice(number="FA-LC-11")))
    real = status_apply.change_status

    def flaky(settings, store, machine, piece_id, req, **kw):
        if piece_id == a:
            raise RuntimeError("boom")
        return real(settings, store, machine, piece_id, req, **kw)

    monkeypatch.setattr(status_apply, "change_status", flaky)
    r = send_status(gw, COMMUNE_SIRET, "two.json", {"piece_id": a, "status": "SERVICE_FAIT"},
                    {"piece_id": b, "status": "SERVICE_FAIT"})
    assert r["state"] == "IN_INTEGRE_PARTIEL", r
    assert [e["code"] for e in r["pieces"][0]["errors"]] == ["ERR_INTERNE"]
    assert (status_of(gw, a), status_of(gw, b)) == ("MISE_A_DISPOSITION", "SERVICE_FAIT")


def test_delivery_folders_are_safe_names_apart_from_the_partys_own_files(home):
    from gateway.routing.delivery import delivery_dir

    d = delivery_dir(home, {"siret": COMMUNE_SIRET, "service": "reports"})
    assert d == home.outbox / COMMUNE_SIRET / "service-reports"
    for hostile in ("../../etc", "/abs", "a/../../b", ".."):
        d = delivery_dir(home, {"siret": COMMUNE_SIRET, "service": hostile})
        assert d.parent == home.outbox / COMMUNE_SIRET and ".." not in d.name and "/" not in d.name
    assert delivery_dir(home, {"siret": "../x", "service": None}).parent.parent == home.outbox


def test_operators_page_shows_pieces_and_delays_running_out(gw):
    from gateway.ops import web

    pid = only_piece(deposit(gw, "soustraitant", "A9-P.xml", _a9("ST-P")))
    page = web.overview_page(gw)
    assert "A_VALIDER_1" in page and "Delays running out within a day (0)" in page
    later = web.overview_page(gw, now=db.utcnow() + timedelta(days=14, hours=12))
    assert "Delays running out within a day (1)" in later and pid in later


def test_a_works_piece_without_its_moe_is_refused_saying_where(gw):
    r = deposit(gw, "titulaire", "PDM-X.xml", ubl_invoice(number="PDM-X", cadre="A4", **WORKS))
    (err,) = [e for e in r["pieces"][0]["errors"] if e["code"] == "REJ_CONT_B2G"]
    assert "MOE" in err["message"] and err["value"] == "A4" and err["location"].get("line")


def test_a_correction_is_refused_with_any_move_but_those_that_take_one(gw):
    """The recipient takes a piece into account and slips in a new SIRET: the
    piece must not be re-addressed elsewhere."""
    pid = only_piece(deposit(gw, "fournisseur", "FA-LC-12.xml", ubl_invoice(number="FA-LC-12")))
    r = send_status(gw, COMMUNE_SIRET, "take.json", {"piece_id": pid, "status": "PRISE_EN_COMPTE_DESTINATAIRE",
                                                      "correction": {"recipient_siret": UNIVERSITE_SIRET}})
    assert r["state"] == "IN_REJETE" and r["pieces"][0]["errors"][0]["code"] == "STATUT_INTERDIT", r
    piece = Store(gw).piece(pid)
    assert (piece.status, piece.recipient_siret) == ("MISE_A_DISPOSITION", COMMUNE_SIRET)
    assert not list(gw.outbox.glob(f"{UNIVERSITE_SIRET}/*/{pid}*"))
    # the validator correction changes a validator, never the recipient
    a9 = only_piece(deposit(gw, "soustraitant", "A9-C.xml", _a9("ST-C")))
    send_status(gw, TITULAIRE_SIRET, "w.json", {"piece_id": a9, "status": "ERREUR_FOURNISSEUR_SUR_VALIDEUR",
                                                "reason": "Pas le bon valideur"})
    r = send_status(gw, "soustraitant", "c.json", {"piece_id": a9, "status": "A_VALIDER_1",
                                                   "correction": {"recipient_siret": UNIVERSITE_SIRET}})
    assert r["pieces"][0]["errors"][0]["code"] == "STATUT_INTERDIT", r
    assert status_of(gw, a9) == "ERREUR_FOURNISSEUR_SUR_VALIDEUR"


def test_a_recycling_reads_the_archived_file_once(gw, monkeypatch):
    """Checking the new recipient and delivering the piece to it share one
    reading of the deposited file."""
    pid = only_piece(deposit(gw, "fournisseur", "FA-LC-13.xml", ubl_invoice(number="FA-LC-13")))
    send_status(gw, COMMUNE_SIRET, "r.json", {"piece_id": pid, "status": "A_RECYCLER", "reason": "Mauvais service"})
    calls = []
    real = evaluate.evaluate_file  # changes.deposited imports it when it runs (the service's main process never does)
    monkeypatch.setattr(evaluate, "evaluate_file", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    store = Store(gw)
    out = lifecycle.change_status(gw, store, Machine.load(gw), pid, lifecycle.Request(
        "DEPOSEE", correction=(("recipient_siret", UNIVERSITE_SIRET), ("service_code", ""))), roles=["supplier"])
    assert out.ok and out.applied[-1] == "MISE_A_DISPOSITION", out
    assert (gw.outbox / UNIVERSITE_SIRET / "_" / f"{pid}.pivot.xml").exists()
    assert len(calls) == 1


def test_a_link_that_loses_to_a_concurrent_change_sends_no_status_file(gw, monkeypatch):
    """The MOE refuses the A4 while the A15 that links it is being routed (another
    worker, another host): the A4 stays refused, the conflict is in its history,
    and its supplier gets no ASSOCIEE status file for a move that never happened."""
    a4 = only_piece(deposit(gw, "titulaire", "PDM-7.xml",
                            ubl_invoice(number="PDM-7", cadre="A4", moe_siret=DDT_MOE_SIRET, **WORKS)))
    send_status(gw, DDT_MOE_SIRET, "moe7.json", {"piece_id": a4, "status": "PRISE_EN_COMPTE_MOE"})
    before = set((gw.outbox / "titulaire" / "statuses").glob(f"{a4}.*"))
    real = new_pieces.route_new_pieces

    def refused_meanwhile(*a, **kw):
        routed = real(*a, **kw)
        from gateway.store.repository import Piece
        with Store(gw).session() as s:  # what the other worker commits before this one does
            s.get(Piece, a4).status = "REFUSEE_MOE"
            s.commit()
        return routed

    monkeypatch.setattr(new_pieces, "route_new_pieces", refused_meanwhile)
    deposit(gw, DDT_MOE_SIRET, "EA-7.xml", ubl_invoice(number="EA-7", cadre="A15", original_invoice="PDM-7", **WORKS))
    assert status_of(gw, a4) == "REFUSEE_MOE"
    outcomes = [e.outcome for e in piece_history(Store(gw), a4).events if e.stage == "status"]
    assert outcomes[-1] == "conflict"
    new = set((gw.outbox / "titulaire" / "statuses").glob(f"{a4}.*")) - before
    assert not [p for p in new if "ASSOCIEE" in p.read_text(encoding="utf-8")]
    # without the race, the link's status file is written, after the commit
    monkeypatch.setattr(new_pieces, "route_new_pieces", real)
    b4 = only_piece(deposit(gw, "titulaire", "PDM-8.xml",
                            ubl_invoice(number="PDM-8", cadre="A4", moe_siret=DDT_MOE_SIRET, **WORKS)))
    send_status(gw, DDT_MOE_SIRET, "moe8.json", {"piece_id": b4, "status": "PRISE_EN_COMPTE_MOE"})
    deposit(gw, DDT_MOE_SIRET, "EA-8.xml", ubl_invoice(number="EA-8", cadre="A15", original_invoice="PDM-8", **WORKS))
    assert status_of(gw, b4) == "ASSOCIEE"
    told = [p for p in (gw.outbox / "titulaire" / "statuses").glob(f"{b4}.*.json") if "ASSOCIEE" in p.read_text()]
    assert len(told) == 1

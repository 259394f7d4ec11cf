"""Every CPPStatut message has its own envelope id (IdFlx), the same when it is
written again, and every time in a return file is UTC with a Z."""
from __future__ import annotations

import json

from lxml import etree

from conftest import drop, report_for
from gateway.lifecycle.notices import flush_notices
from gateway.rules import directory
from gateway.runtime.service import Gateway
from gateway.store.repository import Store
from invoice_support import ubl_invoice


def _id_flx(path) -> str:
    return etree.parse(str(path)).findtext(".//ParametreIndiv[Code='IdFlx']/Valeurparametre")


def test_status_files_written_in_one_second_do_not_share_an_envelope_id(home):
    directory.import_files(home, directory.demo_files())
    for i in range(6):
        drop(home, "fournisseur", f"FA-ENV-{i}.xml", ubl_invoice(number=f"FA-ENV-{i}"))
    Gateway(home, once=True).run()
    files = sorted(home.outbox.glob("*/statuses/*.xml"))
    assert len(files) >= 12  # the supplier and the recipient hear of each of the six
    ids = {f: _id_flx(f) for f in files}
    # one message, one id: the file's own name (<piece>.<change>), so parties reading
    # the same change get the same id and two changes never share one
    assert all(ids[f] == f.name.removesuffix(".xml") for f in files), ids
    assert len({ids[f] for f in files if f.parent.parent.name == "fournisseur"}) == 6

    # written again (as after a crash before they were marked written): same names, same ids
    before = {f: f.read_bytes() for f in files}
    store = Store(home)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE notice SET written_at = NULL")
    for f in files:
        f.unlink()
    flush_notices(home, store)
    assert {f: f.read_bytes() for f in files} == before


def test_every_time_in_a_return_file_is_utc_with_a_z(home):
    directory.import_files(home, directory.demo_files())
    drop(home, "fournisseur", "FA-Z.xml", ubl_invoice(number="FA-Z"))
    Gateway(home, once=True).run()
    report = report_for(home, "fournisseur", "FA-Z.xml")
    assert report["received_at"].endswith("Z") and report["processed_at"].endswith("Z")
    [flow_xml] = home.outbox.glob("fournisseur/reports/*.xml")
    stamps = [e.text for e in etree.parse(str(flow_xml)).iter("Horodatage")]
    status_xml = sorted(home.outbox.glob("fournisseur/statuses/*.xml"))
    stamps += [e.text for f in status_xml for e in etree.parse(str(f)).iter("Horodatage")]
    status_json = sorted(home.outbox.glob("fournisseur/statuses/*.json"))
    stamps += [s["at"] for f in status_json for s in json.loads(f.read_bytes())["statuses"]]
    assert stamps and status_xml and status_json
    assert all(t.endswith("Z") and t[10] == "T" for t in stamps), stamps

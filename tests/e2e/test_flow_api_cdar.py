"""The reform's life cycle through the Flow Service API, in CDAR both ways:
the supplier downloads its invoice's statuses as CDAR messages (valid
against the CDAR XSD and the BR-FR-CDV rules), the recipient sends a CDAR
status back through the API, and a party without the right is refused."""
from __future__ import annotations

import httpx
import pytest
from lxml import etree

from cdar_support import assert_cdv, party_cdar
from flow_api_support import SERVICE, LiveApi, api_home, bearer, client_of, deposit, token
from gateway.rules import directory
from gateway.runtime.service import Gateway
from gateway.store.db import dispose_all
from gateway.store.repository import Store
from invoice_support import COMMUNE_SIRET, SUPPLIER_SIRET, ubl_invoice
from sftp_support import free_port

CDV = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}ProcessConditionCode"


@pytest.fixture()
def live(tmp_path):
    s = api_home(tmp_path / "home", f"port = {free_port()}\n[statuses.parties]\nfournisseur = [\"cppstatut\", \"json\", \"cdar\"]\n")
    directory.import_files(s, directory.demo_files())
    with LiveApi(s) as api, httpx.Client(base_url=api.base, timeout=30) as http:
        yield s, http
    dispose_all()


def _cdar_codes(http: httpx.Client, tok: str, fid: str) -> list[str]:
    """The CDV codes of every CDAR status document the flow offers, each checked for real."""
    flow = http.get(f"{SERVICE}/flows/{fid}", headers=bearer(tok)).json()
    codes = []
    for doc in flow["documents"]:
        if doc["docType"] == "Status" and doc["name"].endswith(".cdar.xml"):
            got = http.get(f"{SERVICE}/flows/{fid}", params={"docType": "Status", "docIndex": doc["docIndex"]},
                           headers=bearer(tok))
            assert got.status_code == 200
            assert_cdv(got.content)  # the CDAR XSD and the BR-FR-CDV rules, run by Saxon
            codes += [e.text for e in etree.fromstring(got.content).iter(CDV)]
    return codes


def test_statuses_as_cdar_both_ways_through_the_api(live):
    s, http = live
    supplier = token(http, *client_of(s, "fournisseur"))
    r = deposit(http, supplier, "api-cdar-1.xml", ubl_invoice(number="API-CDAR-1"))
    assert r.status_code == 202, r.text
    fid = r.json()["flowId"]
    Gateway(s, once=True).run()
    assert "203" in _cdar_codes(http, supplier, fid)  # made available to the commune
    pid = http.get(f"{SERVICE}/flows/{fid}", params={"docType": "Report"}, headers=bearer(supplier)).json()[
        "pieces"][0]["piece_id"]

    # the commune's software takes it in charge, in CDAR, through the API
    commune = token(http, *client_of(s, COMMUNE_SIRET))
    cdv = party_cdar(invoice_number="API-CDAR-1", cdv=204, seller_siret=SUPPLIER_SIRET, issuer_siret=COMMUNE_SIRET)
    st = deposit(http, commune, "cdv-204.xml", cdv, syntax="CDAR")
    assert st.status_code == 202, st.text
    Gateway(s, once=True).run()
    assert Store(s).piece(pid).status == "PRISE_EN_COMPTE_DESTINATAIRE"
    told = http.get(f"{SERVICE}/flows/{st.json()['flowId']}", headers=bearer(commune)).json()
    assert told["acknowledgement"]["status"] == "Ok"
    assert "204" in _cdar_codes(http, supplier, fid)  # the supplier hears of it, in CDAR

    # the supplier may not say its own invoice was approved: refused, with the reason in its report
    bad = party_cdar(invoice_number="API-CDAR-1", cdv=205, seller_siret=SUPPLIER_SIRET, issuer_siret=SUPPLIER_SIRET,
                     role="SE")
    st = deposit(http, supplier, "cdv-205.xml", bad, syntax="CDAR")
    assert st.status_code == 202
    Gateway(s, once=True).run()
    report = http.get(f"{SERVICE}/flows/{st.json()['flowId']}", params={"docType": "Report"},
                      headers=bearer(supplier)).json()
    codes = {e["code"] for p in report["pieces"] for e in p.get("errors", [])} | {
        e["code"] for e in report.get("errors", [])}
    assert "STATUT_NON_AUTORISE" in codes, report
    assert Store(s).piece(pid).status == "PRISE_EN_COMPTE_DESTINATAIRE"

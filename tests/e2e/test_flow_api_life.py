"""A connector's whole life through the Flow Service API, over real HTTP (uvicorn on a port):
token, webhook, deposit of an invoice, the real pipeline, search, get, download of the
report and the original, webhook calls with their signature and retries, the recipient's
status sent back through the API, another partner seeing nothing, a revoked client refused,
the same bytes deposited again."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

import httpx
import pytest

from flow_api_support import SERVICE, LiveApi, Receiver, api_home, bearer, client_of, deposit, token
from gateway.rules import directory
from gateway.runtime.service import Gateway
from gateway.store import api_clients, api_hooks
from gateway.store.db import dispose_all
from gateway.store.repository import Store
from invoice_support import COMMUNE_SIRET, ubl_invoice
from sftp_support import free_port, wait_until


@pytest.fixture()
def live(tmp_path):
    s = api_home(tmp_path / "home", f"port = {free_port()}\nwebhook_poll_seconds = 0.1\n")
    directory.import_files(s, directory.demo_files())
    receiver = Receiver(fail=1)  # the first call is refused: it must come again
    with LiveApi(s) as api, httpx.Client(base_url=api.base, timeout=30) as http:
        yield s, http, receiver
    receiver.close()
    dispose_all()


def run(settings) -> None:
    Gateway(settings, once=True).run()


def test_a_connectors_whole_life(live):
    s, http, receiver = live
    supplier = client_of(s, "fournisseur")
    tok = token(http, *supplier)
    hook = http.post(f"{SERVICE}/webhooks", json={"callbackUrl": receiver.url}, headers=bearer(tok)).json()

    data = ubl_invoice(number="API-LIFE-1")
    r = deposit(http, tok, "api-life-1.xml", data)
    assert r.status_code == 202, r.text
    fid = r.json()["flowId"]
    run(s)  # the folder watcher claims the file, a worker judges and routes it, the report is written

    got = http.get(f"{SERVICE}/flows/{fid}", headers=bearer(tok))
    assert got.status_code == 200
    flow = got.json()
    assert flow["flowId"] == fid and flow["acknowledgement"] == {"status": "Ok"}
    assert flow["flowSyntax"] == "UBL" and flow["sha256"] == hashlib.sha256(data).hexdigest()
    gateway_id = flow["gatewayFlowId"]
    assert Store(s).flow(gateway_id).state == "IN_INTEGRE"
    assert {d["docType"] for d in flow["documents"]} >= {"Report", "ReportXml", "Status"}

    report = http.get(f"{SERVICE}/flows/{fid}", params={"docType": "Report"}, headers=bearer(tok))
    assert report.status_code == 200 and report.headers["content-disposition"].startswith("attachment;filename=")
    assert report.json()["flow_id"] == gateway_id and report.json()["state"] == "IN_INTEGRE"
    original = http.get(f"{SERVICE}/flows/{fid}", params={"docType": "Original"}, headers=bearer(tok))
    assert original.content == data
    status = http.get(f"{SERVICE}/flows/{fid}", params={"docType": "Status", "docIndex": 1}, headers=bearer(tok))
    assert status.status_code == 200 and status.content
    assert http.get(f"{SERVICE}/flows/{fid}", params={"docType": "Converted"},
                    headers=bearer(tok)).status_code == 404

    found = http.post(f"{SERVICE}/flows/search", json={"where": {"ackStatus": "Ok"}}, headers=bearer(tok)).json()
    assert [f["flowId"] for f in found["results"]] == [fid]

    # the webhook: refused once, called again, signed as the OpenAPI says
    assert wait_until(lambda: fid in [b["flowId"] for b in receiver.bodies()], timeout=20)
    assert receiver.refused == 1
    headers, body = next((h, b) for h, b in receiver.calls if json.loads(b)["flowId"] == fid)
    stamp = headers["Afnor-Signature-Timestamp"]
    fingerprint = hashlib.sha256(body + b"@" + stamp.encode()).digest()
    expected = hmac.new(base64.b64decode(hook["signingKey"]), fingerprint, hashlib.sha256).digest()
    assert base64.b64decode(headers["Afnor-Signature"]) == expected
    # the call telling "Ok" may come a poll after the first one (the refused call is retried meanwhile)
    assert wait_until(lambda: any(b["acknowledgement"]["status"] == "Ok" for b in receiver.bodies()
                                  if b["flowId"] == fid), timeout=20)
    states = [st for _, st, _, _ in api_hooks.calls_of(s, hook["webhookId"])]
    assert "delivered" in states

    # the recipient sends a status back through the API; the supplier's webhook hears of the piece's change
    pid = report.json()["pieces"][0]["piece_id"]
    recipient = token(http, *client_of(s, COMMUNE_SIRET))
    before = len(receiver.calls)
    st = deposit(http, recipient, "st1.json", json.dumps({"statuses": [{"piece_id": pid, "status": "SERVICE_FAIT"}]})
                 .encode(), syntax="CDAR")
    assert st.status_code == 202
    run(s)
    assert Store(s).piece(pid).status == "SERVICE_FAIT"
    assert wait_until(lambda: len(receiver.calls) > before, timeout=20)
    assert fid in [b["flowId"] for b in receiver.bodies()[before:]]
    st_flow = http.get(f"{SERVICE}/flows/{st.json()['flowId']}", headers=bearer(recipient)).json()
    assert st_flow["acknowledgement"]["status"] == "Ok" and st_flow["flowType"] == "CustomerInvoiceLC"

    # another partner sees none of it
    other = token(http, *client_of(s, "OTHER"))
    for params in ({}, {"docType": "Report"}, {"docType": "Original"}):
        assert http.get(f"{SERVICE}/flows/{fid}", params=params, headers=bearer(other)).status_code == 404
        assert http.get(f"{SERVICE}/flows/{gateway_id}", params=params, headers=bearer(other)).status_code == 404
    assert http.post(f"{SERVICE}/flows/search", json={"where": {}}, headers=bearer(other)).json()["results"] == []
    assert http.delete(f"{SERVICE}/webhooks/{hook['webhookId']}", headers=bearer(other)).status_code == 404

    # the same bytes again: the same flowId, no second flow
    again = deposit(http, tok, "api-life-1-again.xml", data)
    assert again.status_code == 202 and again.json()["flowId"] == fid
    run(s)
    assert [f.id for f in Store(s).recent_flows(partner="fournisseur")] == [gateway_id]

    # a revoked client is refused at once
    api_clients.revoke_client(s, supplier[0])
    r = http.post(f"{SERVICE}/flows/search", json={"where": {}}, headers=bearer(tok))
    assert r.status_code == 401 and r.json()["errorCode"] == "INVALID_TOKEN"

"""The Flow Service API's own rules through its HTTP interface: tokens, deposits into the
inbox (idempotent, bounded, hostile names), who sees what, Organization-Id, webhooks."""
from __future__ import annotations

import hashlib
import io
import os
import time

import jwt
import pytest

from conftest import PgDatabase
from flow_api_support import SERVICE, api_home, bearer, client_of, deposit, api_client, token
from gateway.channels.flow_api.auth import signing_key
from gateway.channels import deposit as dep_mod
from gateway.channels.flow_api import intake
from gateway.channels.flow_api.intake import FlowInfo, deposit_flow, recover
from gateway.store import api_clients
from gateway.store.db import dispose_all
from invoice_support import ubl_invoice


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request, tmp_path):
    """The app on a home on SQLite, and on PostgreSQL when the tests have a server."""
    pg = PgDatabase() if request.param == "postgres" else None
    store = f'[store]\ndatabase_url = "{pg.url}"\n' if pg else ""
    s = api_home(tmp_path / "home", '[parties]\nACME = ["21990001600011"]\n' + store)
    with api_client(s) as http:
        yield s, http
    dispose_all()
    if pg is not None:
        pg.close()


def test_a_token_for_good_credentials_only_and_short_lived(api):
    s, http = api
    cid, secret = client_of(s, "ACME")
    r = http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    claims = jwt.decode(body["access_token"], signing_key(s), algorithms=["HS256"], audience="flow-service")
    assert claims["sub"] == cid and claims["partner"] == "ACME" and claims["exp"] - claims["iat"] == 900
    assert oct((s.keys / "flow-api.key").stat().st_mode & 0o777) == "0o600"
    bad = http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": cid, "client_secret": "x"})
    assert bad.status_code == 401 and bad.json()["errorCode"] == "INVALID_CLIENT"
    assert "client_secret" not in bad.text and secret not in bad.text
    grant = http.post("/auth/token", data={"grant_type": "password", "client_id": cid, "client_secret": secret})
    assert grant.status_code == 400 and grant.json()["errorCode"] == "UNSUPPORTED_GRANT_TYPE"
    stored = {c.id for c in api_clients.list_clients(s)}
    assert cid in stored  # and the secret is nowhere in clear in the store
    for f in s.home.glob("gateway.db*"):  # the database and its WAL (SQLite)
        assert secret.encode() not in f.read_bytes()


def test_wrong_secrets_are_throttled_without_checking(api):
    s, http = api
    cid, secret = client_of(s, "ACME")
    codes = [http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": cid,
                                            "client_secret": f"wrong{i}"}).status_code for i in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    r = http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["errorCode"] == "TOO_MANY_REQUESTS"


def test_requests_without_a_valid_token_are_refused(api):
    s, http = api
    assert http.post(f"{SERVICE}/flows/search", json={"where": {}}).json()["errorCode"] == "MISSING_TOKEN"
    forged = jwt.encode({"sub": "x", "partner": "ACME", "exp": time.time() + 60}, "not-the-key", algorithm="HS256")
    r = http.post(f"{SERVICE}/flows/search", json={"where": {}}, headers=bearer(forged))
    assert r.status_code == 401 and r.json()["errorCode"] == "INVALID_TOKEN"
    cid, secret = client_of(s, "ACME")
    tok = token(http, cid, secret)
    assert http.post(f"{SERVICE}/flows/search", json={"where": {}}, headers=bearer(tok)).status_code == 200
    api_clients.revoke_client(s, cid)
    r = http.post(f"{SERVICE}/flows/search", json={"where": {}}, headers=bearer(tok))
    assert r.status_code == 401 and r.json()["errorCode"] == "INVALID_TOKEN"  # at once, token still unexpired
    assert http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": cid,
                                          "client_secret": secret}).status_code == 401


def test_a_deposit_lands_in_the_partners_inbox_once_per_bytes(api):
    s, http = api
    tok = token(http, *client_of(s, "ACME"))
    data = ubl_invoice(number="API-1")
    r = deposit(http, tok, "api-1.xml", data, trackingId="T-1")
    assert r.status_code == 202, r.text
    first = r.json()
    assert first["name"] == "api-1.xml" and first["flowSyntax"] == "UBL" and first["trackingId"] == "T-1"
    assert first["sha256"] == hashlib.sha256(data).hexdigest() and first["submittedAt"].endswith("Z")
    assert (s.inbox / "ACME" / "api-1.xml").read_bytes() == data
    again = deposit(http, tok, "other-name.xml", data)
    assert again.status_code == 202 and again.json()["flowId"] == first["flowId"]
    assert sorted(os.listdir(s.inbox / "ACME")) == ["api-1.xml"]  # nothing deposited twice, no temp left
    got = http.get(f"{SERVICE}/flows/{first['flowId']}", headers=bearer(tok)).json()
    assert got["acknowledgement"] == {"status": "Pending"} and got["trackingId"] == "T-1"


def test_bad_deposits_get_clear_errors_and_leave_nothing(api):
    s, http = api
    tok = token(http, *client_of(s, "ACME"))
    for name in ("../x.xml", ".hidden.xml", "a/b.xml", "up.xml.part", "x\x01.xml", "é" * 200):
        r = deposit(http, tok, name, b"<a/>")
        assert r.status_code == 422 and r.json()["errorCode"] == "UNPROCESSABLE_ENTITY", name
    r = deposit(http, tok, "r.xml", b"<a/>", syntax="FRR")
    assert r.status_code == 422 and "FRR" in r.json()["errorMessage"]
    r = deposit(http, tok, "r.xml", b"<a/>", sha256="0" * 64)
    assert r.status_code == 422 and r.json()["errorMessage"] == "ChecksumMismatch"
    r = http.post(f"{SERVICE}/flows", headers=bearer(tok), files={"flowInfo": (None, "{not json")})
    assert r.status_code == 400 and r.json()["errorCode"] == "INVALID_REQUEST"
    r = http.post(f"{SERVICE}/flows", headers=bearer(tok), content=b"plain", )
    assert r.status_code == 400
    assert not [n for n in os.listdir(s.inbox / "ACME")] if (s.inbox / "ACME").exists() else True


def test_oversize_bodies_are_refused_at_the_bound(tmp_path):
    s = api_home(tmp_path / "small", "")
    from dataclasses import replace

    s = replace(s, max_file_bytes=10_000)
    with api_client(s) as http:
        tok = token(http, *client_of(s, "ACME"))
        r = deposit(http, tok, "big.xml", b"<a>" + b"x" * 2_000_000 + b"</a>")
        assert r.status_code == 413 and r.json()["errorCode"] == "FILE_SIZE_EXCEEDED"
        r = deposit(http, tok, "mid.xml", b"<a>" + b"x" * 20_000 + b"</a>")  # under the body bound, over the file's
        assert r.status_code == 413
        assert not list((s.inbox / "ACME").iterdir())
    dispose_all()


def test_a_partner_sees_only_its_own_flows(api):
    s, http = api
    acme = token(http, *client_of(s, "ACME"))
    other = token(http, *client_of(s, "OTHER"))
    fid = deposit(http, acme, "mine.xml", ubl_invoice(number="MINE")).json()["flowId"]
    r = http.get(f"{SERVICE}/flows/{fid}", headers=bearer(other))
    assert r.status_code == 404 and r.json()["errorCode"] == "MISSING_RESOURCE"
    assert http.post(f"{SERVICE}/flows/search", json={"where": {}}, headers=bearer(other)).json()["results"] == []
    # the same bytes from another partner are its own flow
    theirs = deposit(http, other, "mine.xml", ubl_invoice(number="MINE")).json()["flowId"]
    assert theirs != fid


def test_organization_id_only_where_the_partner_acts_for_it(api):
    s, http = api
    tok = token(http, *client_of(s, "ACME"))
    ok = http.post(f"{SERVICE}/flows/search", json={"where": {}},
                   headers=bearer(tok, **{"Organization-Id": "21990001600011"}))
    assert ok.status_code == 200
    r = http.post(f"{SERVICE}/flows/search", json={"where": {}},
                  headers=bearer(tok, **{"Organization-Id": "19990004400017"}))
    assert r.status_code == 403 and r.json()["errorCode"] == "FORBIDDEN_ACCESS"
    # once `gateway partner acts-for ACME 19990004400017` says so, the same header is honoured
    from gateway.store import structures
    from gateway.store.repository import Store

    structures.set_acts_for(Store(s), "ACME", "19990004400017", ())
    ok = http.post(f"{SERVICE}/flows/search", json={"where": {}},
                   headers=bearer(tok, **{"Organization-Id": "19990004400017"}))
    assert ok.status_code == 200


def test_search_pages_with_a_cursor_and_filters(api):
    s, http = api
    tok = token(http, *client_of(s, "ACME"))
    ids = [deposit(http, tok, f"p{i}.xml", ubl_invoice(number=f"P-{i}"), trackingId=f"t{i}").json()["flowId"]
           for i in range(5)]
    seen, cursor = [], None
    while True:
        body = {"where": {"ackStatus": "Pending"}, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.post(f"{SERVICE}/flows/search", json=body, headers=bearer(tok)).json()
        seen += [f["flowId"] for f in page["results"]]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    assert seen == ids
    one = http.post(f"{SERVICE}/flows/search", json={"where": {"trackingId": "t3"}}, headers=bearer(tok)).json()
    assert [f["flowId"] for f in one["results"]] == [ids[3]]
    none = http.post(f"{SERVICE}/flows/search", json={"where": {"ackStatus": "Ok"}}, headers=bearer(tok)).json()
    assert none["results"] == []
    bad = http.post(f"{SERVICE}/flows/search", json={"where": {}, "cursor": "garbage"}, headers=bearer(tok))
    assert bad.status_code == 400 and bad.json()["errorCode"] == "INVALID_REQUEST"
    assert http.post(f"{SERVICE}/flows/search", json={"where": {}, "limit": 101},
                     headers=bearer(tok)).status_code == 400


def test_webhooks_belong_to_their_partner(api):
    s, http = api
    acme = token(http, *client_of(s, "ACME"))
    other = token(http, *client_of(s, "OTHER"))
    r = http.post(f"{SERVICE}/webhooks", json={"callbackUrl": "http://127.0.0.1:9/hook", "ackStatus": "Ok"},
                  headers=bearer(acme))
    assert r.status_code == 201
    created = r.json()
    assert len(__import__("base64").b64decode(created["signingKey"])) == 32
    hid = created["webhookId"]
    listed = http.get(f"{SERVICE}/webhooks", headers=bearer(acme)).json()
    assert listed["count"] == 1 and listed["webhooks"][0]["callbackUrl"] == "http://127.0.0.1:9/hook"
    assert "signingKey" not in listed["webhooks"][0]
    assert http.get(f"{SERVICE}/webhooks", headers=bearer(other)).json()["count"] == 0
    assert http.delete(f"{SERVICE}/webhooks/{hid}", headers=bearer(other)).status_code == 404
    upd = http.put(f"{SERVICE}/webhooks/{hid}", json={"callbackUrl": "https://example.org/x"}, headers=bearer(acme))
    assert upd.status_code == 200 and upd.json()["callbackUrl"] == "https://example.org/x"
    for bad in ({"callbackUrl": "file:///etc/passwd"}, {"callbackUrl": "http://h/x", "flowTypes": ["Nope"]}, {}):
        r = http.post(f"{SERVICE}/webhooks", json=bad, headers=bearer(acme))
        assert r.status_code == 400 and r.json()["errorCode"] == "INVALID_REQUEST", bad
    assert http.delete(f"{SERVICE}/webhooks/{hid}", headers=bearer(acme)).status_code == 204
    assert http.get(f"{SERVICE}/webhooks/{hid}", headers=bearer(acme)).status_code == 404


class Crash(BaseException):
    """The process dies here."""


def test_a_deposit_recorded_before_a_crash_reaches_the_inbox_at_the_next_start(api, monkeypatch):
    """A crash between recording a deposit and renaming its file into the inbox: the next
    start renames it; the same bytes deposited again meanwhile get the same flowId."""
    s, http = api
    cid, _ = client_of(s, "ACME")
    data = ubl_invoice(number="CRASH-1")
    folder = s.inbox / "ACME"

    def dies(self, name, *, replace=False):  # noqa: ANN001, ANN202
        raise Crash()

    with monkeypatch.context() as mp:
        mp.setattr(dep_mod.Deposit, "commit", dies)
        mp.setattr(dep_mod.Deposit, "__exit__", lambda self, *exc: None)  # a dead process cleans nothing up
        with pytest.raises(Crash):
            deposit_flow(s, "ACME", cid, FlowInfo("crash.xml", "UBL"), io.BytesIO(data), None)
    recorded = api_clients.deposit_of_bytes(s, "ACME", hashlib.sha256(data).hexdigest())
    assert recorded is not None and recorded.deposited_at is None
    assert [n for n in os.listdir(folder) if not n.startswith(".")] == []  # not in the inbox yet
    assert recover(s) == 1
    assert (folder / "crash.xml").read_bytes() == data
    assert recover(s) == 0 and not [n for n in os.listdir(folder) if n.startswith(".")]
    again = deposit_flow(s, "ACME", cid, FlowInfo("again.xml", "UBL"), io.BytesIO(data), None)
    assert again.id == recorded.id and sorted(os.listdir(folder)) == ["crash.xml"]


def test_a_crash_after_the_rename_is_not_deposited_twice(api, monkeypatch):
    s, http = api
    cid, _ = client_of(s, "ACME")
    data = ubl_invoice(number="CRASH-2")

    def dies(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        raise Crash()

    with monkeypatch.context() as mp:
        mp.setattr(intake.api_clients, "mark_deposited", dies)
        with pytest.raises(Crash):
            deposit_flow(s, "ACME", cid, FlowInfo("late.xml", "UBL"), io.BytesIO(data), None)
    assert recover(s) == 1
    assert sorted(os.listdir(s.inbox / "ACME")) == ["late.xml"]
    assert api_clients.deposit_of_bytes(s, "ACME", hashlib.sha256(data).hexdigest()).deposited_at is not None

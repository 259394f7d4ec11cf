"""The web's /search page, its CSV export and replay by query, over real
HTTP (uvicorn on a socket, httpx): the same filters as the command line,
results linking to the flow and piece pages, and a replay only a logged-in
operator can make, from the page's own form."""
from __future__ import annotations

import re

import httpx
import pytest

from conftest import drop, interrupted
from gateway.ops import operators
from gateway.ops.web import create_app
from gateway.rules import directory
from gateway.runtime.service import Gateway
from gateway.store import db
from gateway.store.repository import Store
from invoice_support import ubl_invoice
from test_web import _Served

OPERATOR = ("alice", "correct horse battery")


@pytest.fixture()
def site(home):
    directory.import_files(home, directory.demo_files())
    drop(home, "acme", "ok.xml", ubl_invoice(number="FA-OK-1"))
    drop(home, "acme", "nouveau.xml", ubl_invoice(number="FA-=HYPERLINK-1", service_code="NOUVEAU"))
    Gateway(home, once=True).run()
    with _Served(create_app(home)) as srv:
        yield home, srv.url
    db.dispose_all()


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def test_search_page_finds_links_and_exports(site):
    home, url = site
    r = httpx.get(url + "/search", params={"code": "REJ_CONT_B2G", "since": "2020-01-01"})
    assert r.status_code == 200 and "default-src 'none'" in r.headers["content-security-policy"]
    [piece] = Store(home).pieces(re.search(r'href="/flows/([^"]+)"', r.text).group(1))
    assert f'href="/pieces/{piece.id}"' in r.text and f'href="/flows/{piece.flow_id}"' in r.text
    assert "1 piece(s) found" in r.text and "FA-OK-1" not in r.text
    assert "Replay" not in r.text  # nobody logged in: no replay form
    bad = httpx.get(url + "/search", params={"cadre": "A99"})
    assert bad.status_code == 400 and "valid: A1, A2" in bad.text
    csv = httpx.get(url + "/search.csv", params={"partner": "acme"})
    lines = csv.text.splitlines()
    assert csv.headers["content-type"].startswith("text/csv") and len(lines) == 3
    assert ",'FA-=HYPERLINK-1," not in csv.text and "'=" not in csv.text  # only a cell's start is quoted
    assert httpx.get(url + "/search.csv", params={"number": "=*"}).text.count("\n") == 1


def test_the_search_page_lists_the_flows_refused_whole_its_filters_fit(site):
    home, url = site
    interrupted(home, "broken.xml")
    r = httpx.get(url + "/search", params={"code": "ERR_INTERROMPU"})
    assert r.status_code == 200 and "0 piece(s) found" in r.text
    assert "Flows refused whole" in r.text and "broken.xml" in r.text and "ERR_INTERROMPU" in r.text
    fid = re.search(r'class="results refused".*?href="/flows/([^"]+)"', r.text, re.S).group(1)
    assert Store(home).flow(fid).file_name == "broken.xml"
    assert "Flows refused whole" not in httpx.get(url + "/search", params={"cadre": "A1"}).text


def test_replay_needs_a_logged_in_operator_and_the_pages_own_form(site):
    home, url = site
    params = {"code": "REJ_CONT_B2G"}
    open_page = httpx.post(url + "/search/replay", data={**params, "action": "replay"})
    assert open_page.status_code == 403 and "logged-in operator" in open_page.text
    operators.add(home, *OPERATOR)
    auth = httpx.BasicAuth(*OPERATOR)
    page = httpx.get(url + "/search", params=params, auth=auth)
    assert page.status_code == 200 and "preview the replay" in page.text
    token = _csrf(page.text)
    forged = httpx.post(url + "/search/replay", data={**params, "action": "replay", "csrf": "0" * 64}, auth=auth)
    assert forged.status_code == 403
    other_site = httpx.post(url + "/search/replay", data={**params, "action": "replay", "csrf": token}, auth=auth,
                            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert other_site.status_code == 403
    assert Store(home).queued() == 0
    preview = httpx.post(url + "/search/replay", data={**params, "action": "preview", "csrf": token}, auth=auth)
    assert preview.status_code == 200 and "1 flow(s) would be replayed" in preview.text
    assert Store(home).queued() == 0
    done = httpx.post(url + "/search/replay", data={**params, "action": "replay", "csrf": _csrf(preview.text)},
                      auth=auth, headers={"Origin": url})
    assert done.status_code == 200 and "1 flow(s) replayed" in done.text, done.text
    assert Store(home).queued() == 1
    new = re.search(r'replayed as <a href="/flows/([^"]+)"', done.text).group(1)
    assert Store(home).flow(new).replay_of is not None
    events = [e for e in Store(home).history(Store(home).flow(new).replay_of) if e.stage == "replay"]
    assert '"by": "web:alice"' in events[0].detail_json
    again = httpx.post(url + "/search/replay", data={**params, "action": "replay", "csrf": token}, auth=auth)
    assert "0 flow(s) replayed" in again.text and "already replayed" in again.text


def test_a_cell_a_spreadsheet_would_run_is_quoted():
    from datetime import datetime, timezone

    from gateway.ops.search_query import EXPORT_COLUMNS, csv_cells
    from gateway.store.search import FoundPiece

    p = FoundPiece("P1", "F1", 1, "acme", "=HYPERLINK(\"x\").xml", datetime(2026, 11, 2, tzinfo=timezone.utc), "A1",
                   "facture", "@SUM(A1)", None, "+33", None, None, False, "IRRECEVABLE", ("DEST_INC",))
    row = dict(zip(EXPORT_COLUMNS, csv_cells(p)))
    assert row["file"] == "'=HYPERLINK(\"x\").xml" and row["invoice_number"] == "'@SUM(A1)"
    assert row["supplier"] == "'+33" and row["error_codes"] == "DEST_INC" and row["issue_date"] == ""

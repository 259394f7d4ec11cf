"""The operators' pages in a real headless chromium (Playwright, scripts
off: the pages have none), served by uvicorn over a home filled by real
flows: log in, load each page, follow links from the overview to a flow, a
piece and back, check what is shown, download files. (Each test asks for
the browser before the site: without chromium nothing is filled.)"""
from __future__ import annotations

import json
import re

import pytest

from browser_support import Served, browser, fill_home, new_page  # noqa: F401 - browser is a fixture
from gateway.ops import operators
from gateway.ops.web import create_app
from gateway.store import db
from invoice_support import COMMUNE_SIRET, OPH_MOA_SIRET, SUPPLIER_SIRET

LOGIN = ("alice", "correct horse battery")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    filled = fill_home(tmp_path_factory.mktemp("browser") / "home")
    operators.add(filled.settings, *LOGIN)
    with Served(create_app(filled.settings)) as srv:
        yield srv.url, filled
    db.dispose_all()


def test_anyone_without_a_login_is_asked_for_one(browser, site):  # noqa: F811
    url, _ = site
    # a headless browser has no login box to show: chromium ends the navigation with an auth error
    page = new_page(browser)
    with pytest.raises(Exception, match="ERR_INVALID_AUTH_CREDENTIALS"):
        page.goto(url + "/")
    # what it was answered: 401, a Basic challenge, a page saying what to do
    resp = page.request.get(url + "/")
    assert resp.status == 401 and resp.headers["www-authenticate"].startswith("Basic")
    assert "<h1>Login required</h1>" in resp.text()
    page = new_page(browser, login=(LOGIN[0], "wrong password!"))
    assert page.request.get(url + "/").status == 401
    assert new_page(browser, login=LOGIN).request.get(url + "/").status == 200


def test_overview_charts_and_counts_lead_to_flows_and_searches(browser, site):  # noqa: F811
    url, f = site
    page = new_page(browser, login=LOGIN)
    assert page.goto(url + "/").status == 200
    assert page.locator("h1").inner_text() == "Gateway"
    today = db.utcnow().date().isoformat()
    # flows per day: today's bar holds the 7 flows (3 invoices, the lot, the empty file, 2 status files), by state
    day = page.locator(f'svg.flows-svg g.day[data-day="{today}"]')
    assert day.get_attribute("data-total") == "7"
    assert {r.get_attribute("data-state"): r.get_attribute("data-count") for r in day.locator("rect").all()} == {
        "IN_INTEGRE": "5", "IN_INTEGRE_PARTIEL": "1", "IN_REJETE": "1"}
    # rejections per day: one IRR_SYNTAX (the lot's member) and one IRR_VIDE_F (the empty file)
    bars = page.locator("svg.chart-svg rect.bar")
    assert sorted((b.get_attribute("data-code"), b.get_attribute("data-count")) for b in bars.all()) == [
        ("IRR_SYNTAX", "1"), ("IRR_VIDE_F", "1")]
    code = page.locator("ul.codes a", has_text="IRR_SYNTAX")
    assert re.fullmatch(r"/search\?code=IRR_SYNTAX&since=\d{4}-\d\d-\d\d", code.get_attribute("href"))
    assert page.locator("svg.chart-svg a").first.get_attribute("href").startswith("/search?status=IRRECEVABLE&since=")
    # pieces by status: each count is a search
    pstates = page.locator("table.pstates")
    assert pstates.locator("a[href='/search?status=ASSOCIEE']").inner_text() == "1"
    # flows by state: the count is a link to the flows in that state
    states = page.locator("table.states")
    assert states.locator("tr", has_text="IN_REJETE").locator("td.n").inner_text() == "1"
    states.locator("tr", has_text="IN_INTEGRE_PARTIEL").locator("a").click()
    assert page.url == url + "/flows?state=IN_INTEGRE_PARTIEL"
    rows = page.locator("table.flows tbody tr")
    assert rows.count() == 1 and "lot.zip" in rows.inner_text() and "1 / 2" in rows.inner_text()
    rows.locator("a").click()
    assert page.url == url + f"/flows/{f.lot_flow}"
    # today's bar on the overview lists the day's flows
    page.goto(url + "/")
    page.locator(f'svg.flows-svg a:has(g[data-day="{today}"])').click()
    assert page.locator("table.flows tbody tr").count() == 7


def test_flow_page_shows_invoice_data_findings_and_history_in_words(browser, site):  # noqa: F811
    url, f = site
    page = new_page(browser, login=LOGIN)
    page.goto(url + f"/flows/{f.lot_flow}")
    assert page.locator("h1").inner_text() == f"Flow {f.lot_flow}"
    facts = page.locator("table.flow").inner_text()
    assert "IN_INTEGRE_PARTIEL" in facts and "1 / 2" in facts
    first, second = page.locator("section.piece").all()
    invoice = first.locator("table.invoice").inner_text()
    for shown in ("FA-WEB-2", "2024-03-15", "A1", SUPPLIER_SIRET, COMMUNE_SIRET, "ACHATS",
                  "141.00 EUR", "28.20 EUR", "169.20 EUR", "EJ-2024-000123"):
        assert shown in invoice, shown
    errors = second.locator("table.errors tbody tr")
    assert errors.count() == 1
    cells = [c.inner_text() for c in errors.locator("td").all()]
    assert cells[0] == "IRR_SYNTAX" and "well-formed" in cells[1].lower() + cells[4] and "bad.xml" in cells[2]
    history = page.locator("table.history").inner_text()
    assert "received lot.zip, " in history and "piece rejected; codes: IRR_SYNTAX" in history
    assert "delivered to the recipient in outbox/21990001600011/ACHATS" in history
    assert "{" not in history  # words, not the stored JSON
    # a flow refused whole, with a hostile name: shown as text, its file-level error with code and value
    page.goto(url + f"/flows/{f.empty_flow}")
    assert page.locator("table.flow").inner_text().count(f.hostile_name) == 1
    assert page.locator("b").count() == 0  # the name's markup stayed text
    assert "IRR_VIDE_F" in page.locator("table.errors").inner_text()


def test_following_links_from_a_flow_to_its_pieces_and_their_billing_file(browser, site):  # noqa: F811
    url, f = site
    page = new_page(browser, login=LOGIN)
    page.goto(url + f"/pieces/{f.a15_piece}")
    assert page.locator("h1").inner_text() == f"Piece {f.a15_piece}"
    assert "MISE_A_DISPOSITION_MOA" in page.locator("table.piece").inner_text()
    assert OPH_MOA_SIRET in page.locator("table.invoice").inner_text()
    dossier = page.locator("table.dossier tbody tr")
    assert dossier.count() == 2
    assert "(this piece)" in dossier.nth(1).inner_text() and "A15" in dossier.nth(1).inner_text()
    timeline = [r.inner_text() for r in page.locator("table.timeline td.status").all()]
    assert timeline == ["DEPOSEE", "MISE_A_DISPOSITION_MOA"]
    # the A4 it continues: linked, and its timeline ends ASSOCIEE through the A15's flow
    dossier.nth(0).locator("a").click()
    assert page.url == url + f"/pieces/{f.a4_piece}"
    timeline = [r.inner_text() for r in page.locator("table.timeline td.status").all()]
    assert timeline[-2:] == ["PRISE_EN_COMPTE_MOE", "ASSOCIEE"] and timeline[0] == "DEPOSEE"
    assert "PDM-W1" in page.locator("table.invoice").inner_text()
    # up to its flow, and back
    page.locator("table.piece a").first.click()
    assert page.locator("h1").inner_text().startswith("Flow ") and "PDM-W1.xml" in page.content()
    page.go_back()
    assert page.url == url + f"/pieces/{f.a4_piece}"
    page.goto(url + "/pieces/nope")
    assert page.locator("h1").inner_text() == "no piece nope"


def test_logged_in_operators_download_the_original_the_report_and_the_pivot(browser, site):  # noqa: F811
    url, f = site
    page = new_page(browser, login=LOGIN, downloads=True)
    page.goto(url + f"/flows/{f.lot_flow}")
    with page.expect_download() as got:
        page.locator("ul.files a", has_text="original: lot.zip").click()
    assert got.value.suggested_filename == "lot.zip"
    assert open(got.value.path(), "rb").read() == f.lot_bytes
    with page.expect_download() as got:
        page.locator("ul.files a", has_text=f"report {f.lot_flow}.json").click()
    report = json.loads(open(got.value.path(), encoding="utf-8").read())
    assert report["flow_id"] == f.lot_flow and report["state"] == "IN_INTEGRE_PARTIEL"
    with page.expect_download() as got:
        page.locator("section.piece").first.locator("ul.files a", has_text=".pivot.xml").click()
    assert got.value.suggested_filename == f"{f.lot_flow}-001.pivot.xml"
    assert b"CPPFacturePivot" in open(got.value.path(), "rb").read()
    # a status file of the invoice, from the store, from its piece page
    page.goto(url + f"/pieces/{f.invoice_piece}")
    with page.expect_download() as got:
        page.locator("ul.files a", has_text=f"{f.invoice_piece}.004.json").first.click()
    assert json.loads(open(got.value.path(), encoding="utf-8").read())["statuses"][0]["status"] == "SERVICE_FAIT"

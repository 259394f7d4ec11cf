"""The search page in a real headless chromium (scripts off): an operator
fills the form, reads the results, follows a piece to its billing file,
exports CSV, and replays a refused flow through the preview and its
confirmation. A home of its own: the replay changes what it holds."""
from __future__ import annotations

import pytest

from browser_support import Served, browser, fill_home, new_page  # noqa: F401 - browser is a fixture
from gateway.ops import operators
from gateway.ops.web import create_app
from gateway.store import db
from gateway.store.repository import Store

LOGIN = ("olga", "a long enough password")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    filled = fill_home(tmp_path_factory.mktemp("search-browser") / "home")
    operators.add(filled.settings, *LOGIN)
    with Served(create_app(filled.settings)) as srv:
        yield srv.url, filled
    db.dispose_all()


def test_search_form_results_and_a_billing_file(browser, site):  # noqa: F811
    url, f = site
    page = new_page(browser, login=LOGIN)
    assert page.goto(url + "/search").status == 200
    page.fill('form.search input[name="cadre"]', "A4")
    page.click('form.search button[type="submit"]')
    assert "cadre=A4" in page.url
    assert page.locator("p.found").inner_text().startswith("1 piece(s) found")
    row = page.locator("table.results tbody tr")
    assert row.count() == 1 and "PDM-W1" in row.inner_text()
    # the piece, then its billing file: the A15 that continues it
    page.click(f'table.results a[href="/pieces/{f.a4_piece}"]')
    assert f.a4_piece in page.locator("h1").inner_text()
    assert page.locator(f'a[href="/pieces/{f.a15_piece}"]').count() >= 1
    # an unknown value is refused with the valid list, on the page
    resp = page.goto(url + "/search?status=NOPE")
    assert resp.status == 400 and "MISE_A_DISPOSITION" in page.locator("p.error").inner_text()
    # the CSV export of a search
    csv = page.request.get(url + "/search.csv?cadre=A4,A15")
    lines = csv.text().strip().splitlines()
    assert csv.status == 200 and lines[0].startswith("piece_id,flow_id") and len(lines) == 3


def test_replay_from_the_search_page_preview_then_confirm(browser, site):  # noqa: F811
    url, f = site
    page = new_page(browser, login=LOGIN)
    page.goto(url + "/search?code=IRR_SYNTAX")
    assert f.lot_flow in page.locator("table.results").inner_text()
    page.click('form.replay button[value="preview"]')
    assert page.locator("h1").inner_text() == "Replay preview"
    assert "would be replayed" in page.locator("table.replays").inner_text()
    assert Store(f.settings).flow(f.lot_flow) is not None and not _replays(f)  # a preview changes nothing
    page.click('form.replay button[value="replay"]')
    assert page.locator("h1").inner_text() == "Replay done"
    new = _replays(f)
    assert len(new) == 1 and new[0] in page.locator("table.replays").inner_text()
    # the same selection again: nothing new, and the page says why
    page.goto(url + "/search?code=IRR_SYNTAX")
    page.click('form.replay button[value="preview"]')
    assert "already replayed" in page.locator("table.replays").inner_text()
    assert len(_replays(f)) == 1


def _replays(f) -> list[str]:  # noqa: ANN001
    return [fl.id for fl in Store(f.settings).recent_flows() if fl.channel == "replay"]

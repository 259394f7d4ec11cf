"""A real headless browser for the operators' pages: Debian's chromium driven
by Playwright, and the app served by uvicorn on a free port.

Without chromium the browser tests are skipped with the reason, unless
GATEWAY_REQUIRE_BROWSER=1 (CI sets it): then they fail.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("GATEWAY_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]


def _no_browser(reason: str) -> None:
    if os.environ.get("GATEWAY_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GATEWAY_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def chromium_path() -> str:
    path = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if not path:
        _no_browser(f"no chromium at {CHROMIUM} nor on PATH (apt-get install chromium)")
    return path


class Served:
    """An ASGI app on a real socket (uvicorn in a thread), on a free port."""

    def __init__(self, app):  # noqa: ANN001
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "Served":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless chromium for a test module (Playwright's sync API)."""
    path = chromium_path()
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _no_browser("the playwright package is not installed")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=path, args=LAUNCH_ARGS, headless=True)
        except Error as exc:
            _no_browser(f"chromium at {path} did not start: {str(exc).splitlines()[0]}")
        try:
            yield b
        finally:
            b.close()


def new_page(browser, *, login: tuple[str, str] | None = None, downloads: bool = False):  # noqa: ANN001, ANN201
    """A fresh context (its own cookies and credentials) and a page in it,
    logging in with HTTP Basic when `login` is given."""
    ctx = browser.new_context(http_credentials={"username": login[0], "password": login[1]} if login else None,
                              accept_downloads=downloads, java_script_enabled=False)
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    return page


# --- a home filled by real flows ---------------------------------------------------------------

@dataclass(frozen=True)
class Filled:
    """What `fill_home` deposited, as the pages should show it."""

    settings: object
    invoice_flow: str  # FA-WEB-1, delivered to the commune (pivot), SERVICE_FAIT since
    invoice_piece: str
    lot_flow: str  # lot.zip: FA-WEB-2 accepted, bad.xml refused (IRR_SYNTAX)
    lot_bytes: bytes = field(repr=False)
    empty_flow: str  # a hostile name, empty: refused whole (IRR_VIDE_F)
    a4_piece: str  # PDM-W1, linked by the A15 EA-W1: a billing file of two
    a15_piece: str
    hostile_name: str


HOSTILE_NAME = '<b onmouseover="x">empty&\'.xml'  # a file name cannot carry a '/'


def _run(settings) -> None:  # noqa: ANN001
    from gateway.runtime.service import Gateway

    Gateway(settings, once=True).run()


def _deposit(settings, partner: str, name: str, data: bytes) -> dict:  # noqa: ANN001
    from conftest import drop, report_for

    drop(settings, partner, name, data)
    _run(settings)
    return report_for(settings, partner, name)


def fill_home(root: Path):  # noqa: ANN201 - a Filled
    """A home with the demo directory, filled by real flows (the service's own
    code, --once): invoices delivered, a lot partly refused, an empty file, a
    public-works billing file (A4 then A15), status files sent back."""
    import io
    import json
    import zipfile

    from conftest import TEST_TOML, home_with
    from gateway.rules import directory
    from invoice_support import DDT_MOE_SIRET, OPH_MOA_SIRET, TITULAIRE_SIRET, COMMUNE_SIRET, ubl_invoice

    s = home_with(root, TEST_TOML)
    directory.import_files(s, directory.demo_files())
    one = _deposit(s, "fournisseur", "FA-WEB-1.xml", ubl_invoice(number="FA-WEB-1"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("FA-WEB-2.xml", ubl_invoice(number="FA-WEB-2"))
        z.writestr("bad.xml", b"<Invoice><not-closed>")
    lot = _deposit(s, "fournisseur", "lot.zip", buf.getvalue())
    empty = _deposit(s, "fournisseur", HOSTILE_NAME, b"")
    works = dict(recipient_siret=OPH_MOA_SIRET, recipient_name="OPH de Valbrune", service_code="TRAVAUX",
                 supplier_siret=TITULAIRE_SIRET, supplier_name="Bâtiments Exemple SA")
    a4 = _deposit(s, "titulaire", "PDM-W1.xml",
                  ubl_invoice(number="PDM-W1", cadre="A4", moe_siret=DDT_MOE_SIRET, **works))
    a4_piece = a4["pieces"][0]["piece_id"]
    for partner, name, status in ((DDT_MOE_SIRET, "moe.json", {"piece_id": a4_piece,
                                                                 "status": "PRISE_EN_COMPTE_MOE"}),
                                  (COMMUNE_SIRET, "sf.json", {"piece_id": one["pieces"][0]["piece_id"],
                                                              "status": "SERVICE_FAIT"})):
        assert _deposit(s, partner, name, json.dumps({"statuses": [status]}).encode())["state"] == "IN_INTEGRE"
    a15 = _deposit(s, DDT_MOE_SIRET, "EA-W1.xml",
                   ubl_invoice(number="EA-W1", cadre="A15", original_invoice="PDM-W1", **works))
    assert one["state"] == "IN_INTEGRE" and lot["state"] == "IN_INTEGRE_PARTIEL" and empty["state"] == "IN_REJETE"
    assert a15["state"] == "IN_INTEGRE", a15
    return Filled(s, one["flow_id"], one["pieces"][0]["piece_id"], lot["flow_id"], buf.getvalue(), empty["flow_id"],
                  a4_piece, a15["pieces"][0]["piece_id"], HOSTILE_NAME)

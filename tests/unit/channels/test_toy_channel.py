"""A new channel is one module and one registration line: a class with a name,
start() and stop() (the `Channel` seam), that brings its files in through
`deposit`, and its factory added to `registry.CHANNELS`. The service starts
it beside the folders; the folder watcher claims what it deposited."""
from __future__ import annotations

import threading
import time

from conftest import report_for, reports
from gateway.channels import registry
from gateway.channels.base import Channel
from gateway.channels.deposit import TempNames, deposit_bytes
from gateway.core.config import Settings
from gateway.runtime.service import Gateway
from gateway.store import partners
from invoice_support import ubl_invoice


class ToyChannel:
    """Brings one generated invoice into ACME's inbox when started."""

    name = "toy"
    temps = TempNames(".toy-", ".part")

    def __init__(self, settings: Settings):
        self.settings = settings
        self.stopped = False

    def start(self) -> None:
        inbox, _ = partners.ensure_folders(self.settings, "ACME")
        deposit_bytes(inbox, "toy.xml", ubl_invoice(number="TOY-1"), self.temps)

    def stop(self) -> None:
        self.stopped = True


def _wait(predicate, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_a_registered_channel_is_started_its_deposit_processed_and_it_is_stopped(home, monkeypatch):
    made: list[ToyChannel] = []

    def toy(settings: Settings) -> Channel | None:
        made.append(ToyChannel(settings))
        return made[-1]

    monkeypatch.setattr(registry, "CHANNELS", registry.CHANNELS + (toy,))  # the one registration line
    gateway = Gateway(home)  # the service, not a batch: only the service starts channels
    run = threading.Thread(target=gateway.run, daemon=True)
    run.start()
    try:
        assert _wait(lambda: reports(home, "ACME")), "the deposited file was never processed"
    finally:
        gateway.stop.set()
        gateway.wake.set()
        run.join(60)
    assert not run.is_alive()
    assert report_for(home, "ACME", "toy.xml")["state"] == "IN_INTEGRE"
    assert [p.name for p in home.reports_dir("ACME").iterdir() if p.suffix == ".json"]
    assert [c.stopped for c in made] == [True]
    assert not list((home.inbox / "ACME").iterdir())  # claimed, and no temporary file left

"""A file whose processing kills the worker that reads it (a crash in a
native library, the memory killer) does not stop the service for ever: the
batch it was in goes back to the queue and each of its flows is tried alone,
its batch-mates get their reports, and the file itself is refused with
ERR_INTERROMPU once it stopped `[intake] max_attempts` (3) workers, without
being read again. Here the test plays the crash: it kills whichever worker
holds the file while the file is being read."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from sqlalchemy import select

from conftest import codes_of, drop, report_for, reports
from gateway.ops.replay import replay
from gateway.store.repository import Store
from gateway.store.search import PieceQuery
from gateway.store.tables import Flow
from invoice_support import cii_invoice, ubl_invoice, zip_lot
from sftp_support import running_gateway, wait_until

POISON = "poison.zip"  # a lot long to read: its worker is caught reading it


class _Killer(threading.Thread):
    """Kills the worker holding POISON while it reads it (attempts up to the
    limit: a flow refused unread never reaches the crash)."""

    def __init__(self, home, limit: int) -> None:  # noqa: ANN001
        super().__init__(daemon=True)
        self.store, self.limit = Store(home), limit
        self.killed: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            with self.store.session() as s:
                f = s.execute(select(Flow).where(Flow.file_name == POISON)).scalars().first()
            if f is None or f.queue != "running" or not f.locked_by or f.attempts > self.limit:
                continue
            pid = int(f.locked_by.split(":")[1])
            if pid in self.killed:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
            except ProcessLookupError:
                pass


def test_a_file_that_kills_its_worker_is_refused_after_three_tries_and_its_batch_mates_are_processed(home):
    env = {"GATEWAY_INTAKE_WORKERS": "2", "GATEWAY_VALIDATION_SCHEMATRON": "false"}
    lot = zip_lot({f"m{i:03d}.xml": ubl_invoice(number=f"LOT-{i}") for i in range(300)})
    killer = _Killer(home, limit=3)
    killer.start()
    try:
        with running_gateway(home, "run", env=env) as gw:
            drop(home, "ACME", POISON, lot)
            for i in range(6):
                drop(home, "ACME", f"ok-{i}.xml", (ubl_invoice if i % 2 else cii_invoice)(number=f"OK-{i}"))
            assert wait_until(lambda: len(reports(home, "ACME")) == 7, timeout=120, step=0.2), gw
    finally:
        killer.done.set()
        killer.join()
    assert len(killer.killed) == 3  # it stopped three workers, and no fourth
    refused = report_for(home, "ACME", POISON)
    assert refused["state"] == "IN_REJETE" and codes_of(refused) == {"ERR_INTERROMPU"}
    assert "stopped 3 times" in refused["errors"][0]["message"]
    for i in range(6):  # its batch-mates: one report each, accepted
        assert report_for(home, "ACME", f"ok-{i}.xml")["state"] == "IN_INTEGRE"
    assert "its processing stopped 3 times without an outcome; refused without being read again" in gw.out
    assert gw.returncode == 0
    # the cause fixed (here: no more killer), the operator replays it by its code, and it goes through
    out = replay(Store(home).settings, PieceQuery(codes=("ERR_INTERROMPU",)), by="test")
    assert list(out.queued) == [refused["flow_id"]]
    env_once = {**env, "GATEWAY_HOME": str(home.home)}
    subprocess.run([sys.executable, "-m", "gateway.ops.cli", "run", "--once"], env={**os.environ, **env_once},
                   check=True, capture_output=True, timeout=300)
    again = [r for r in reports(home, "ACME") if r.get("replay_of") == refused["flow_id"]]
    assert len(again) == 1 and again[0]["state"] == "IN_INTEGRE" and len(again[0]["pieces"]) == 300

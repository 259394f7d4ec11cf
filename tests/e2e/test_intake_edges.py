"""The intake and the workers at their edges: what is not a file, the order
of many files waiting, a batch whose writing fails, the run's progress, and
settings given by environment variables."""
from __future__ import annotations

import os
import threading
import time

import pytest

from conftest import drop, report_for
from gateway.core import config
from gateway.channels import folders as intake
from gateway.outputs import reports
from gateway.runtime import service
from gateway.runtime.service import Gateway
from gateway.store.repository import Store
from invoice_support import ubl_invoice


def test_a_fifo_in_an_inbox_is_left_alone_and_does_not_block_the_run(home):
    drop(home, "ACME", "a.xml", ubl_invoice(number="F-1"))
    fifo = home.inbox / "ACME" / "pipe.xml"
    os.mkfifo(fifo)
    done = threading.Event()
    t = threading.Thread(target=lambda: (Gateway(home, once=True).run(), done.set()), daemon=True)
    t.start()
    assert done.wait(60), "the run blocked on the FIFO"
    assert report_for(home, "ACME", "a.xml")["state"] == "IN_INTEGRE"
    assert fifo.exists() and Store(home).recent_flows(partner="ACME")[0].file_name == "a.xml"


def test_files_waiting_are_received_in_the_order_they_were_written_across_claim_batches(home, monkeypatch):
    monkeypatch.setattr(service, "CLAIM_BATCH", 3)
    now = time.time()
    names = [f"n{i:02d}.xml" for i in range(8)]
    # written newest first in name order, so neither the name nor the scan order gives the answer
    for i, name in enumerate(names):
        p = drop(home, "ACME", name, ubl_invoice(number=f"ORD-{i}"))
        os.utime(p, (now - 100 + (len(names) - i), now - 100 + (len(names) - i)))
    Gateway(home, once=True).run()
    flows = sorted(Store(home).recent_flows(limit=20), key=lambda f: (f.received_at, f.id))
    assert [f.file_name for f in flows] == list(reversed(names))


def _first_report_fails(monkeypatch, exc: OSError) -> list[int]:  # noqa: ANN001
    """The worker's first flow report raises `exc`, the next ones are written; the calls, counted."""
    real = reports.write_flow_report
    calls: list[int] = []

    def once(*args, **kwargs):  # noqa: ANN002, ANN003
        calls.append(1)
        if len(calls) == 1:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr("gateway.runtime.worker.write_flow_report", once)
    return calls


def test_a_batch_whose_files_cannot_be_written_goes_back_to_the_queue_and_is_done_later(home, monkeypatch):
    drop(home, "ACME", "a.xml", ubl_invoice(number="W-1"))
    calls = _first_report_fails(monkeypatch, OSError(28, "No space left on device"))
    # the failure is logged, the flow goes back to the queue at once (not after its lease) and is done
    # again before the run ends; the service does not die
    Gateway(home, once=True).run()
    store = Store(home)
    assert len(calls) == 2 and store.queued() == 0
    assert report_for(home, "ACME", "a.xml")["state"] == "IN_INTEGRE"
    # a full disk is not the flow's fault (issue #14): handed back, not counted as a failed try
    assert store.recent_flows()[0].attempts == 1


def test_a_batch_that_fails_for_another_reason_counts_the_try_and_logs_its_traceback(home, monkeypatch, caplog):
    drop(home, "ACME", "a.xml", ubl_invoice(number="W-2"))
    calls = _first_report_fails(monkeypatch, PermissionError(13, "Permission denied"))
    Gateway(home, once=True).run()
    store = Store(home)
    assert len(calls) == 2 and store.queued() == 0
    assert store.recent_flows()[0].attempts == 2  # the failed try counts
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [PermissionError]


def test_progress_counts_this_runs_flows_not_the_whole_history(home):
    drop(home, "ACME", "old.xml", ubl_invoice(number="P-0"))
    Gateway(home, once=True).run()
    for i in range(3):
        drop(home, "ACME", f"p{i}.xml", ubl_invoice(number=f"P-{i + 1}"))
    seen = []
    summary = Gateway(home, once=True, progress=lambda done, total: seen.append((done, total))).run()
    assert seen and seen[-1] == (3, 3) and all(total == 3 for _, total in seen)
    assert summary.received == 3 and summary.by_state == {"IN_INTEGRE": 3}


def test_environment_values_keep_codes_and_single_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_PLATFORM_ID", "0012")
    monkeypatch.setenv("GATEWAY_VALIDATION_SCHEMA_DIRS", "xsd/extra")
    monkeypatch.setenv("GATEWAY_INTAKE_WORKERS", "3")
    s = config.load(tmp_path / "home")
    assert s.platform_id == "0012" and s.workers == 3
    assert s.schema_dirs == ((tmp_path / "home" / "xsd" / "extra").resolve(),)


def test_a_long_platform_id_still_delivers(tmp_path):
    from conftest import home_with, TEST_TOML
    from gateway.rules import directory

    s = home_with(tmp_path / "home", TEST_TOML + '[platform]\nid = "GATEWAY-PARIS-NORD"\n')
    directory.import_files(s, directory.demo_files())
    drop(s, "fournisseur", "long.xml", ubl_invoice(number="PL-1"))
    Gateway(s, once=True).run()
    r = report_for(s, "fournisseur", "long.xml")
    assert r["state"] == "IN_INTEGRE", r
    pivot = next((s.outbox).glob("*/*/*.pivot.xml")).read_text()
    assert "<Id>GATEWAY-</Id>" in pivot


@pytest.mark.parametrize("name", ["a.PART", "b.xml.Filepart", "c.crdownload", "~d.xml", ".e.xml"])
def test_names_a_sender_uses_while_writing_are_ignored(name):
    assert intake.ignored(name)

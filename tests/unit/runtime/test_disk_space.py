"""The pieces that keep the gateway alive on a full or read-only disk: which
errors are the device's fault, the free-space floor, the growing wait, the
stall of a --once run, and writes that leave nothing half done."""
from __future__ import annotations

import errno
import json
import os
import sqlite3

import pytest
import sqlalchemy.exc

from conftest import drop
from disk_support import MB, disk  # noqa: F401 - disk is a fixture
from gateway.channels.folders import ClaimFailed, Claimer, scan
from gateway.core.files import atomic_write
from gateway.core.space import Floor, LowSpace, fault_text, home_space, low_space, resource_fault
from gateway.ops import web
from gateway.runtime.space import Backoff, HandedBack, StallWatch
from gateway.store.repository import Store
from invoice_support import ubl_invoice


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT])
def test_a_full_or_failing_device_is_a_resource_fault_even_wrapped(code):
    err = OSError(code, "device")
    assert resource_fault(err) is err
    try:
        try:
            raise err
        except OSError as inner:
            raise RuntimeError("writing the report") from inner
    except RuntimeError as outer:
        assert resource_fault(outer) is err


def test_other_errors_are_not_resource_faults():
    assert resource_fault(PermissionError(errno.EACCES, "denied")) is None
    assert resource_fault(ValueError("bug")) is None
    assert resource_fault(None) is None


def test_a_database_saying_its_disk_is_full_is_a_resource_fault():
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    wrapped = sqlalchemy.exc.OperationalError("INSERT ...", {}, full)
    assert resource_fault(wrapped) is full and fault_text(wrapped) == "database or disk is full"
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert resource_fault(sqlalchemy.exc.OperationalError("UPDATE ...", {}, locked)) is None


def test_fault_text_is_one_line_naming_the_file():
    assert fault_text(OSError(errno.ENOSPC, "No space left on device", "/x/outbox/a.json")) == \
        "No space left on device: /x/outbox/a.json"
    assert fault_text(ValueError("bad\nvalue")) == "ValueError: bad"


def test_the_floor_in_mb_or_as_a_share_of_the_file_system(tmp_path, disk):
    disk.fill(tmp_path, free_mb=12)
    assert low_space([tmp_path], Floor(10)) is None
    low = low_space([tmp_path], Floor(200))
    assert low == LowSpace(tmp_path, 12 * MB, 200 * MB)
    assert low.reason() == f"disk low on {tmp_path} (12 MB free, floor 200 MB)"
    # the fake file system has 100,000 MB: 1 % of it is 1,000 MB
    assert low_space([tmp_path], Floor(0, percent=1)).reason() == \
        f"disk low on {tmp_path} (12 MB free, floor 1000 MB)"


def test_a_read_only_file_system_counts_as_no_room(tmp_path, disk):
    disk.read_only.add(tmp_path)
    low = low_space([tmp_path / "not-made-yet"], Floor(0))
    assert low is not None and low.read_only
    assert low.reason() == f"{tmp_path / 'not-made-yet'} is on a read-only file system"


def test_the_home_is_measured_on_archive_work_and_outbox(home, disk):
    assert home_space(home) is None
    disk.fill(home.work, free_mb=1)
    assert home_space(home).folder == home.work
    assert home_space(home, (home.outbox,)) is None


def test_healthz_is_503_and_says_why_while_intake_is_paused(home, disk):
    assert web.health(home)[0] == 200
    disk.fill(home.archive, free_mb=3)
    status, body = web.health(home)
    assert status == 503 and body["status"] == "degraded" and "flows" in body
    assert body["reason"] == f"paused: disk low on {home.archive} (3 MB free, floor 200 MB)"
    assert [(r["check"], r["folder"]) for r in body["reasons"]] == [("intake_paused", str(home.archive))]


def test_the_wait_doubles_from_one_second_to_a_minute_and_starts_again_after_a_success():
    clock = Clock()
    b = Backoff(clock=clock)
    assert b.remaining() == 0
    assert [b.failed() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert b.remaining() == 60
    clock.now += 59.5
    assert b.remaining() == pytest.approx(0.5)
    b.succeeded()
    assert b.remaining() == 0 and b.failed() == 1


def test_a_run_stalls_only_when_something_blocks_it():
    clock = Clock()
    w = StallWatch(60, clock=clock)
    w.moved((0, 5))
    clock.now += 120
    assert w.stalled() is None  # a slow flow is no stall
    assert w.stalled("disk low on /x/outbox (12 MB free, floor 200 MB)") == \
        "no progress for 60 s: disk low on /x/outbox (12 MB free, floor 200 MB)"
    w.moved((0, 4))  # a flow finished
    w.failed("No space left on device: /x/outbox/a.json")
    clock.now += 59
    assert w.stalled() is None
    clock.now += 1
    assert w.stalled() == "no progress for 60 s: No space left on device: /x/outbox/a.json"
    w.moved((1, 4))
    clock.now += 61
    assert w.stalled() is None  # that failure was before the last progress


def test_a_handed_back_batch_says_why_in_one_line():
    exc = HandedBack(["F1", "F2"], OSError(errno.EROFS, "Read-only file system", "/x/outbox/r.json"))
    assert exc.flows == ("F1", "F2") and exc.reason == "Read-only file system: /x/outbox/r.json"
    assert resource_fault(exc) is exc.__cause__


@pytest.mark.parametrize("where", ["write", "replace"])
def test_a_failed_atomic_write_leaves_the_old_file_whole_and_no_temporary(tmp_path, disk, where):
    target = tmp_path / "out" / "report.json"
    atomic_write(target, b"old")
    disk.fail(tmp_path / "out", errno.ENOSPC if where == "write" else errno.EROFS,
              writes=where == "write", renames=where == "replace")
    with pytest.raises(OSError) as raised:
        atomic_write(target, b"new" * 1000)
    assert raised.value.filename == str(target)  # the log says which file
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]
    assert target.read_bytes() == b"old"


def test_a_claim_whose_manifest_cannot_be_written_raises_and_leaves_nothing(home, disk):
    drop(home, "ACME", "a.xml", ubl_invoice())
    disk.fail(home.archive, errno.ENOSPC)
    with pytest.raises(ClaimFailed) as failed:
        Claimer(home, Store(home)).claim(list(scan(home)))
    assert failed.value.claimed == [] and resource_fault(failed.value) is not None
    assert not [p for p in home.archive.rglob("*") if p.is_file()]
    assert (home.inbox / "ACME" / "a.xml").exists()


def test_a_claim_stopped_midway_keeps_its_manifest_for_recovery(home, monkeypatch):
    for i in range(3):
        drop(home, "ACME", f"{i}.xml", ubl_invoice(number=f"M-{i}"))
    real_link, calls = os.link, []

    def link(src, dst, **kw):  # noqa: ANN001, ANN003, ANN202 - the archive folder cannot grow after the first file
        calls.append(src)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_link(src, dst, **kw)

    monkeypatch.setattr(os, "link", link)  # a claim links into the archive (core/files.take)
    store = Store(home)
    with pytest.raises(ClaimFailed) as failed:
        Claimer(home, store).claim(list(scan(home)))
    assert len(failed.value.claimed) == 1 and store.flow(failed.value.claimed[0]) is not None
    (manifest,) = home.archive.rglob("*.claim")
    assert len(json.loads(manifest.read_text())) == 3
    monkeypatch.setattr(os, "link", real_link)
    # the first is recorded; the second, cut between its steps, is finished now; the third never left the inbox
    assert Claimer(home, store).recover() == 1
    assert not list(home.archive.rglob("*.claim")) and len(list((home.inbox / "ACME").iterdir())) == 1
    assert len(store.recent_flows(10)) == 2

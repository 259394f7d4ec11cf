"""Leases: short, renewed by their holder's heartbeat while it works, taken
over once they run out, and a late holder's outcome dropped; on SQLite and on
PostgreSQL (when GATEWAY_TEST_PG_URL names a server)."""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace

import pytest
from sqlalchemy import select

from conftest import drop, home_with, reports
from gateway.channels.folders import Claimer, scan
from gateway.core import config
from gateway.runtime import worker
from gateway.runtime.heartbeat import Heartbeat
from gateway.runtime.worker import prepare_flows, work_once
from gateway.store import db
from gateway.store.repository import Store, worker_name
from gateway.store.tables import Event, Piece
from invoice_support import COMMUNE_SIRET, cii_invoice, ubl_invoice

LEASE = 1.5  # seconds: the heartbeat beats every 0.5 s
FILES = {"ok.xml": ubl_invoice(number="L-1"), "cii.xml": cii_invoice(number="L-2"), "broken.xml": b"<not-closed"}


@pytest.fixture()
def gw(demo_home):
    """The demo home (SQLite, then PostgreSQL) with short leases."""
    return replace(demo_home, lease_seconds=LEASE)


def receive(settings, files: dict[str, bytes]) -> list[str]:
    """Files dropped in inbox/ACME/ and claimed as the service claims them: their flow ids."""
    for name, data in files.items():
        drop(settings, "ACME", name, data)
    return Claimer(settings, Store(settings)).claim(list(scan(settings)))


def validations(store: Store, fid: str) -> int:
    """Flow-level outcomes recorded for a flow (one per complete())."""
    with store.session() as s:
        return sum(1 for e in s.execute(select(Event).where(Event.flow_id == fid)).scalars()
                   if e.stage == "validation" and e.piece_id is None)


def assert_processed_once(settings, store: Store, ids: list[str]) -> None:
    """Each flow done, with one report, one recorded outcome, its pieces once,
    each accepted piece delivered once, and no temporary file in the outbox."""
    reps = reports(settings, "ACME")
    assert sorted(r["flow_id"] for r in reps) == sorted(ids)
    assert Counter(r["file"] for r in reps) == Counter(list(FILES))
    with store.session() as s:
        pieces = list(s.execute(select(Piece).where(Piece.flow_id.in_(ids))).scalars())
    for fid in ids:
        f = store.flow(fid)
        assert (f.queue, f.locked_by) == ("done", None)
        assert validations(store, fid) == 1
        assert len([p for p in pieces if p.flow_id == fid]) == f.pieces_total
    accepted = sorted(p.id for p in pieces if p.valid)
    assert len(accepted) == 2
    delivered = sorted(p.name for p in (settings.outbox / COMMUNE_SIRET).rglob("*") if p.is_file()
                       and p.parent.name not in ("reports", "statuses"))
    assert delivered == sorted([f"{pid}.xml" for pid in accepted] + [f"{pid}.pivot.xml" for pid in accepted])
    assert not [p for p in settings.outbox.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


# --- the store ----------------------------------------------------------------------------

def test_renew_moves_only_the_holders_own_leases_forward(gw):
    store = Store(gw)
    a, b = receive(gw, {"a.xml": FILES["ok.xml"]}), receive(gw, {"b.xml": FILES["cii.xml"]})
    store.claim("hostA:1:w0", limit=1)
    store.claim("hostB:1:w0", limit=1)
    before = {fid: store.flow(fid).locked_until for fid in (*a, *b)}
    time.sleep(0.05)
    assert store.renew("hostA:1:w0") == 1
    assert store.flow(a[0]).locked_until > before[a[0]]
    assert store.flow(b[0]).locked_until == before[b[0]]
    assert store.renew("hostC:1:w0") == 0  # holds nothing


def test_a_lease_is_the_settings_lease_and_runs_out_unless_renewed(gw):
    store = Store(gw)
    [fid] = receive(gw, {"a.xml": FILES["ok.xml"]})
    t0 = db.as_utc(db.utcnow())
    store.claim("hostA:1:w0")
    until = db.as_utc(store.flow(fid).locked_until)
    assert LEASE - 0.5 <= (until - t0).total_seconds() <= LEASE + 0.5
    assert store.reap_expired() == 0  # still running out
    time.sleep(LEASE + 0.1)
    assert store.reap_expired() == 1 and store.queued() == 1


def test_complete_and_release_by_a_holder_who_lost_the_lease_change_nothing(gw):
    store = Store(gw)
    ids = receive(gw, {"a.xml": FILES["ok.xml"], "b.xml": FILES["cii.xml"]})
    claimed = store.claim("hostA:1:w0", lease_seconds=-1)
    results, _writes, _left = prepare_flows(gw, store, claimed)  # hostA's work, then a pause
    assert store.reap_expired() == 2
    taken = store.claim("hostB:1:w0") + store.claim("hostB:1:w0")  # back without an outcome: one at a time
    assert sorted(c.id for c in taken) == sorted(ids)
    assert store.complete(results, holder="hostA:1:w0") == []  # too late: hostB holds them
    store.release(ids, tried=True, holder="hostA:1:w0")
    assert store.renew("hostA:1:w0") == 0
    for fid in ids:
        f = store.flow(fid)
        assert (f.queue, f.locked_by, f.attempts, f.pieces_total) == ("running", "hostB:1:w0", 2, 0)
        assert validations(store, fid) == 0 and store.pieces(fid) == []
    assert sorted(store.complete(results, holder="hostB:1:w0")) == sorted(ids)  # the holder's own stands
    assert all(validations(store, fid) == 1 for fid in ids)


# --- workers --------------------------------------------------------------------------------

def test_the_heartbeat_keeps_a_slow_flows_lease(gw, monkeypatch):
    """A flow that takes twice the lease stays with its worker: the expiry
    moves forward while it is processed, and another worker reaping and
    claiming all the while never gets it."""
    store = Store(gw)
    [fid] = receive(gw, {"ok.xml": FILES["ok.xml"]})
    seen = []
    real = worker.evaluate_file

    def slow(*args, **kwargs):  # noqa: ANN002, ANN003
        thief.start()  # the flow is leased now
        for _ in range(5):
            seen.append(db.as_utc(store.flow(fid).locked_until))
            time.sleep(LEASE * 2 / 5)
        return real(*args, **kwargs)

    monkeypatch.setattr(worker, "evaluate_file", slow)
    stolen, done = [], threading.Event()

    def other_host() -> None:
        while not done.is_set():
            store.reap_expired()
            stolen.extend(c.id for c in store.claim("otherhost:1:w0"))
            time.sleep(0.1)

    thief = threading.Thread(target=other_host)
    holder = worker_name("w0", gw.host_name)
    with Heartbeat(store, holder) as beat:
        try:
            assert work_once(gw, store, holder) == 1
        finally:
            done.set()
            if thief.is_alive():
                thief.join()
    assert stolen == []
    assert beat.beats >= 3
    assert seen[-1] > seen[0] and seen[-1] - seen[0] >= (seen[1] - seen[0])  # moved forward, more than once
    f = store.flow(fid)
    assert (f.queue, f.attempts, f.state) == ("done", 1, "IN_INTEGRE")
    assert len(reports(gw, "ACME")) == 1 and validations(store, fid) == 1


def test_an_expired_lease_is_taken_over_and_the_flow_processed_once(gw):
    """hostA leased the flows, wrote their files and died before recording
    them; once its lease runs out, hostB takes them over: the files are
    written again under the same names, the outcome recorded once."""
    store = Store(gw)
    ids = receive(gw, FILES)
    claimed = store.claim("hostA:1:w0")
    _results, writes, _left = prepare_flows(gw, store, claimed)
    for w in writes:
        w()
    assert store.reap_expired() == 0  # the lease runs on
    time.sleep(LEASE + 0.1)
    assert store.reap_expired() == len(ids)
    assert [work_once(gw, store, "hostB:1:w0") for _ in ids] == [1] * len(ids)  # back without an outcome: alone
    assert_processed_once(gw, store, ids)
    assert {store.flow(i).attempts for i in ids} == {2}


def test_a_late_completion_by_the_old_holder_is_dropped(gw):
    """hostA was paused past its lease (not dead): hostB took the flows over
    and recorded them. hostA then writes its files (the same names) and
    completes: its outcome is dropped, hostB's stands."""
    store = Store(gw)
    ids = receive(gw, FILES)
    claimed = store.claim("hostA:1:w0")
    results, writes, _left = prepare_flows(gw, store, claimed)
    time.sleep(LEASE + 0.1)  # the pause
    assert store.reap_expired() == len(ids)
    assert [work_once(gw, store, "hostB:1:w0") for _ in ids] == [1] * len(ids)  # back without an outcome: alone
    for w in writes:
        w()
    assert store.complete(results, holder="hostA:1:w0") == []
    assert_processed_once(gw, store, ids)


def test_lease_settings_come_from_the_config(tmp_path, monkeypatch):
    s = home_with(tmp_path / "a", '[intake]\nlease_seconds = 12\nhost_name = "node-2"\n')
    assert (s.lease_seconds, s.host_name) == (12.0, "node-2")
    assert worker_name("w0", s.host_name).startswith("node-2:")
    assert Heartbeat(Store(s), "node-2:1:w0").every == 4.0
    d = home_with(tmp_path / "b", "")
    assert (d.lease_seconds, d.host_name) == (20.0, "")
    for bad in ('lease_seconds = 0', 'lease_seconds = "soon"', 'host_name = "a:b"'):
        with pytest.raises(ValueError):
            home_with(tmp_path / "c", f"[intake]\n{bad}\n")
    monkeypatch.setenv("GATEWAY_INTAKE_LEASE_SECONDS", "45")
    assert config.load(tmp_path / "b").lease_seconds == 45.0
    db.dispose_all()

"""A flow back in the queue without an outcome (its worker died, its batch
failed) is leased alone and before the others, and one whose processing
stopped `[intake] max_attempts` times is refused with ERR_INTERROMPU instead
of stopping workers for ever; on SQLite and on PostgreSQL (when
GATEWAY_TEST_PG_URL names a server)."""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.exc import OperationalError

from conftest import codes_of, home_with, report_for, reports
from gateway.core import codes
from gateway.runtime.worker import prepare_flows, work_once
from gateway.store import monitoring
from gateway.store.repository import Store
from invoice_support import cii_invoice, ubl_invoice
from test_leases import receive


def _die_holding(store: Store, worker: str, limit: int = 20) -> list[str]:
    """`worker` claims, then dies before any outcome: what the service's reap does next."""
    ids = [c.id for c in store.claim(worker, limit=limit)]
    store.release(ids, tried=True, holder=worker)  # as reap_dead_holders leaves them: the attempt counted
    return ids


def _in_order(store: Store, ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda i: (store.flow(i).received_at, i))


def _turn(settings, store: Store, worker: str, poison: str) -> bool:  # noqa: ANN001
    """One worker's turn where reading `poison` kills the worker (its batch
    goes back, the attempt counted); False when it died."""
    claimed = store.claim(worker)
    if any(c.id == poison and c.attempts <= settings.max_attempts for c in claimed):  # refused ones are not read
        store.release([c.id for c in claimed], tried=True, holder=worker)
        return False
    results, writes, _left = prepare_flows(settings, store, claimed)
    for w in writes:
        w()
    store.complete(results, holder=worker)
    return True


def test_a_flow_back_without_an_outcome_is_leased_alone_and_first(demo_home):
    store = Store(demo_home)
    first = _in_order(store, receive(demo_home, {f"a{i}.xml": ubl_invoice(number=f"A-{i}") for i in range(5)}))
    assert len(_die_holding(store, "h:1:w0")) == 5  # the whole batch died with its worker
    later = receive(demo_home, {f"b{i}.xml": cii_invoice(number=f"B-{i}") for i in range(3)})
    # each alone, the oldest first, before any flow that never failed
    taken = [store.claim(f"h:{2 + i}:w0", limit=20) for i in range(len(first))]
    assert [[(c.id, c.attempts) for c in t] for t in taken] == [[(fid, 2)] for fid in first]
    assert [c.id for c in store.claim("h:9:w0", limit=20)] == _in_order(store, later)  # then a whole batch


def test_a_retried_flow_waits_its_turn_behind_an_older_fresh_one(demo_home):
    """B's worker died; A, older, was handed back untried (a stopping worker):
    A is claimed first, in a batch, and B after it, alone. (B first for ever
    would starve A when B is a status file that waits for A.)"""
    store = Store(demo_home)
    a, b = _in_order(store, receive(demo_home, {"a.xml": ubl_invoice(number="A-1"),
                                                "b.xml": ubl_invoice(number="B-1")}))
    assert [c.id for c in store.claim("h:1:w0", limit=1)] == [a]
    assert [c.id for c in store.claim("h:2:w0", limit=1)] == [b]
    store.release([b], tried=True, holder="h:2:w0")
    store.release([a], holder="h:1:w0")
    assert [(c.id, c.attempts) for c in store.claim("h:3:w0")] == [(a, 1)]
    assert [(c.id, c.attempts) for c in store.claim("h:4:w0")] == [(b, 2)]


def test_a_batch_the_database_could_not_serve_counts_no_attempt(demo_home, monkeypatch):
    """A database locked past its busy timeout (or a lost connection, a
    deadlock) is not the flows' fault; any other failure is counted."""
    store = Store(demo_home)
    [fid] = receive(demo_home, {"a.xml": ubl_invoice(number="A-1")})
    real = Store.complete
    for failure, counted in ((OperationalError("UPDATE flow", {}, Exception("database is locked")), 0),
                             (RuntimeError("a bug in complete()"), 1)):
        def failing(self, *args, _failure=failure, **kwargs):  # noqa: ANN001, ANN002, ANN003
            raise _failure

        monkeypatch.setattr(Store, "complete", failing)
        with pytest.raises(type(failure)):
            work_once(demo_home, store, "h:1:w0")
        monkeypatch.setattr(Store, "complete", real)
        f = store.flow(fid)
        assert (f.queue, f.attempts) == ("queued", counted)


def test_a_flow_handed_back_untried_stays_a_retried_one(demo_home):
    store = Store(demo_home)
    [fid] = receive(demo_home, {"a.xml": ubl_invoice(number="A-1")})
    _die_holding(store, "h:1:w0")
    others = receive(demo_home, {f"b{i}.xml": ubl_invoice(number=f"B-{i}") for i in range(2)})
    assert [c.id for c in store.claim("h:2:w0")] == [fid]
    store.release([fid], holder="h:2:w0")  # a stopping worker hands it back: not an attempt, still once failed
    assert [(c.id, c.attempts) for c in store.claim("h:3:w0")] == [(fid, 2)]
    assert sorted(c.id for c in store.claim("h:4:w0")) == sorted(others)


def test_a_fresh_batch_leaves_the_retried_flows_out(demo_home):
    store = Store(demo_home)
    [old] = receive(demo_home, {"old.xml": ubl_invoice(number="OLD")})
    _die_holding(store, "h:1:w0")
    new = receive(demo_home, {f"n{i}.xml": ubl_invoice(number=f"N-{i}") for i in range(4)})
    assert [c.id for c in store.claim("h:2:w0")] == [old]  # the retried one first, alone
    assert sorted(c.id for c in store.claim("h:3:w0")) == sorted(new)  # then the rest, without it


def test_a_flow_that_stopped_max_attempts_times_is_refused_and_its_batch_mates_are_not(demo_home):
    demo_home = replace(demo_home, max_attempts=2)
    store = Store(demo_home)
    ids = receive(demo_home, {"poison.xml": ubl_invoice(number="P-1"), **{
        f"ok{i}.xml": cii_invoice(number=f"OK-{i}") for i in range(4)}})
    poison = next(i for i in ids if store.flow(i).file_name == "poison.xml")
    turns = [_turn(demo_home, store, f"h:{n}:w0", poison) for n in range(8)]
    # the whole batch died once with it; then it died alone; its third claim refused it unread
    assert turns.count(False) == 2 and turns[0] is False
    assert store.pending() == 0
    refused = report_for(demo_home, "ACME", "poison.xml")
    assert refused["state"] == "IN_REJETE" and codes_of(refused) == {"ERR_INTERROMPU"}
    [finding] = refused["errors"]
    assert "stopped 2 times" in finding["message"] and "kept" in finding["message"]  # its own count
    f = store.flow(poison)
    assert (f.queue, f.state, f.attempts, f.pieces_total) == ("done", "IN_REJETE", 3, 0)
    others = [r for r in reports(demo_home, "ACME") if r["file"] != "poison.xml"]
    assert sorted(r["file"] for r in others) == [f"ok{i}.xml" for i in range(4)]  # one report each
    assert all(r["state"] == "IN_INTEGRE" for r in others)
    assert {store.flow(r["flow_id"]).attempts for r in others} == {2}  # died once with it, then alone: done
    assert codes.CODES["ERR_INTERROMPU"].nature == "technique"
    assert monitoring.rejection_codes(demo_home).get("ERR_INTERROMPU") == 1  # /metrics: gateway_rejections


def test_max_attempts_comes_from_the_config(tmp_path):
    assert home_with(tmp_path / "a", "[intake]\nmax_attempts = 5\n").max_attempts == 5
    assert home_with(tmp_path / "b", "").max_attempts == 3
    for bad in ("0", "-1", "1.5", "true", '"three"'):
        with pytest.raises(ValueError, match=r"\[intake\] max_attempts"):
            home_with(tmp_path / f"c{abs(hash(bad))}", f"[intake]\nmax_attempts = {bad}\n")


def test_a_worker_gives_back_what_a_failed_hand_back_left_it_holding(demo_home):
    store = Store(demo_home)
    mine = receive(demo_home, {"a.xml": ubl_invoice(number="A-1"), "b.xml": ubl_invoice(number="B-1")})
    assert sorted(c.id for c in store.claim("h:1:w0")) == sorted(mine)
    [other] = receive(demo_home, {"c.xml": ubl_invoice(number="C-1")})
    store.claim("h:2:w0")
    assert store.release(None, holder="h:1:w0") == 2
    assert {(store.flow(i).queue, store.flow(i).attempts) for i in mine} == {("queued", 0)}  # untried
    assert (store.flow(other).queue, store.flow(other).locked_by) == ("running", "h:2:w0")  # not its own
    assert store.release(None, holder="h:1:w0") == 0

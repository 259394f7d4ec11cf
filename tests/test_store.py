"""The flow store as a job queue: no flow claimed twice, duplicates recorded,
on SQLite and on PostgreSQL (when GATEWAY_TEST_PG_URL names a server)."""
from __future__ import annotations

import socket
import threading
from dataclasses import replace

import pytest

from conftest import PgDatabase
from gateway import db
from gateway.store import NewFlow, Store, new_flow_id, worker_name



@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, home):
    if request.param == "sqlite":
        yield Store(home)
        return
    pg = PgDatabase()
    yield Store(replace(home, database_url=pg.url))
    pg.close()


def _flows(n: int, partner: str = "ACME") -> list[NewFlow]:
    now = db.utcnow()
    return [NewFlow(new_flow_id(now), partner, "folder", f"f{i}.xml", f"{i:064x}", 10, now, f"/a/{i}")
            for i in range(n)]


def test_concurrent_workers_never_claim_the_same_flow(store):
    store.record_received(_flows(300))
    taken: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        while True:
            got = store.claim(f"w{k}", limit=7)
            if not got:
                return
            with lock:
                taken.extend(c.id for c in got)
            store.complete([])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 300 and len(set(taken)) == 300
    assert store.queued() == 0


def test_same_bytes_same_partner_is_a_duplicate(store):
    first = _flows(1)[0]
    [(fid, dup)] = store.record_received([first])
    assert dup is None
    again = replace(first, id=new_flow_id(), file_name="again.xml")
    other = replace(first, id=new_flow_id(), partner="OTHER")
    out = dict(store.record_received([again, other]))
    assert out[again.id] == fid and out[other.id] is None
    # recording the same flow id again (a restart) changes nothing
    assert store.record_received([first]) == [(fid, None)]
    assert len(store.recent_flows(10)) == 3


def test_expired_lease_goes_back_to_the_queue(store):
    store.record_received(_flows(2))
    got = store.claim("dead-worker", limit=2, lease_seconds=-1)
    assert len(got) == 2 and store.queued() == 0
    assert store.reap_expired() == 2
    assert store.queued() == 2
    store.release([])  # nothing to release is fine


def test_leases_of_dead_local_workers_are_requeued_at_once(store):
    store.record_received(_flows(4))
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = f"{socket.gethostname()}:{int(gone.stdout)}:w0"
    store.claim(dead, limit=2)
    store.claim(worker_name("w1"), limit=1)  # alive: this process
    assert len(store.claim("otherhost:1:w0", limit=5)) == 1  # another host's lease is left to expire
    assert store.reap_dead_holders() == 2
    assert store.queued() == 2

"""The flow store as a job queue: no flow claimed twice, duplicates recorded,
on SQLite and on PostgreSQL (when GATEWAY_TEST_PG_URL names a server)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from dataclasses import replace

import pytest

from conftest import KEPT_ENV, REPO, PgDatabase, gateway_cli
from gateway.store import db, migrations
from gateway.store.repository import NewFlow, Store, new_flow_id, worker_name


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


def test_a_database_of_an_earlier_version_is_brought_up_to_date(store, caplog):
    """An earlier version's tables lack columns and an index this one uses:
    at start they are added, the rows already there keep their values and get
    the model's defaults, and nothing is lost."""
    from sqlalchemy import inspect, text

    [(fid, _)] = store.record_received(_flows(1))
    with store.engine.begin() as c:  # what the database of an earlier version looked like
        migrations.downgrade(c, migrations.BASELINE)  # at the baseline's tables (nothing to undo while it is the head)
        c.execute(text("DROP TABLE alembic_version"))  # made before the schema had Alembic revisions
        c.execute(text("DROP INDEX ix_piece_due"))
        for col in ("seq", "link_id", "due_at"):
            c.execute(text(f"ALTER TABLE piece DROP COLUMN {col}"))
        c.execute(text("ALTER TABLE flow DROP COLUMN report_written_at"))
        c.execute(text(
            'INSERT INTO piece (id, flow_id, "index", name, format, valid, status, error_codes, created_at, '
            "partner, cadre, piece_type) VALUES (:id, :f, 1, 'old.xml', 'ubl-invoice', :v, 'MISE_A_DISPOSITION', "
            "'', :at, 'ACME', 'A1', 'facture')"), dict(id=f"{fid}-001", f=fid, v=True, at=db.utcnow()))
    db.dispose_all()

    with caplog.at_level("WARNING", logger="gateway.db"):
        again = Store(store.settings)
    assert "piece.seq" in caplog.text and "flow.report_written_at" in caplog.text and "ix_piece_due" in caplog.text
    insp = inspect(again.engine)
    assert {"seq", "link_id", "due_at"} <= {c["name"] for c in insp.get_columns("piece")}
    assert "ix_piece_due" in {i["name"] for i in insp.get_indexes("piece")}
    old = again.piece(f"{fid}-001")
    assert (old.status, old.seq, old.link_id, old.due_at) == ("MISE_A_DISPOSITION", 0, None, None)
    assert again.flow(fid).report_written_at is None and again.queued() == 1
    # and the store works as before: the old flow is leased and completed
    assert [c.id for c in again.claim("w1")] == [fid]
    again.complete([])
    db.dispose_all()
    assert db.upgrade_additive(Store(store.settings).engine) == []  # nothing left to add


# --- the caller's settings stay out of the tests --------------------------------------

def test_tests_store_in_their_own_home(home):
    leaked = [k for k in os.environ if k.startswith("GATEWAY_") and k not in KEPT_ENV]  # KEPT_ENV sets nothing
    assert leaked == []
    assert home.db_url == f"sqlite:///{home.home / 'gateway.db'}" and home.workers == 0
    r = gateway_cli("flows", "--json", home=home)  # the CLI inherits this process's environment
    assert r.returncode == 0, r.stdout + r.stderr
    assert (home.home / "gateway.db").exists()


def test_a_developers_gateway_settings_do_not_reach_the_tests():
    """A GATEWAY_STORE_DATABASE_URL in the shell that runs pytest would send
    every test to that database: conftest clears GATEWAY_* for the session."""
    env = dict(os.environ, GATEWAY_STORE_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:9/not-for-tests",
               GATEWAY_INTAKE_WORKERS="7")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        f"{__file__}::test_tests_store_in_their_own_home"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

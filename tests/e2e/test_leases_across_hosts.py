"""Two hosts: two `gateway run` services on two homes sharing one database and
the same folders (inbox, archive, outbox), as two machines mounting them would.
When one host dies holding leases, the other takes its flows over once the
lease runs out; when it was only paused, its late outcome is dropped. Every
file keeps exactly one flow and one report."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select, text

from conftest import REPO, PgDatabase, drop, reports
from gateway.core import config
from gateway.rules import directory
from gateway.store import db
from gateway.store.repository import Store
from gateway.store.tables import Event, Flow, Piece
from invoice_support import COMMUNE_SIRET, cii_invoice, ubl_invoice

LEASE = 6  # seconds: the heartbeat and the reap every 2 s
N = 40


def _file(i: int) -> bytes:
    kind = i % 4
    if kind == 0:
        return ubl_invoice(number=f"H-{i}")
    if kind == 1:
        return cii_invoice(number=f"H-{i}")
    if kind == 2:  # a recipient SIRET with a wrong key
        return ubl_invoice(number=f"H-{i}", recipient_siret=COMMUNE_SIRET[:-1] + "2")
    return b"<not-closed"


def _host(root: Path, name: str, shared: Path, url: str) -> config.Settings:
    root.mkdir()
    for sub in ("inbox", "archive", "outbox"):
        (root / sub).symlink_to(shared / sub, target_is_directory=True)
    config.init_home(root)
    (root / "gateway.toml").write_text(
        f'[store]\ndatabase_url = "{url}"\n'
        f'[intake]\nstability_seconds = 0.2\nworkers = 1\nopen_partners = true\nlease_seconds = {LEASE}\nhost_name = "{name}"\n'
        "[demo]\nseed = false\n[sftp]\nenabled = false\n", encoding="utf-8")
    return config.load(root)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hosts(request, tmp_path):
    shared = tmp_path / "shared"
    for sub in ("inbox", "archive", "outbox"):
        (shared / sub).mkdir(parents=True)
    pg = PgDatabase() if request.param == "postgres" else None
    url = pg.url if pg else f"sqlite:///{shared / 'gateway.db'}"
    a = _host(tmp_path / "host-a", "host-a", shared, url)
    b = _host(tmp_path / "host-b", "host-b", shared, url)
    directory.import_files(a, directory.demo_files())
    for i in range(N):
        drop(a, "ACME", f"inv-{i:03d}.xml", _file(i))
    procs: list[subprocess.Popen] = []
    yield a, b, procs, request.param
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    db.dispose_all()
    if pg is not None:
        pg.close()


def _start(settings: config.Settings, procs: list) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_HOME"] = str(settings.home)
    log = open(settings.home / "service.log", "ab")  # noqa: SIM115 - the service's, closed with it
    p = subprocess.Popen([sys.executable, "-m", "gateway.ops.cli", "run"], cwd=REPO, env=env, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    procs.append(p)
    return p


def _log(settings: config.Settings) -> str:
    return (settings.home / "service.log").read_text(errors="replace")


def _wait(predicate, timeout: float, what: str, step: float = 0.05) -> float:  # noqa: ANN001
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return time.time()
        time.sleep(step)
    pytest.fail(f"not within {timeout:.0f} s: {what}")


def _running(store: Store) -> dict[str, tuple[str, object]]:
    with store.session() as s:
        return {i: (h, u) for i, h, u in s.execute(
            select(Flow.id, Flow.locked_by, Flow.locked_until).where(Flow.queue == "running"))}


def _in_transaction(store: Store) -> bool:
    """Whether another session of the database is inside a transaction: a
    worker paused there would hold locks the others wait for (SQLite: its
    write lock; PostgreSQL: rows)."""
    url = store.settings.db_url
    if url.startswith("sqlite"):
        con = sqlite3.connect(url.split("///", 1)[1], timeout=0.2, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            con.close()
    with store.engine.connect() as c:
        return bool(c.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'")).scalar_one())


def _pause_while_holding(store: Store, host: str, timeout: float = 90) -> tuple[int, list[str]]:
    """SIGSTOP a worker of `host` at a moment it holds leases, outside any
    transaction of its: (its pid, the flows it holds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for holder in {h for h, _ in _running(store).values() if h and h.startswith(f"{host}:")}:
            pid = int(holder.split(":")[1])
            os.kill(pid, signal.SIGSTOP)
            held = [i for i, (h, _) in _running(store).items() if h == holder]
            if held and not _in_transaction(store):
                return pid, held
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.01)
    pytest.fail(f"no worker of {host} was seen holding a lease")


def _assert_one_flow_and_report_per_file(settings: config.Settings, store: Store) -> None:
    with store.session() as s:
        flows = list(s.execute(select(Flow.id, Flow.file_name, Flow.queue)).all())
        outcomes = Counter(e.flow_id for e in s.execute(select(Event).where(
            Event.stage == "validation", Event.piece_id.is_(None))).scalars())
        accepted = [p.id for p in s.execute(select(Piece).where(Piece.valid.is_(True))).scalars()]
    names = [f"inv-{i:03d}.xml" for i in range(N)]
    assert sorted(f for _, f, _ in flows) == names and {q for *_, q in flows} == {"done"}
    assert set(outcomes.values()) == {1} and len(outcomes) == N  # each outcome recorded once
    reps = reports(settings, "ACME")
    assert sorted(r["file"] for r in reps) == names
    assert {r["flow_id"] for r in reps} == {i for i, _, _ in flows}
    delivered = Counter(p.name for p in (settings.outbox / COMMUNE_SIRET).rglob("*")
                        if p.is_file() and p.parent.name not in ("reports", "statuses"))
    assert delivered == Counter([f"{pid}.xml" for pid in accepted] + [f"{pid}.pivot.xml" for pid in accepted])
    assert not [p for p in settings.outbox.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def _stop(p: subprocess.Popen) -> int:
    p.send_signal(signal.SIGTERM)
    return p.wait(timeout=60)


def test_a_dead_hosts_flows_are_taken_over_by_the_other_within_a_lease(hosts):
    a, b, procs, _ = hosts
    store = Store(a)
    host_a = _start(a, procs)
    _wait(lambda: len(store.recent_flows(2 * N)) == N, 90, "host-a receives every file")
    _pid, held = _pause_while_holding(store, "host-a")
    host_b = _start(b, procs)  # both hosts at work: host-b takes what waits
    _wait(lambda: "gateway running in" in _log(b), 60, "host-b starts")
    os.killpg(host_a.pid, signal.SIGKILL)  # host-a dies, its worker holding leases
    host_a.wait()
    running = _running(store)
    assert set(held) <= set(running)
    until = max(db.as_utc(running[i][1]) for i in held).timestamp()
    # host-b leaves a live-looking lease alone until it runs out...
    while time.time() < until - 0.5:
        assert set(held) <= set(_running(store)), "taken before the lease ran out"
        time.sleep(0.1)
    # ...then takes the flows over and processes them
    done = _wait(lambda: store.pending() == 0 and len(reports(a, "ACME")) == N, 60, "host-b finishes")
    assert done - until <= 30, f"taken over {done - until:.0f} s after the lease ran out"
    assert _stop(host_b) == 0, _log(b)[-3000:]
    assert "re-queued" in _log(b)
    assert {store.flow(i).attempts for i in held} == {2}
    _assert_one_flow_and_report_per_file(a, store)


# A paused worker is a several-hosts case: PostgreSQL (on SQLite, one host, a
# paused process may hold the database's only write lock).
@pytest.mark.parametrize("hosts", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_paused_worker_that_resumes_after_its_lease_was_taken_records_nothing(hosts):
    a, b, procs, _ = hosts
    store = Store(a)
    host_a = _start(a, procs)
    _wait(lambda: len(store.recent_flows(2 * N)) == N, 90, "host-a receives every file")
    pid, held = _pause_while_holding(store, "host-a")
    host_b = _start(b, procs)
    _wait(lambda: store.pending() == 0 and len(reports(a, "ACME")) == N, 90, "host-b takes the paused leases")
    os.kill(pid, signal.SIGCONT)  # host-a's worker carries on with the batch it thought was its own
    _wait(lambda: "taken over meanwhile" in _log(a), 30, "host-a's worker drops its outcome")
    assert _stop(host_a) == 0, _log(a)[-3000:]
    assert _stop(host_b) == 0, _log(b)[-3000:]
    assert {store.flow(i).attempts for i in held} == {2}
    _assert_one_flow_and_report_per_file(a, store)

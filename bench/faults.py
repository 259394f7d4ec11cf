"""Fault injection: SIGKILL the gateway at random moments, then check nothing
was lost, doubled or left half-written.

    python bench/faults.py [--trials N] [--db sqlite|postgres|both] [--files M] [--seed S]

Each trial makes a new home with M mixed files already waiting (valid and
invalid UBL and CII invoices, a ZIP lot, a duplicate, an empty file, two
partners) and the demo directory, starts `gateway run` (the service, real
worker processes) and, at a random moment, kills with SIGKILL either

  service  the service's whole process group (main process and workers), as a
           crash of the host would: it is started again;
  worker   one of its worker processes: the service carries on, and its
           periodic reap gives the dead worker's flows to the other worker.

Once every file is processed the service is stopped (SIGTERM: it must end
with 0) and the trial checks: every file has exactly one flow and exactly one
report (outbox/<partner>/reports/, a JSON and an XML per flow), every accepted
piece is delivered exactly once (outbox/<SIRET>/<service>/: one original and
one pivot, no piece delivered that the store does not hold as accepted, no
invoice delivered twice) and no temporary or hidden file is left in the
outbox where partners would see it.

PostgreSQL: GATEWAY_TEST_PG_URL names the server (each trial gets a database
of its own, dropped afterwards). A run without a kill is timed first, per
database; a third of the kills then fall anywhere in a run (the start, the
claims, the work, idle), the others within the work, once a first flow is
leased (most of a run is its start). A worker killed is one holding leases
when there is one. The summary says how many kills left leased flows behind
(re-queued) and how many interrupted a claim (recovered).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO / "tests", REPO):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from invoice_support import COMMUNE_SIRET, cii_invoice, ubl_invoice, zip_lot  # noqa: E402

from gateway.core import config  # noqa: E402
from gateway.rules import directory  # noqa: E402
from gateway.store import db  # noqa: E402
from gateway.store.tables import Flow, Piece  # noqa: E402

PARTNERS = ("ACME", "BETA")
LEASE_SECONDS = 3  # a worker killed by itself: the service re-queues its flows within a second
DONE_TIMEOUT = 120.0  # a trial whose files are not all processed by then has failed
TOML = """\
[store]
database_url = "{url}"
[intake]
open_partners = true
stability_seconds = 0.1
workers = 2
lease_seconds = {lease}
[validation]
schematron = false
[demo]
seed = false
[sftp]
enabled = false
"""


# --- the files ------------------------------------------------------------------------------

def mixed_files(m: int, tag: str) -> dict[tuple[str, str], bytes]:
    """M files by (partner, name): mostly single invoices, accepted or not,
    one ZIP lot of three, one duplicate, one empty file. (No XSD-invalid file:
    the first one costs a process seconds of loading the schemas the error
    messages are explained with, which would make most of a trial.)"""
    def invoice(i: int) -> bytes:
        number = f"{tag}-{i:04d}"
        kind = i % 6
        if kind == 0:
            return cii_invoice(number=number)
        if kind == 1:  # a recipient SIRET with a wrong key
            return ubl_invoice(number=number, recipient_siret=COMMUNE_SIRET[:-1] + "2")
        if kind == 2:  # a service of the Commune's that is closed
            return cii_invoice(number=number, service_code="ANCIEN")
        if kind == 3:
            return b"<not-closed"
        return ubl_invoice(number=number)

    files: dict[tuple[str, str], bytes] = {}
    for i in range(max(m - 3, 1)):
        files[(PARTNERS[i % 2], f"inv-{i:04d}.xml")] = invoice(i)
    if m >= 4:
        files[(PARTNERS[0], "lot.zip")] = zip_lot({
            "a.xml": ubl_invoice(number=f"{tag}-L1"), "b.xml": cii_invoice(number=f"{tag}-L2"),
            "c.xml": ubl_invoice(number=f"{tag}-L3", service_code=None)})
        files[(PARTNERS[1], "again.xml")] = files[(PARTNERS[1], "inv-0001.xml")] if m > 4 else b""
        files[(PARTNERS[0], "empty.xml")] = b""
    return dict(list(files.items())[:m])


def drop_all(home: Path, files: dict[tuple[str, str], bytes]) -> None:
    old = time.time() - 60  # already stable: claimed at the first scan
    for (partner, name), data in files.items():
        p = home / "inbox" / partner / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (old, old))


# --- a trial --------------------------------------------------------------------------------

@dataclass
class Trial:
    db: str
    mode: str
    delay: float
    seconds: float = 0.0
    requeued: bool = False  # the kill left leases behind: they were taken back (the log says so)
    recovered: bool = False  # the kill interrupted a claim: the restart finished it
    problems: list[str] = field(default_factory=list)


class Database:
    """SQLite in the home, or a PostgreSQL database made for the trial."""

    def __init__(self, kind: str):
        self.kind, self.url, self._admin = kind, "", None
        if kind == "postgres":
            from sqlalchemy import create_engine, text

            base = os.environ.get("GATEWAY_TEST_PG_URL")
            if not base:
                raise SystemExit("--db postgres: set GATEWAY_TEST_PG_URL (e.g. "
                                 "postgresql+psycopg://gateway@127.0.0.1:55432/postgres)")
            self.name = f"gw_faults_{uuid.uuid4().hex[:10]}"
            self._admin = create_engine(base, isolation_level="AUTOCOMMIT")
            with self._admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{self.name}"'))
            self.url = base.rsplit("/", 1)[0] + f"/{self.name}"

    def close(self) -> None:
        db.dispose_all()
        if self._admin is not None:
            from sqlalchemy import text

            with self._admin.connect() as c:
                c.execute(text(f'DROP DATABASE "{self.name}" WITH (FORCE)'))
            self._admin.dispose()


def make_home(root: Path, url: str, files: dict[tuple[str, str], bytes]) -> config.Settings:
    config.init_home(root)
    (root / "gateway.toml").write_text(TOML.format(url=url, lease=LEASE_SECONDS), encoding="utf-8")
    settings = config.load(root)
    directory.import_files(settings, directory.demo_files())
    db.dispose_all()
    drop_all(root, files)
    return settings


def start(home: Path, log) -> subprocess.Popen:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_HOME=str(home), PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-m", "gateway.ops.cli", "run"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def workers_of(proc: subprocess.Popen) -> list[int]:
    """The service's worker processes: the children of its fork server
    (runtime/procs.py), whose command line says so."""
    out = []
    for pid in children(proc.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing.forkserver" in cmd:
            out.extend(children(pid))
    return out


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def stop(proc: subprocess.Popen, problems: list[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        problems.append("the service did not stop within 60 s of SIGTERM")
        kill_group(proc)
        return
    if rc != 0:
        problems.append(f"the service ended with {rc} after SIGTERM")
    for _ in range(50):  # a worker left behind would hold leases (the resource tracker may take a moment)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    problems.append("processes of the service outlived it")
    kill_group(proc)


def all_processed(settings: config.Settings, n_files: int) -> bool:
    """Nothing left in the inboxes, no claim half done, no flow waiting, and a
    report for every flow."""
    if any(p.is_file() for p in settings.inbox.rglob("*")) or any(settings.archive.rglob("*.claim")):
        return False
    from gateway.store.repository import Store

    store = Store(settings)
    if store.pending() or len(store.recent_flows(n_files * 2)) < n_files:
        return False
    n_reports = sum(1 for p in PARTNERS for _ in settings.reports_dir(p).glob("*.json"))
    return n_reports >= n_files


def up(home: Path, since: int) -> bool:
    """Whether the latest start (its log from byte `since`) has its signal
    handlers (it says it runs): a SIGTERM before ends it with -15."""
    with open(home / "service.log", "rb") as fh:
        fh.seek(since)
        return b"gateway running in" in fh.read()


def wait_processed(settings: config.Settings, n_files: int, proc: subprocess.Popen, since: int,
                   problems: list[str]) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < DONE_TIMEOUT:
        if proc.poll() is not None:
            problems.append(f"the service ended by itself with {proc.returncode}")
            return time.monotonic() - t0
        if all_processed(settings, n_files) and up(settings.home, since):
            return time.monotonic() - t0
        time.sleep(0.1)
    problems.append(f"not every file processed within {DONE_TIMEOUT:.0f} s")
    return time.monotonic() - t0


# --- the checks -----------------------------------------------------------------------------

def check(settings: config.Settings, files: dict[tuple[str, str], bytes]) -> list[str]:
    from sqlalchemy import select
    from sqlmodel import Session

    problems: list[str] = []
    with Session(db.engine(settings)) as s:
        flows = list(s.execute(select(Flow.id, Flow.partner, Flow.file_name, Flow.queue)).all())
        pieces = list(s.execute(select(Piece.id, Piece.flow_id, Piece.valid, Piece.invoice_number)).all())
    by_file = Counter((p, f) for _, p, f, _ in flows)
    for key in files:
        if by_file[key] != 1:
            problems.append(f"{key[0]}/{key[1]}: {by_file[key]} flow(s)")
    if extra := set(by_file) - set(files):
        problems.append(f"flows for files never sent: {sorted(extra)}")
    if waiting := [fid for fid, _, _, q in flows if q != "done"]:
        problems.append(f"{len(waiting)} flow(s) not done")

    flow_of = {(p, f): fid for fid, p, f, _ in flows}
    for partner in PARTNERS:
        rdir = settings.reports_dir(partner)
        reports = [json.loads(p.read_text(encoding="utf-8")) for p in rdir.glob("*.json")] if rdir.exists() else []
        per_file = Counter(r["file"] for r in reports)
        for (p, name) in files:
            if p == partner and per_file[name] != 1:
                problems.append(f"{partner}/{name}: {per_file[name]} report(s)")
        for r in reports:
            if flow_of.get((partner, r["file"])) != r["flow_id"]:
                problems.append(f"{partner}/{r['file']}: report of flow {r['flow_id']}, not the store's")
            if not (rdir / f"{r['flow_id']}.xml").is_file():
                problems.append(f"{partner}/{r['file']}: no XML report")
        if rdir.exists() and len(list(rdir.glob("*.xml"))) != len(reports):
            problems.append(f"{partner}: {len(list(rdir.glob('*.xml')))} XML reports for {len(reports)} JSON")

    accepted = {pid: number for pid, _, valid, number in pieces if valid}
    ddir = settings.outbox / COMMUNE_SIRET
    delivered: Counter[str] = Counter()
    pivots: Counter[str] = Counter()
    for f in ddir.rglob("*") if ddir.exists() else []:
        # its own return files aside: status files are named after the piece too
        if f.is_file() and not f.name.startswith(".") and f.parent.name not in ("reports", "statuses"):
            pid = f.name.split(".", 1)[0]
            (pivots if f.name.endswith(".pivot.xml") else delivered)[pid] += 1
    for pid in set(delivered) | set(pivots) | set(accepted):
        if pid not in accepted:
            problems.append(f"{pid}: delivered, but not an accepted piece in the store")
        elif delivered[pid] != 1 or pivots[pid] != 1:
            problems.append(f"{pid}: delivered {delivered[pid]} time(s), {pivots[pid]} pivot(s)")
    numbers = Counter(accepted[pid] for pid in delivered if pid in accepted)
    problems += [f"invoice {n} delivered {k} times" for n, k in numbers.items() if k > 1]

    for f in settings.outbox.rglob("*"):
        if f.name.startswith(".") or f.name.endswith((".tmp", ".part")):
            problems.append(f"left in the outbox: {f.relative_to(settings.outbox)}")
    return problems


@dataclass(frozen=True)
class Plan:
    """When and what a trial kills: `phase` "any" is a moment of the whole
    run (the start, the claims, the work, idle), `delay` seconds after the
    start; "work" is `delay` seconds after a first flow is leased (the work,
    the writes, the outcomes recorded), when most of a run is its start."""

    mode: str  # "service", "worker", or "none" (a run without a kill)
    phase: str = "any"
    delay: float = 0.0


@dataclass(frozen=True)
class Timing:
    """A run without a kill: seconds from the start to its first lease, and to the end."""

    first_lease: float
    done: float


def draw(rng: random.Random, timing: Timing) -> Plan:
    mode = rng.choice(("service", "worker"))
    if rng.random() < 1 / 3:
        return Plan(mode, "any", rng.uniform(0.0, timing.done + 1.0))
    return Plan(mode, "work", rng.uniform(0.0, max(timing.done - timing.first_lease, 0.2)))


def holders(settings: config.Settings) -> list[str]:
    """Who holds leases now (a plain read: on SQLite the store's sessions
    would take the write lock)."""
    sql = "SELECT locked_by FROM flow WHERE queue = 'running' AND locked_by IS NOT NULL"
    if settings.db_url.startswith("sqlite"):
        try:
            con = sqlite3.connect(f"file:{settings.home / 'gateway.db'}?mode=ro", uri=True, timeout=1)
            try:
                return [r[0] for r in con.execute(sql)]
            finally:
                con.close()
        except sqlite3.Error:  # not made yet
            return []
    from sqlalchemy import text

    with db.engine(settings).connect() as c:
        return list(c.execute(text(sql)).scalars())


def wait_first_lease(settings: config.Settings, proc: subprocess.Popen) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < DONE_TIMEOUT and proc.poll() is None:
        if holders(settings):
            break
        time.sleep(0.01)
    return time.monotonic() - t0


def kill(plan: Plan, settings: config.Settings, proc: subprocess.Popen, rng: random.Random) -> str:
    """Kill as planned; returns what was killed. A worker: one holding
    leases when there is one, else any; the service when none runs yet."""
    if plan.mode == "worker":
        pids = workers_of(proc)
        busy = [int(h.split(":")[1]) for h in holders(settings) if not h.endswith(":main")]
        busy = [p for p in busy if p in pids]
        if busy or pids:
            os.kill(rng.choice(busy or pids), signal.SIGKILL)
            return "worker"
    kill_group(proc)
    return "service"


def run_trial(kind: str, m: int, rng: random.Random, plan: Plan, workdir: Path) -> tuple[Trial, Timing | None]:
    trial = Trial(kind, plan.mode, plan.delay)
    timing = None
    home = Path(tempfile.mkdtemp(prefix=f"faults-{kind}-", dir=workdir))
    database = Database(kind)
    t0 = time.monotonic()
    try:
        files = mixed_files(m, home.name[-8:])
        settings = make_home(home, database.url, files)
        with open(home / "service.log", "ab") as log:
            proc, since = start(home, log), 0
            if plan.mode == "none":
                first = wait_first_lease(settings, proc)
                timing = Timing(first, first + wait_processed(settings, len(files), proc, since, trial.problems))
            else:
                if plan.phase == "work":
                    wait_first_lease(settings, proc)
                time.sleep(plan.delay)
                trial.mode = kill(plan, settings, proc, rng)
                if trial.mode == "service":
                    since = os.fstat(log.fileno()).st_size  # what the killed start wrote
                    proc = start(home, log)
                wait_processed(settings, len(files), proc, since, trial.problems)
            stop(proc, trial.problems)
        said = (home / "service.log").read_text(errors="replace")
        trial.requeued, trial.recovered = "re-queued" in said, "interrupted claim" in said
        if not trial.problems:
            trial.problems = check(settings, files)
    except Exception as exc:  # noqa: BLE001 - a trial that breaks is a failed trial, reported
        trial.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        trial.seconds = time.monotonic() - t0
        try:
            database.close()
        except Exception as exc:  # noqa: BLE001
            trial.problems.append(f"dropping the database: {exc}")
    if trial.problems:
        print(f"  FAILED {kind} trial ({trial.mode} killed, {plan.phase} +{plan.delay:.2f} s), home kept: {home}")
        for p in trial.problems[:10]:
            print(f"    {p}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    return trial, timing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=100, help="trials per database (default 100)")
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
    ap.add_argument("--files", type=int, default=30, help="files per trial (default 30)")
    ap.add_argument("--seed", type=int, default=None, help="for the same kill moments again")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    workdir = Path(tempfile.mkdtemp(prefix="gateway-faults-"))
    print(f"fault injection: {args.trials} trial(s) per database, {args.files} files each, seed {seed}")
    failed = 0
    for kind in kinds:
        t0 = time.monotonic()
        calibration, timing = run_trial(kind, args.files, rng, Plan("none"), workdir)
        if calibration.problems or timing is None:
            print(f"{kind}: a run without a kill already fails; no trials")
            failed += 1
            continue
        print(f"{kind}: a run without a kill leases its first flow after {timing.first_lease:.1f} s and "
              f"processes {args.files} files in {timing.done:.1f} s; a third of the kills fall anywhere "
              f"in the run, the rest once a flow is leased")
        trials = []
        for i in range(args.trials):
            trials.append(run_trial(kind, args.files, rng, draw(rng, timing), workdir)[0])
            if (i + 1) % 10 == 0:
                ok = sum(not t.problems for t in trials)
                print(f"  {kind}: {ok}/{len(trials)} passed so far ({time.monotonic() - t0:.0f} s)", flush=True)
        ok = sum(not t.problems for t in trials)
        failed += len(trials) - ok
        modes = Counter(t.mode for t in trials)
        passed_by = Counter(t.mode for t in trials if not t.problems)
        took = time.monotonic() - t0
        print(f"{kind}: {ok}/{len(trials)} trials passed in {took:.0f} s "
              f"({took / max(len(trials), 1):.1f} s a trial); "
              + ", ".join(f"{m} killed: {passed_by[m]}/{n}" for m, n in sorted(modes.items()))
              + f"; {sum(t.requeued for t in trials)} kill(s) left leased flows (re-queued), "
              f"{sum(t.recovered for t in trials)} an interrupted claim (recovered)")
    if not any(workdir.iterdir()):
        workdir.rmdir()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""The Flow Service API run (issue #15): the same invoices deposited through the API
(POST /flow-service/v1/flows, a few connector threads) and dropped into the inbox
folder, each through `gateway run --api-port` as a service with the same settings,
each timed from the first file in to the last report written.

    python bench/api.py [--files N] [--clients C] [--workers W] [--rules]

Prints, for each way in: files per second accepted (the API's 202 answers; the folder's
drops) and end to end (first file in to last report), with the reports' states.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchlib import REPO, clean_env, report_files, states
from conftest import home_with
from sftp_support import free_port
from xml_bench import generate

import httpx

from gateway.core import config
from gateway.rules import directory
from gateway.store import api_clients, db, partners

PARTNER = "BENCH"


class Service:
    def __init__(self, home: Path, port: int, workers: int):
        self.log = home / "service.log"
        self._fh = open(self.log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.ops.cli", "run", "--api-port", str(port), "--workers", str(workers)],
            cwd=REPO, env=clean_env(home, GATEWAY_SFTP_ENABLED="false"), stdout=self._fh, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 90
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise SystemExit(f"gateway run exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/flow-service/v1/healthcheck", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("the API did not answer within 90 s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)
        self._fh.close()


def make_home(root: Path, rules: bool) -> config.Settings:
    s = home_with(root, f"[intake]\nstability_seconds = 0.2\n[validation]\nschematron = {str(rules).lower()}\n"
                        "[demo]\nseed = false\n[api]\nwebhook_poll_seconds = 1\n")
    directory.import_files(s, directory.demo_files())
    return s


def wait_reports(s: config.Settings, n: int, timeout: float = 900) -> float:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = report_files(s.reports_dir(PARTNER))
        if len(found) >= n:
            return max(p.stat().st_mtime for p in found)
        time.sleep(0.05)
    raise SystemExit(f"only {len(report_files(s.reports_dir(PARTNER)))} of {n} reports after {timeout} s")


def through_api(s: config.Settings, files: list[Path], clients: int, workers: int) -> tuple[float, float, float]:
    partners.add_partner(s, PARTNER, [])
    client, secret = api_clients.add_client(s, PARTNER)
    db.dispose_all()
    svc = Service(s.home, free_port(), workers)
    try:
        with httpx.Client(base_url=svc.base, timeout=60) as http:
            tok = http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client.id,
                                                 "client_secret": secret}).json()["access_token"]
        todo = list(files)
        lock = threading.Lock()
        failures: list[str] = []

        def connector() -> None:
            with httpx.Client(base_url=svc.base, timeout=60, headers={"Authorization": f"Bearer {tok}"}) as http:
                while True:
                    with lock:
                        if not todo:
                            return
                        f = todo.pop()
                    info = json.dumps({"name": f.name, "flowSyntax": "UBL" if b"Invoice-2" in f.read_bytes()[:400]
                                       else "CII"})
                    r = http.post("/flow-service/v1/flows", files={"flowInfo": (None, info, "application/json"),
                                                                   "file": (f.name, f.read_bytes(), "application/xml")})
                    if r.status_code != 202:
                        failures.append(f"{f.name}: {r.status_code} {r.text[:200]}")

        start = time.time()
        threads = [threading.Thread(target=connector) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        accepted = time.time()
        if failures:
            raise SystemExit("deposits refused:\n" + "\n".join(failures[:5]))
        last = wait_reports(s, len(files))
    finally:
        svc.stop()
    return start, accepted, last


def through_folder(s: config.Settings, files: list[Path], workers: int) -> tuple[float, float, float]:
    db.dispose_all()
    svc = Service(s.home, free_port(), workers)
    try:
        inbox = s.inbox / PARTNER
        inbox.mkdir(parents=True, exist_ok=True)
        start = time.time()
        for f in files:  # as a careful sender does: write under a temporary name, then rename
            tmp = inbox / f".{f.name}.tmp"
            tmp.write_bytes(f.read_bytes())
            os.replace(tmp, inbox / f.name)
        dropped = time.time()
        last = wait_reports(s, len(files))
    finally:
        svc.stop()
    return start, dropped, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--clients", type=int, default=4, help="connector threads depositing through the API")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rules", action="store_true", help="run the EN 16931 rules too (slower)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gw-api-bench-") as tmp:
        root = Path(tmp)
        files = generate(root / "files", a.files)
        print(f"{a.files} invoices (UBL and CII in turn), {a.workers} workers, "
              f"{'XSD + EN 16931 rules' if a.rules else 'XSD'}; API: {a.clients} connector threads")
        rows = []
        for way, run in (("API", lambda s: through_api(s, files, a.clients, a.workers)),
                         ("folder", lambda s: through_folder(s, files, a.workers))):
            s = make_home(root / way, a.rules)
            start, taken, last = run(s)
            rows.append((way, a.files / (taken - start), a.files / (last - start), states(s.reports_dir(PARTNER))))
        for way, rate_in, rate_end, st in rows:
            print(f"  {way:<7} {rate_in:8.1f} files/s in   {rate_end:7.1f} files/s end to end   ({st})")
        print(f"  API / folder end to end: {rows[0][2] / rows[1][2]:.2f}")


if __name__ == "__main__":
    main()

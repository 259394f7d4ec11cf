"""Issue #17's latency run: `python bench/latency.py [--rate 100] [--seconds 60 | --quick]`.

`gateway run` as a service (default configuration: rules on, 2 workers,
stability delay 1 s), warmed up with 40 files, then files dropped in a
partner's inbox at a steady rate (each written beside the inbox, then linked
in, so it appears whole at a known time). For each file, drop to its JSON
report (the report's mtime): p50, p95, max, the stability delay included;
and the backlog (dropped, not yet reported) every few seconds, to tell a rate
the gateway sustains (flat) from one it does not (growing).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import time
from datetime import timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import PARTNER, REPO, Service, report_files, tree_cpu  # noqa: E402
from xml_bench import generate  # noqa: E402

from gateway.core import config  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reports:
    """The reports seen so far: file name -> report mtime."""

    def __init__(self, folder: Path):
        self.folder, self.seen, self.done = folder, set(), {}

    def poll(self) -> None:
        for p in report_files(self.folder):
            if p.name in self.seen:
                continue
            try:
                self.done[json.loads(p.read_bytes())["file"]] = p.stat().st_mtime
            except (OSError, ValueError, KeyError):
                continue  # being written: next time
            self.seen.add(p.name)


def drop(datas: list[bytes], names: list[str], stage: Path, inbox: Path, rate: float, reports: Reports,
         every: float) -> dict[str, float]:
    """Drop the files at `rate` per second; print the backlog every `every` s. Returns name -> drop time."""
    dropped: dict[str, float] = {}
    t0 = time.monotonic()
    next_print = every
    for i, (data, name) in enumerate(zip(datas, names)):
        due = t0 + i / rate
        while (now := time.monotonic()) < due:
            time.sleep(min(due - now, 0.005))
        tmp = stage / name
        tmp.write_bytes(data)
        os.link(tmp, inbox / name)
        dropped[name] = time.time()
        tmp.unlink()
        if now - t0 >= next_print:
            reports.poll()
            print(f"  t={now - t0:5.1f} s  dropped {len(dropped):6d}  reported {len(reports.done):6d}  "
                  f"backlog {len(dropped) - len(reports.done):5d}  load {os.getloadavg()[0]:.1f}")
            next_print += every
    return dropped


def split(settings, dropped: dict[str, float], done: dict[str, float], n: int) -> tuple[list[float], list[float]]:  # noqa: ANN001
    """Drop to claim and claim to report, sorted: where the time goes (the flow's received_at is its claim)."""
    from gateway.store.repository import Store

    received = {f.file_name: f.received_at.replace(tzinfo=timezone.utc).timestamp()
                for f in Store(settings).recent_flows(n, partner=PARTNER)}
    names = [k for k in dropped if k in received and k in done]
    return (sorted(received[k] - dropped[k] for k in names), sorted(done[k] - received[k] for k in names))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=100.0, help="files dropped per second (default 100)")
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to drop (default 60)")
    ap.add_argument("--quick", action="store_true", help="15 s instead")
    ap.add_argument("--idle", type=float, default=10.0, help="CPU of the idle service over this long (0: skip)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out-latency")
    args = ap.parse_args(argv)
    seconds = 15.0 if args.quick else args.seconds
    sys.stdout.reconfigure(line_buffering=True)
    shutil.rmtree(args.out, ignore_errors=True)
    n = int(args.rate * seconds)
    warm = 40
    files = generate(args.out / "files", n + warm)
    datas, names = [f.read_bytes() for f in files], [f.name for f in files]
    home = args.out / "home"
    config.init_home(home)
    inbox = home / "inbox" / PARTNER
    inbox.mkdir(parents=True)
    stage = home / "inbox" / ".bench-stage"  # same file system, outside the partner's folder
    stage.mkdir()
    settings = config.load(home)
    reports = Reports(settings.reports_dir(PARTNER))
    svc = Service(home, free_port(), args.out / "service.log")
    try:
        svc.wait_listening()
        print(f"[service mode, warm-up: {warm} files]")
        drop(datas[:warm], names[:warm], stage, inbox, 50, reports, 1e9)
        end = time.monotonic() + 120
        while len(reports.done) < warm and time.monotonic() < end:
            time.sleep(0.2)
            reports.poll()
        if args.idle:
            time.sleep(2.0)  # the warm-up's last reports and notices written
            c0 = sum(tree_cpu(svc.proc.pid).values())
            time.sleep(args.idle)
            print(f"  idle, nothing waiting: {sum(tree_cpu(svc.proc.pid).values()) - c0:.2f} s CPU over "
                  f"{args.idle:g} s (service, workers, Saxon children)")
        print(f"[{n} files at {args.rate:.0f} files/s for {seconds:.0f} s, rules on, stability delay "
              f"{settings.stability_seconds:g} s; load {os.getloadavg()[0]:.1f}]")
        dropped = drop(datas[warm:], names[warm:], stage, inbox, args.rate, reports, 5.0)
        t_end = time.monotonic()
        while len(reports.done) < n + warm and time.monotonic() - t_end < 600:
            time.sleep(0.2)
            reports.poll()
        drained = time.monotonic() - t_end
        lat = sorted(reports.done[k] - t for k, t in dropped.items() if k in reports.done)
        if not lat:
            raise SystemExit("no report came back")

        def pct(q: float) -> float:
            return lat[min(len(lat) - 1, int(q * len(lat)))]

        print(f"  drop to report: p50 {pct(0.5):.2f} s, p95 {pct(0.95):.2f} s, max {lat[-1]:.2f} s over "
              f"{len(lat)} of {n} files (target p95 < 1.5 s, stability delay included); the last report "
              f"{drained:.1f} s after the last drop")
        claim, work = split(settings, dropped, reports.done, n + warm)
        print(f"    of which drop to claim (stability delay, intake): p50 {claim[len(claim) // 2]:.2f} s, "
              f"p95 {claim[int(0.95 * len(claim))]:.2f} s; claim to report (queue, evaluation, files): "
              f"p50 {work[len(work) // 2]:.2f} s, p95 {work[int(0.95 * len(work))]:.2f} s")
    except BaseException:
        svc.abort()
        raise
    else:
        svc.stop()
        print(f"  service peak RSS {svc.rss.peak / 2**20:.0f} MB, PSS {svc.rss.peak_pss / 2**20:.0f} MB")
    finally:
        shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What every benchmark run shares: paths, clean environments, the gateway
started as a batch (`run --once`) or as a service, peak RSS of its process
tree, waiting for reports, and per-stage timing."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO / "tests", REPO):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from gateway import config  # noqa: E402

PARTNER = "BENCH"


def clean_env(home: Path, **settings: str) -> dict[str, str]:
    """This environment without any GATEWAY_* setting of the caller's, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_HOME"] = str(home)
    env.update(settings)
    return env


def make_home(root: Path, toml: str) -> config.Settings:
    """A fresh home whose gateway.toml is exactly `toml`."""
    config.init_home(root)
    (root / "gateway.toml").write_text(toml, encoding="utf-8")
    return config.load(root)


def link_into_inbox(files: Sequence[Path], home: Path, partner: str = PARTNER) -> None:
    """Hard links, so dropping costs nothing and the files keep their old mtime."""
    inbox = home / "inbox" / partner
    inbox.mkdir(parents=True, exist_ok=True)
    for f in files:
        os.link(f, inbox / f.name)


def age(path: Path, seconds: float = 60) -> None:
    """An old mtime: `run --once` claims the file at once (it is stable)."""
    old = time.time() - seconds
    os.utime(path, (old, old))


def process_tree(pid: int) -> list[int]:
    """A process and its descendants, from /proc."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of each process of a tree."""
    return cpu_of(process_tree(pid))


def cpu_of(pids: list[int]) -> dict[int, float]:
    out = {}
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            out[p] = (int(f[11]) + int(f[12])) / _TICK
        except (OSError, IndexError, ValueError):
            continue
    return out


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds a process tree spent between two `tree_cpu` readings
    (a process started meanwhile counts whole)."""
    return sum(t - before.get(p, 0.0) for p, t in after.items())


class RssSampler(threading.Thread):
    """Peak RSS summed over a process and its descendants, and the CPU time
    each of them was last seen with (from /proc, every 0.1 s)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        # PSS splits the pages processes share (libpython, lxml, ...) between
        # them: the memory the tree really takes. RSS sums count them each time.
        self.peak_pss = 0
        self.cpu: dict[int, float] = {}

    @property
    def cpu_total(self) -> float:
        """CPU seconds of every process of the tree (each short of at most its last 0.1 s)."""
        return sum(self.cpu.values())

    def run(self) -> None:
        while not self.stop.is_set():
            total = pss = 0
            pids = process_tree(self.pid)
            for p, t in cpu_of(pids).items():
                self.cpu[p] = max(self.cpu.get(p, 0.0), t)
            for p in pids:
                try:
                    for line in open(f"/proc/{p}/status"):
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
                    for line in open(f"/proc/{p}/smaps_rollup"):
                        if line.startswith("Pss:"):
                            pss += int(line.split()[1]) * 1024
                            break
                except OSError:
                    pass
            self.peak = max(self.peak, total)
            self.peak_pss = max(self.peak_pss, pss)
            self.stop.wait(0.1)


@dataclass(frozen=True)
class OnceResult:
    seconds: float  # start to exit
    cpu: float  # CPU seconds of the whole process tree (gateway, workers, Saxon children)
    peak_rss: int  # bytes, over the process tree
    summary: str  # the gateway's own summary line and per-state counts
    peak_pss: int = 0  # bytes, proportional set size over the process tree


def run_once(home: Path, workers: int, rules: bool) -> OnceResult:
    """`gateway run --once` on a home, timed from start to exit."""
    env = clean_env(home, GATEWAY_INTAKE_WORKERS=str(workers), GATEWAY_SFTP_ENABLED="false",
                    GATEWAY_VALIDATION_SCHEMATRON=str(rules).lower())
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--once"], env=env, cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = RssSampler(p.pid)
    sampler.start()
    out, _ = p.communicate()
    sampler.stop.set()
    sampler.join()
    if p.returncode != 0:
        raise SystemExit(f"gateway run --once failed:\n{out}")
    lines = [ln.strip() for ln in out.strip().splitlines()]
    return OnceResult(time.perf_counter() - t0, sampler.cpu_total, sampler.peak,
                      "; ".join(lines[:1] + [" ".join(lines[1:])]), sampler.peak_pss)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Service:
    """`gateway run` as a service (folder watcher, workers, SFTP server on
    `port`), its log in a file, its process tree's RSS sampled."""

    def __init__(self, home: Path, port: int, log: Path):
        self.home, self.port, self.log = home, port, log
        self._fh = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--sftp-port", str(port)], cwd=REPO,
            env=clean_env(home), stdout=self._fh, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)  # its own process group: `abort` ends its workers too
        self.rss = RssSampler(self.proc.pid)
        self.rss.start()

    def wait_listening(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise SystemExit(f"gateway run exited early:\n{self.log.read_text()[-3000:]}")
            if listening(self.port):
                return
            time.sleep(0.1)
        raise SystemExit(f"gateway run did not listen on {self.port} within {timeout:.0f} s")

    def abort(self) -> None:
        """After a failure: end the service, its workers and their children."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.rss.stop.set()
        self._fh.close()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        finally:
            self.rss.stop.set()
            self.rss.join()
            self._fh.close()
        if rc != 0:
            raise SystemExit(f"gateway run ended with {rc}:\n{self.log.read_text()[-3000:]}")


def report_files(reports_dir: Path) -> list[Path]:
    """The JSON reports (written after the XML ones) of a partner."""
    try:
        return [Path(e.path) for e in os.scandir(reports_dir) if e.name.endswith(".json")
                and not e.name.startswith(".")]
    except FileNotFoundError:
        return []


def wait_reports(reports_dir: Path, n: int, timeout: float, service: Service | None = None,
                 stall: float = 60) -> float:
    """Wait for `n` reports; return when the last one was written (its
    mtime, wall clock), so the polling interval does not count. Gives up
    after `timeout`, or after `stall` seconds without a new report."""
    end = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while True:
        found = report_files(reports_dir)
        if len(found) >= n:
            return max(p.stat().st_mtime for p in found)
        if service is not None and service.proc.poll() is not None:
            raise SystemExit(f"gateway run died:\n{service.log.read_text()[-3000:]}")
        now = time.monotonic()
        if len(found) != seen:
            seen, since = len(found), now
        if now > end or now - since > stall:
            log = f"\n{service.log.read_text()[-3000:]}" if service is not None else ""
            raise SystemExit(f"only {len(found)} of {n} reports in {reports_dir} after "
                             f"{timeout - (end - now):.0f} s{log}")
        time.sleep(0.05)


def states(reports_dir: Path) -> str:
    """Per-state counts of a partner's reports, e.g. '2000 IN_INTEGRE'."""
    c = Counter(json.loads(p.read_bytes())["state"] for p in report_files(reports_dir))
    return ", ".join(f"{n} {s}" for s, n in sorted(c.items()))


def stage_timer(datas: Sequence[Any]) -> tuple[dict[str, float], Callable[[str, Callable[[Any], Any]], None]]:
    """(costs, timed): `timed(name, fn)` runs fn on every sample and records
    milliseconds per file under `name`."""
    costs: dict[str, float] = {}

    def timed(name: str, fn: Callable[[Any], Any]) -> None:
        fn(datas[0])  # warm: first-call costs (imports, caches) are not per-file costs
        t0 = time.perf_counter()
        for d in datas:
            fn(d)
        costs[name] = (time.perf_counter() - t0) * 1000 / len(datas)

    return costs, timed


def print_costs(costs: dict[str, float], title: str = "per-stage cost (ms per file, in-process, on a sample):") -> None:
    print(f"  {title}")
    for name, ms in costs.items():
        print(f"    {name:<34} {ms:8.2f}")


@dataclass(frozen=True)
class Measure:
    """Files handled in a wall-clock time, and the CPU time it took."""

    files: int
    seconds: float
    cpu: float  # CPU seconds (the bare loop's process, or the gateway's process tree)

    @property
    def rate(self) -> float:
        return self.files / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.files


def timed_loop(datas: Sequence[Any], fns: Sequence[Callable[[Any], Any]]) -> Measure:
    """A bare loop doing every `fns` on each file, in this process."""
    c0, t0 = time.process_time(), time.perf_counter()
    for d in datas:
        for fn in fns:
            fn(d)
    return Measure(len(datas), time.perf_counter() - t0, time.process_time() - c0)


LABEL_WIDTH = 64


def show(kind: str, label: str, m: Measure, extra: str = "") -> None:
    """One measured line: files/s and CPU per file."""
    print(f"  {kind:<9} {label:<{LABEL_WIDTH}} {m.rate:7.0f} files/s {m.cpu_ms:7.1f} ms CPU/file{extra}")


def show_ratio(what: str, m: Measure, base: Measure, extra: str = "") -> None:
    print(f"  ratio     {what}: {m.rate / base.rate:.0%} of the files/s, {m.cpu_ms / base.cpu_ms:.1f}x the CPU "
          f"per file{extra}")


def mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB"

"""What every benchmark run shares: paths, clean environments, the files,
the gateway started as a batch (`run --once`) or as a service, peak RSS and
PSS of its process tree, waiting for reports, and per-stage timing."""
from __future__ import annotations

import json
import os
import signal
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

from sftp_support import listening  # noqa: E402

from gateway.core import config  # noqa: E402
from gateway.outputs import reports  # noqa: E402
from gateway.store import db  # noqa: E402
from gateway.pipeline.evaluate import evaluate_file  # noqa: E402

PARTNER = "BENCH"
XSD_CHECKS = "parse + XSD"
RULES_CHECKS = "parse + XSD + EN 16931 rules"


def checks(rules: bool) -> str:
    """What a run checks, as its headers say it."""
    return RULES_CHECKS if rules else XSD_CHECKS


def clean_env(home: Path, **settings: str) -> dict[str, str]:
    """This environment without any GATEWAY_* setting of the caller's, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_HOME"] = str(home)
    env["GATEWAY_INTAKE_OPEN_PARTNERS"] = "true"  # the bench's partner folder, never declared (else quarantined)
    env.update(settings)
    return env


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


def write_files(folder: Path, n: int, build: Callable[[int], bytes], suffix: str) -> list[Path]:
    """Files inv-000000<suffix>... with build(i) in them, already stable (old mtime)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"inv-{i:06d}{suffix}"
        p.write_bytes(build(i))
        age(p)
        paths.append(p)
    return paths


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: str | int) -> tuple[int, float]:
    """(parent pid, CPU seconds user + system) from one read of /proc/<pid>/stat."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # the name may hold spaces
    return int(f[1]), (int(f[11]) + int(f[12])) / _TICK


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of a process and each of its descendants, from /proc."""
    kids: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid, cpu[int(d)] = _stat(d)
            except (OSError, IndexError, ValueError):  # ended meanwhile
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        if p in cpu:
            out[p] = cpu[p]
        todo.extend(kids.get(p, []))
    return out


def memory_of(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of one process, from /proc/<pid>/smaps_rollup; (0, 0) once it has ended."""
    rss = pss = 0
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
                break  # Pss comes after Rss
    except OSError:
        pass
    return rss, pss


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds a process tree spent between two `tree_cpu` readings
    (a process started meanwhile counts whole)."""
    return sum(t - before.get(p, 0.0) for p, t in after.items())


class RssSampler(threading.Thread):
    """Peak RSS and PSS summed over a process and its descendants, and the CPU
    time each of them was last seen with (from /proc, every 0.1 s)."""

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
            rss = pss = 0
            for p, t in tree_cpu(self.pid).items():
                self.cpu[p] = max(self.cpu.get(p, 0.0), t)
                r, s = memory_of(p)
                rss, pss = rss + r, pss + s
            self.peak = max(self.peak, rss)
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
    p = subprocess.Popen([sys.executable, "-m", "gateway.ops.cli", "run", "--once"], env=env, cwd=REPO,
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


@dataclass(frozen=True)
class Baseline:
    label: str
    short: str  # in the ratio line
    measure: Measure


def compare_once(files: list[Path], home: Path, workers: int, rules: bool, baselines: Sequence[Baseline]) -> Measure:
    """`gateway run --once` on `files` dropped in `home`, printed beside the
    baselines (measured before, on the same files): files/s, CPU, the ratios,
    and the peak memory of the gateway's process tree."""
    link_into_inbox(files, home)
    res = run_once(home, workers, rules)
    gw = Measure(len(files), res.seconds, res.cpu)
    for b in baselines:
        show("baseline", b.label, b.measure)
    show("gateway", f"run --once, {workers} workers, start to exit:", gw, f"  ({res.seconds:.1f} s; {res.summary})")
    for b in baselines:
        show_ratio(f"gateway / {b.short}", gw, b.measure)
    print(f"  memory    peak RSS {mb(res.peak_rss)}, PSS {mb(res.peak_pss)} over the gateway's process tree")
    return gw


class Service:
    """`gateway run` as a service (folder watcher, workers, SFTP server on
    `port`), its log in a file, its process tree's RSS sampled."""

    def __init__(self, home: Path, port: int, log: Path):
        self.home, self.port, self.log = home, port, log
        self._fh = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.ops.cli", "run", "--sftp-port", str(port)], cwd=REPO,
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


STALL_SECONDS = 60  # a service that writes no report for this long is stuck


def wait_reports(reports_dir: Path, n: int, timeout: float, service: Service) -> float:
    """Wait for `n` reports of a service; return when the last one was
    written (its mtime, wall clock), so the polling interval does not count.
    Gives up after `timeout`, or after STALL_SECONDS without a new report."""
    end = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while True:
        found = report_files(reports_dir)
        if len(found) >= n:
            return max(p.stat().st_mtime for p in found)
        if service.proc.poll() is not None:
            raise SystemExit(f"gateway run died:\n{service.log.read_text()[-3000:]}")
        now = time.monotonic()
        if len(found) != seen:
            seen, since = len(found), now
        if now > end or now - since > STALL_SECONDS:
            raise SystemExit(f"only {len(found)} of {n} reports in {reports_dir} after "
                             f"{timeout - (end - now):.0f} s\n{service.log.read_text()[-3000:]}")
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


class InProcessRules:
    """The bare way to run the EN 16931 rules: Saxon in this process, same rule sets."""

    def __init__(self, settings: config.Settings):
        from saxonche import PySaxonProcessor

        from gateway.rules.rulesets import find_ruleset

        self.proc = PySaxonProcessor(license=False)
        xslt = self.proc.new_xslt30_processor()
        self.exe = {k: xslt.compile_stylesheet(stylesheet_file=str(find_ruleset(k, settings).path))
                    for k in ("ubl", "cii")}

    def check(self, kind: str, data: bytes) -> str:
        node = self.proc.parse_xml(xml_text=data.decode("utf-8"))
        return self.exe[kind].transform_to_string(xdm_node=node)


_rules: dict[tuple, InProcessRules] = {}


def in_process_rules(settings: config.Settings) -> InProcessRules:
    """One Saxon processor for the whole bench process (compiling is slow)."""
    key = tuple(settings.schema_dirs)
    if key not in _rules:
        _rules[key] = InProcessRules(settings)
    return _rules[key]


def write_report_cost(settings: config.Settings, sample: bytes, name: str):  # noqa: ANN201
    """(write, folder): write(d) writes one flow's JSON + XML report of `sample`, as a worker does."""
    out = settings.home / "stage-reports"
    ev = evaluate_file(sample, name, settings)

    def write(d: bytes) -> None:
        now = db.utcnow()
        rep = reports.report_dict(flow_id=f"F{id(d)}", partner=PARTNER, file_name=name, sha256="0" * 64,
                                  size=len(d), received_at=now, fmt=ev.format.value, state=ev.state,
                                  verdicts=ev.verdicts, file_findings=(), duplicate_of=None, processed_at=now)
        reports.write_flow_report(out, rep)

    return write, out


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

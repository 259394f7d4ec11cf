"""Issue #17's memory run: `python bench/memory.py [--waiting 20000] [--few 1000] [--lines 2]`.

`gateway run --once` with the default configuration (rules on, 2 workers) on
a home with M files waiting, then on one with m waiting: the peak PSS of the
whole process tree (every descendant's /proc/<pid>/smaps_rollup summed, every
0.1 s; PSS splits shared pages between the processes that share them), its
split by process at the peak, and the ratio of the two peaks. Targets: under
500 MB with 20,000 waiting, within 10% of the peak with 1,000.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import REPO, clean_env, link_into_inbox, mb, memory_of, tree_cpu  # noqa: E402
from xml_bench import generate  # noqa: E402

from gateway.core import config  # noqa: E402


def role(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "ended"
    if b"schematron_worker" in cmd:
        return "Saxon child"
    if b"forkserver" in cmd:  # the fork server, or a worker it forked
        try:
            parent = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            up = Path(f"/proc/{parent}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            up = b""
        return "worker" if b"forkserver" in up else "fork server"
    if b"resource_tracker" in cmd:
        return "resource tracker"
    return "main" if b"gateway.ops.cli" in cmd else "worker"


class PeakPss(threading.Thread):
    """Peak PSS of a process tree, and the split by process at that peak."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stop, self.peak, self.split, self.cpu = pid, threading.Event(), 0, {}, {}

    def run(self) -> None:
        while not self.stop.is_set():
            split, total = {}, 0
            for p, t in tree_cpu(self.pid).items():
                self.cpu[p] = max(self.cpu.get(p, 0.0), t)
                pss = memory_of(p)[1]
                split[p] = pss
                total += pss
            if total > self.peak:
                self.peak, self.split = total, {p: (role(p), s) for p, s in split.items()}
            self.stop.wait(0.1)


def run(home: Path, files: list[Path]) -> tuple[PeakPss, float]:
    config.init_home(home)
    link_into_inbox(files, home)
    env = clean_env(home, GATEWAY_SFTP_ENABLED="false")
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "gateway.ops.cli", "run", "--once"], env=env, cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    s = PeakPss(p.pid)
    s.start()
    out, _ = p.communicate()
    s.stop.set()
    s.join()
    if p.returncode != 0:
        raise SystemExit(f"gateway run --once failed:\n{out}")
    print(f"  {out.strip().splitlines()[0]}")
    return s, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--waiting", type=int, default=20000, help="files waiting in the big run (default 20000)")
    ap.add_argument("--few", type=int, default=1000, help="files waiting in the small run (default 1000)")
    ap.add_argument("--lines", type=int, default=None, help="lines per invoice (default 2)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out-memory")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    shutil.rmtree(args.out, ignore_errors=True)
    files = generate(args.out / "files", args.waiting, lines=args.lines)
    peaks = {}
    try:
        for n in (args.few, args.waiting):
            print(f"[{n} files waiting, rules on, the default configuration; load {os.getloadavg()[0]:.1f}]")
            s, secs = run(args.out / f"home-{n}", files[:n])
            by_role: dict[str, list[int]] = {}
            for r, pss in s.split.values():
                by_role.setdefault(r, []).append(pss)
            split = ", ".join(f"{r} {' + '.join(mb(x) for x in v)}" for r, v in sorted(by_role.items()))
            print(f"  peak PSS {mb(s.peak)} over {len(s.split)} processes ({split}); "
                  f"{n / secs:.0f} files/s, {1000 * sum(s.cpu.values()) / n:.1f} ms CPU per file")
            peaks[n] = s.peak
            shutil.rmtree(args.out / f"home-{n}", ignore_errors=True)
        big, few = peaks[args.waiting], peaks[args.few]
        print(f"  peak PSS with {args.waiting} waiting: {mb(big)} (target < 500 MB), "
              f"{big / few - 1:+.0%} against {args.few} waiting (target within 10%)")
    finally:
        shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()

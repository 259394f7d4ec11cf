"""Issue #17's cold start run: `python bench/coldstart.py [--repeat 3] [--small 600] [--large 5000]`.

- `gateway validate` of one UBL invoice (rules on): wall time and CPU
  (the command and its Saxon child), start to exit;
- `gateway run --once` (default configuration) on a batch of `--small`
  files and on one of `--large`, same kind of files: wall and CPU per file,
  and how much more a file of the small batch costs (target: within 15%).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import REPO, clean_env, link_into_inbox, run_once  # noqa: E402
from xml_bench import generate  # noqa: E402

from gateway.core import config  # noqa: E402
from invoice_support import ubl_invoice  # noqa: E402


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def validate_one(out: Path, repeat: int) -> None:
    one = out / "one.xml"
    one.write_bytes(ubl_invoice())
    home = out / "home-validate"
    config.init_home(home)
    for i in range(repeat):
        c0, t0 = children_cpu(), time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "gateway.ops.cli", "validate", str(one)], cwd=REPO,
                           env=clean_env(home), capture_output=True, text=True)
        wall, cpu = time.perf_counter() - t0, children_cpu() - c0
        if p.returncode != 0:
            raise SystemExit(f"gateway validate failed:\n{p.stdout}{p.stderr}")
        print(f"  gateway validate, one UBL: {wall:.2f} s wall, {cpu:.2f} s CPU (target < 3 s wall); "
              f"load {os.getloadavg()[0]:.1f}")


def batches(out: Path, small: int, large: int) -> None:
    files = generate(out / "files", large)
    per = {}
    for n in (small, large):
        home = out / f"home-{n}"
        config.init_home(home)
        link_into_inbox(files[:n], home)
        c0 = children_cpu()
        res = run_once(home, 2, True)
        cpu = max(res.cpu, children_cpu() - c0)
        per[n] = (res.seconds * 1000 / n, cpu * 1000 / n)
        print(f"  run --once, {n} files: {res.seconds:.1f} s, {per[n][0]:.1f} ms wall and {per[n][1]:.1f} ms CPU "
              f"per file; load {os.getloadavg()[0]:.1f}")
        shutil.rmtree(home, ignore_errors=True)
    print(f"  a file of the {small} batch costs {per[small][0] / per[large][0] - 1:+.0%} wall, "
          f"{per[small][1] / per[large][1] - 1:+.0%} CPU against the {large} batch (target within 15%)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="validate runs (default 3)")
    ap.add_argument("--small", type=int, default=600)
    ap.add_argument("--large", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out-coldstart")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    try:
        validate_one(args.out, args.repeat)
        if args.large:
            batches(args.out, args.small, args.large)
    finally:
        shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()

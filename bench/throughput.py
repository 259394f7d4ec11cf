"""Issue #17's throughput run: `python bench/throughput.py [--files N] [--lines 2,100] [--procs P] [--profile]`.

For each invoice size (half UBL, half CII, every file distinct), in the same run:

- the bare loop: locked-down lxml parse + XSD + the CEN EN 16931 XSLT (compiled
  once per process, not timed), in one process per core (--procs), the files
  split between them;
- `gateway run --once` on the same files in a fresh home, the default
  configuration (rules on, 2 workers, SQLite), start to exit, start-up included.

Printed: both rates, their ratio, CPU ms per file (process CPU, children
included: the gateway's whole tree, Saxon children too), and per stage: the
real `run --once` code in one process (workers = 0) with a CPU clock around
its stage functions, plus the CPU of the rule engine's Saxon child if there
is one. `--profile` adds cProfile's top functions (own time) for that run.
Timings on a shared machine are noisy: read the ratio, measured side by side.
"""
from __future__ import annotations

import argparse
import cProfile
import multiprocessing as mp
import os
import pstats
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import REPO, Measure, link_into_inbox, mb, run_once, show, show_ratio  # noqa: E402
from gateway_stages import StageClock, STAGES, OTHER  # noqa: E402
from xml_bench import generate  # noqa: E402

from gateway.core import config  # noqa: E402


# --- the bare loop ---------------------------------------------------------------------
def _bare_worker(paths: list[str], schema_dirs: tuple, home: str, barrier, out) -> None:  # noqa: ANN001
    from saxonche import PySaxonProcessor

    from gateway.core import xmlsafe
    from gateway.core.records import Format
    from gateway.pipeline import detect
    from gateway.rules import xsd
    from gateway.rules.rulesets import find_ruleset

    settings = config.load(home, create=False)
    proc = PySaxonProcessor(license=False)
    xslt = proc.new_xslt30_processor()
    exe = {k: xslt.compile_stylesheet(stylesheet_file=str(find_ruleset(k, settings).path)) for k in ("ubl", "cii")}
    datas = [Path(p).read_bytes() for p in paths[:2]]
    for d in datas:  # warm: XSD loaded, first transform done
        tree, _ = xmlsafe.parse(d)
        xsd.validate(tree, detect.format_of_root(tree.getroot()), schema_dirs, explain=False)
    barrier.wait()
    c0, t0 = time.process_time(), time.perf_counter()
    for p in paths:
        data = Path(p).read_bytes()
        tree, _ = xmlsafe.parse(data)
        fmt = detect.format_of_root(tree.getroot())
        xsd.validate(tree, fmt, schema_dirs, explain=False)
        node = proc.parse_xml(xml_text=data.decode("utf-8"))
        exe["cii" if fmt is Format.CII else "ubl"].transform_to_string(xdm_node=node)
    out.put((time.process_time() - c0, t0, time.perf_counter()))


def bare_loop(files: list[Path], home: Path, procs: int) -> Measure:
    """Parse + XSD + CEN rules in `procs` processes, files dealt out in turn; from the common start to the last end."""
    settings = config.load(home)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    ps = [ctx.Process(target=_bare_worker, args=([str(f) for f in files[i::procs]], tuple(settings.schema_dirs),
                                                   str(home), barrier, out)) for i in range(procs)]
    for p in ps:
        p.start()
    res = [out.get() for _ in ps]
    for p in ps:
        p.join()
    return Measure(len(files), max(r[2] for r in res) - min(r[1] for r in res), sum(r[0] for r in res))


# --- the gateway ---------------------------------------------------------------------------
def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def gateway_once(files: list[Path], home: Path, workers: int) -> tuple[Measure, str]:
    config.init_home(home)
    link_into_inbox(files, home)
    c0 = children_cpu()
    res = run_once(home, workers, True)
    # every process of the tree is waited for by its parent, so the rusage of
    # our children holds them all; the sampler's figure misses a last 0.1 s each
    cpu = max(children_cpu() - c0, res.cpu)
    return Measure(len(files), res.seconds, cpu), (f"peak RSS {mb(res.peak_rss)}, PSS {mb(res.peak_pss)}; "
                                                   f"{res.summary}")


def _read_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


RULES_STAGE = "EN 16931 rules (gateway side)"
SAXON = "EN 16931 rules: Saxon child process"


def stage_cpu(files: list[Path], home: Path, profile: bool) -> dict[str, float]:
    """CPU ms per file for each stage of the real run --once code in this process (workers = 0), rules on."""
    from gateway.rules import schematron
    from gateway.runtime import service, worker

    settings = config.load(home, workers=0, sftp_enabled=False, open_partners=True)
    worker.settle_for_work()
    link_into_inbox(files, home)
    clock = StageClock(time.process_time)
    saved = []
    for name, owner, attr in ((*s,) for s in STAGES):
        fn = getattr(owner, attr)
        saved.append((owner, attr, fn))
        setattr(owner, attr, clock.wrap(name, fn))
    eng = schematron.shared_engine(settings)
    saved.append((eng, "check", eng.check))
    eng.check = clock.wrap(RULES_STAGE, eng.check)
    prof = cProfile.Profile(time.process_time) if profile else None
    try:
        c0 = time.process_time()
        if prof:
            prof.enable()
        summary = service.Gateway(settings, once=True).run()
        if prof:
            prof.disable()
        total = time.process_time() - c0
        saxon = _read_cpu(getattr(eng, "pid", None))
    finally:
        for owner, attr, fn in reversed(saved):
            setattr(owner, attr, fn)
        eng.close()
    n = summary.processed or 1
    names = [s[0] for s in STAGES] + [RULES_STAGE]
    costs = {name: clock.spent[name] * 1000 / n for name in dict.fromkeys(names)}
    costs[OTHER] = max(0.0, total * 1000 / n - sum(costs.values()))
    costs["all, in this process"] = total * 1000 / n
    costs[SAXON] = saxon * 1000 / n
    if prof:
        st = pstats.Stats(prof)
        st.sort_stats("tottime").print_stats(45)
    return costs


def one_size(out: Path, n: int, lines: int, procs: int, workers: int, profile: bool) -> None:
    files = generate(out / f"files-{lines}", n, lines=None if lines == 2 else lines)
    print(f"[{n} invoices of {lines} lines, UBL and CII, about {files[0].stat().st_size // 1024} KB each; "
          f"load average {os.getloadavg()[0]:.1f} at the start]")
    base = bare_loop(files, out / f"home-bare-{lines}", procs)
    gw, extra = gateway_once(files, out / f"home-gw-{lines}", workers)
    show("baseline", f"bare loop, parse + XSD + CEN rules, {procs} processes:", base)
    show("gateway", f"run --once, default configuration ({workers} workers), start to exit:", gw,
         f"  ({gw.seconds:.1f} s)")
    show_ratio("gateway / bare loop", gw, base)
    print(f"  gateway   {extra}")
    sample = files[: min(len(files), 600 if lines <= 10 else 200)]
    costs = stage_cpu(sample, out / f"home-stages-{lines}", profile)
    print(f"  CPU ms per file per stage: the gateway in one process, {len(sample)} files, rules on "
          f"(bare loop: {base.cpu_ms:.2f} ms CPU per file in all)")
    for name, ms in costs.items():
        print(f"    {name:<44} {ms:8.2f}")
    print(f"  (load average {os.getloadavg()[0]:.1f} at the end)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000, help="2-line invoices (default 2000)")
    ap.add_argument("--files-long", type=int, default=400, help="100-line invoices (default 400)")
    ap.add_argument("--lines", default="2,100", help="invoice sizes to run, comma-separated (default 2,100)")
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 2, help="bare loop processes (default: cores)")
    ap.add_argument("--workers", type=int, default=2, help="gateway workers (default 2, the default configuration)")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top functions of the stage run")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out-throughput")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    try:
        for lines in (int(x) for x in args.lines.split(",")):
            one_size(args.out, args.files if lines <= 10 else args.files_long, lines, args.procs, args.workers,
                     args.profile)
    finally:
        if not args.keep:
            shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()

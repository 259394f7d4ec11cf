"""Throughput benchmark: `python bench/run.py [--files N] [--waiting M]`.

In one run, on the same generated invoices (mixed UBL and CII):
1. baseline: a bare loop that parses (locked-down lxml) and XSD-validates,
   plus, if enabled, the EN 16931 rules, in one process;
2. the gateway: the files dropped in an inbox and `gateway run --once`
   (claim, archive, detect, validate, report, store), timed from start to exit;
3. per-stage cost of the gateway's stages, measured in-process on a sample;
4. peak memory (RSS summed over the gateway's process tree) with M files waiting.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from invoice_support import cii_invoice, ubl_invoice  # noqa: E402

from gateway import config, detect, reports, wiring, xmlsafe, xsd  # noqa: E402
from gateway.pipeline import evaluate_file  # noqa: E402
from gateway.records import Format  # noqa: E402


def generate(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ubl = [ubl_invoice(number=f"B{i:07d}") for i in range(min(n, 50))]
    cii = [cii_invoice(number=f"C{i:07d}") for i in range(min(n, 50))]
    paths = []
    old = time.time() - 60
    for i in range(n):
        src = ubl if i % 2 == 0 else cii
        # vary the number so every file is distinct bytes (no duplicate flows)
        data = src[i % len(src)].replace(b"B000000" if i % 2 == 0 else b"C000000", f"{i:07d}"[:7].encode(), 1)
        p = folder / f"inv-{i:06d}.xml"
        p.write_bytes(data)
        os.utime(p, (old, old))
        paths.append(p)
    return paths


class InProcessRules:
    """The bare way to run the EN 16931 rules: Saxon in this process, same rule sets."""

    def __init__(self, settings):  # noqa: ANN001
        from saxonche import PySaxonProcessor

        from gateway.rulesets import find_ruleset

        self.proc = PySaxonProcessor(license=False)
        xslt = self.proc.new_xslt30_processor()
        self.exe = {k: xslt.compile_stylesheet(stylesheet_file=str(find_ruleset(k, settings).path))
                    for k in ("ubl", "cii")}

    def check(self, kind: str, data: bytes) -> str:
        node = self.proc.parse_xml(xml_text=data.decode("utf-8"))
        return self.exe[kind].transform_to_string(xdm_node=node)


def baseline(paths: list[Path], settings) -> float:  # noqa: ANN001
    """Bare loop: read, parse, XSD (and rules when the gateway runs them)."""
    rules = InProcessRules(settings) if settings.schematron else None
    t0 = time.perf_counter()
    for p in paths:
        data = p.read_bytes()
        tree, _ = xmlsafe.parse(data)
        fmt = detect.format_of_root(tree.getroot())
        xsd.validate(tree, fmt, settings.schema_dirs, explain=False)
        if rules is not None:
            rules.check("ubl" if fmt is not Format.CII else "cii", data)
    return len(paths) / (time.perf_counter() - t0)


class RssSampler(threading.Thread):
    """Peak RSS summed over a process and its descendants (from /proc)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def _tree(self) -> list[int]:
        kids: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                kids.setdefault(ppid, []).append(int(d))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(kids.get(p, []))
        return out

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for p in self._tree():
                try:
                    for line in open(f"/proc/{p}/status"):
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
                except OSError:
                    pass
            self.peak = max(self.peak, total)
            self.stop.wait(0.1)


def run_gateway(home: Path, workers: int, rules: bool) -> tuple[float, int, str]:
    env = dict(os.environ, GATEWAY_HOME=str(home), GATEWAY_INTAKE_WORKERS=str(workers),
               GATEWAY_SFTP_ENABLED="false", GATEWAY_VALIDATION_SCHEMATRON=str(rules).lower())
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--once"], env=env, cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = RssSampler(p.pid)
    sampler.start()
    out, _ = p.communicate()
    sampler.stop.set()
    sampler.join()
    if p.returncode != 0:
        raise SystemExit(f"gateway run failed:\n{out}")
    return time.perf_counter() - t0, sampler.peak, out.strip().splitlines()[0] if out.strip() else ""


def stage_costs(paths: list[Path], settings) -> dict[str, float]:  # noqa: ANN001
    """Milliseconds per file for each stage, in-process, on a sample."""
    sample = paths[:400]
    datas = [p.read_bytes() for p in sample]
    cost: dict[str, float] = {}

    def timed(name: str, fn) -> None:  # noqa: ANN001
        t0 = time.perf_counter()
        for d in datas:
            fn(d)
        cost[name] = (time.perf_counter() - t0) * 1000 / len(datas)

    trees = {}
    timed("detect", detect.detect)
    timed("parse", lambda d: trees.__setitem__(id(d), xmlsafe.parse(d)[0]))
    timed("xsd", lambda d: xsd.validate(trees[id(d)], detect.format_of_root(trees[id(d)].getroot()),
                                        settings.schema_dirs, explain=False))
    from gateway import schematron

    eng = schematron.shared_engine(settings)
    eng.check("ubl", datas[0])  # warm: start Saxon, compile
    eng.check("cii", datas[1])
    timed("EN 16931 rules", lambda d: eng.check("cii" if detect.detect_xml(d) is Format.CII else "ubl", d))
    timed("whole evaluation", lambda d: evaluate_file(d, "x.xml", settings))
    out = settings.home / "stage-reports"
    ev = evaluate_file(datas[0], "x.xml", settings)

    def write_report(d: bytes) -> None:
        import datetime as dt

        now = dt.datetime.now(dt.timezone.utc)
        rep = reports.report_dict(flow_id=f"F{id(d)}", partner="BENCH", file_name="x.xml", sha256="0" * 64,
                                  size=len(d), received_at=now, fmt=ev.format.value, state=ev.state,
                                  verdicts=ev.verdicts, file_findings=(), duplicate_of=None, processed_at=now)
        reports.write_flow_report(out, rep)

    timed("report (json+xml)", write_report)
    shutil.rmtree(out, ignore_errors=True)
    return cost


def compare(files: list[Path], out: Path, workers: int, rules: bool) -> None:
    home = out / f"home-{'rules' if rules else 'xsd'}"
    config.init_home(home)
    settings = replace(config.load(home), schematron=rules)
    base = baseline(files, settings)
    label = "parse + XSD + EN 16931 rules" if rules else "parse + XSD"
    print(f"[{label}]")
    print(f"  baseline  bare loop, 1 process:             {base:8.0f} files/s")
    inbox = home / "inbox" / "BENCH"
    inbox.mkdir(parents=True, exist_ok=True)
    for f in files:
        os.link(f, inbox / f.name)
    secs, peak, line = run_gateway(home, workers, rules)
    rate = len(files) / secs
    print(f"  gateway   run --once, {workers} workers, start to exit: {rate:8.0f} files/s ({secs:.1f} s; {line})")
    print(f"  ratio     gateway / baseline: {rate / base:.0%}   peak RSS {peak / 2**20:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--waiting", type=int, default=20000, help="files waiting for the memory run (0 = skip)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = ap.parse_args()

    shutil.rmtree(args.out, ignore_errors=True)
    files = generate(args.out / "files", args.files)
    print(f"generated {len(files)} invoices (UBL and CII, about {files[0].stat().st_size // 1024} KB each)")
    for rules in (False, True):
        compare(files, args.out, args.workers, rules)

    settings = config.load(args.out / "home-rules")
    wiring.install(settings)
    print("per-stage cost (ms per file, in-process, on a sample):")
    for name, ms in stage_costs(files, settings).items():
        print(f"  {name:<22} {ms:7.3f}")

    if args.waiting:
        mfiles = generate(args.out / "files-waiting", args.waiting)
        for rules in (False, True):
            mhome = args.out / f"home-waiting-{rules}"
            config.init_home(mhome)
            minbox = mhome / "inbox" / "BENCH"
            minbox.mkdir(parents=True, exist_ok=True)
            for f in mfiles:
                os.link(f, minbox / f.name)
            secs, peak, line = run_gateway(mhome, args.workers, rules)
            print(f"memory    {args.waiting} files waiting ({'with' if rules else 'without'} rules): peak RSS "
                  f"{peak / 2**20:.0f} MB over the process tree ({args.waiting / secs:.0f} files/s)")
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()

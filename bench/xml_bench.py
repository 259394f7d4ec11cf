"""The XML run: UBL and CII invoices through `gateway run --once` beside a
bare parse + XSD (+ EN 16931 rules) loop; per-stage cost; peak memory with
many files waiting."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

from benchlib import Measure, link_into_inbox, mb, print_costs, run_once, show, show_ratio, stage_timer, timed_loop
from gateway_stages import files_written_cost, gateway_stage_costs

from invoice_support import cii_invoice, ubl_invoice

from gateway import config, detect, reports, schematron, wiring, xmlsafe, xsd
from gateway.pipeline import evaluate_file
from gateway.records import Format


SLOT = b"@@@@@@@"  # in the invoice number of the templates; replaced by the file's index


def generate(folder: Path, n: int, prefix: str = "") -> list[Path]:
    """n invoices, UBL and CII in turn, with an old mtime, every one with its
    own invoice number, so distinct bytes (the gateway processes a repeated
    file as a DOUBLON, without validating it). `prefix` makes another set of
    the same shape."""
    folder.mkdir(parents=True, exist_ok=True)
    templates = (ubl_invoice(number=f"{prefix}B{SLOT.decode()}"), cii_invoice(number=f"{prefix}C{SLOT.decode()}"))
    paths = []
    old = time.time() - 60
    for i in range(n):
        data = templates[i % 2].replace(SLOT, f"{i:07d}".encode())
        p = folder / f"inv-{i:06d}.xml"
        p.write_bytes(data)
        os.utime(p, (old, old))
        paths.append(p)
    return paths


class InProcessRules:
    """The bare way to run the EN 16931 rules: Saxon in this process, same rule sets."""

    def __init__(self, settings: config.Settings):
        from saxonche import PySaxonProcessor

        from gateway.rulesets import find_ruleset

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


def baseline(paths: list[Path], settings: config.Settings) -> Measure:
    """Bare loop: read, parse, XSD (and rules when the gateway runs them)."""
    rules = in_process_rules(settings) if settings.schematron else None

    def one(p: Path) -> None:
        data = p.read_bytes()
        tree, _ = xmlsafe.parse(data)
        fmt = detect.format_of_root(tree.getroot())
        xsd.validate(tree, fmt, settings.schema_dirs, explain=False)
        if rules is not None:
            rules.check("ubl" if fmt is not Format.CII else "cii", data)

    return timed_loop(paths, [one])


def write_report_cost(settings: config.Settings, sample: bytes, name: str):  # noqa: ANN201
    """A function that writes one flow's JSON + XML report, as a worker does."""
    out = settings.home / "stage-reports"
    ev = evaluate_file(sample, name, settings)

    def write(d: bytes) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        rep = reports.report_dict(flow_id=f"F{id(d)}", partner="BENCH", file_name=name, sha256="0" * 64,
                                  size=len(d), received_at=now, fmt=ev.format.value, state=ev.state,
                                  verdicts=ev.verdicts, file_findings=(), duplicate_of=None, processed_at=now)
        reports.write_flow_report(out, rep)

    return write, out


def stage_costs(paths: list[Path], settings: config.Settings) -> dict[str, float]:
    """Milliseconds per file for each stage, in-process, on a sample."""
    datas = [p.read_bytes() for p in paths[:400]]
    cost, timed = stage_timer(datas)
    trees = {}
    timed("detect", detect.detect)
    timed("parse", lambda d: trees.__setitem__(id(d), xmlsafe.parse(d)[0]))
    timed("xsd", lambda d: xsd.validate(trees[id(d)], detect.format_of_root(trees[id(d)].getroot()),
                                        settings.schema_dirs, explain=False))
    eng = schematron.shared_engine(settings)
    eng.check("ubl", datas[0])  # warm: start Saxon, compile
    eng.check("cii", datas[1])
    timed("EN 16931 rules", lambda d: eng.check("cii" if detect.detect_xml(d) is Format.CII else "ubl", d))
    timed("whole evaluation", lambda d: evaluate_file(d, "x.xml", settings))
    write, out = write_report_cost(settings, datas[0], "x.xml")
    timed("report (json+xml)", write)
    shutil.rmtree(out, ignore_errors=True)
    return cost


def compare(files: list[Path], out: Path, workers: int, rules: bool) -> Measure:
    home = out / f"home-{'rules' if rules else 'xsd'}"
    config.init_home(home)
    settings = replace(config.load(home), schematron=rules)
    base = baseline(files, settings)
    print(f"[XML, {'parse + XSD + EN 16931 rules' if rules else 'parse + XSD'}]")
    show("baseline", "bare loop, 1 process:", base)
    link_into_inbox(files, home)
    res = run_once(home, workers, rules)
    gw = Measure(len(files), res.seconds, res.cpu)
    show("gateway", f"run --once, {workers} workers, start to exit:", gw, f"  ({res.seconds:.1f} s; {res.summary})")
    show_ratio("gateway / baseline", gw, base, f"   peak RSS {mb(res.peak_rss)} (PSS {mb(res.peak_pss)})")
    return base


def run(out: Path, n: int, waiting: int, workers: int) -> None:
    out = out / "xml"
    files = generate(out / "files", n)
    print(f"generated {len(files)} invoices (UBL and CII, about {files[0].stat().st_size // 1024} KB each)")
    base_ms = 0.0
    for rules in (False, True):
        base = compare(files, out, workers, rules)
        if not rules:
            base_ms = base.seconds * 1000 / base.files

    settings = config.load(out / "home-rules")
    wiring.install(settings)
    print_costs(stage_costs(files, settings))

    sample = files[:2000]
    costs, whole = gateway_stage_costs(sample, out / "home-stages")
    print_costs(costs, f"the gateway's own stages, XSD only, {len(sample)} files in one process "
                       f"(ms per file; {whole:.2f} in all, bare loop {base_ms:.2f}):")
    print(f"  this disk: {files_written_cost(out / 'probe'):.0f} us to create one small file (temporary "
          f"name, then rename); a routed invoice writes 8")

    if waiting:
        mfiles = generate(out / "files-waiting", waiting)
        for rules in (False, True):
            mhome = out / f"home-waiting-{rules}"
            config.init_home(mhome)
            link_into_inbox(mfiles, mhome)
            res = run_once(mhome, workers, rules)
            print(f"  memory    {waiting} files waiting ({'with' if rules else 'without'} rules): peak RSS "
                  f"{mb(res.peak_rss)}, PSS {mb(res.peak_pss)} over the process tree "
                  f"({waiting / res.seconds:.0f} files/s)")
        shutil.rmtree(out / "files-waiting", ignore_errors=True)

"""The XML run: UBL and CII invoices through `gateway run --once` beside a
bare parse + XSD (+ EN 16931 rules) loop; per-stage cost; peak memory with
many files waiting."""
from __future__ import annotations

import shutil
from pathlib import Path

from benchlib import (Baseline, Measure, checks, compare_once, in_process_rules, link_into_inbox, mb,
                      print_costs, run_once, stage_timer, timed_loop, write_files, write_report_cost)
from gateway_stages import files_written_cost, gateway_stage_costs

from invoice_support import cii_invoice, ubl_invoice

from gateway.core import config
from gateway.pipeline import detect
from gateway.rules import schematron
from gateway.core import xmlsafe
from gateway.rules import xsd
from gateway.pipeline.evaluate import evaluate_file
from gateway.core.records import Format


SLOT = b"@@@@@@@"  # in the invoice number of the templates; replaced by the file's index


def invoice_lines(n: int | None) -> dict:
    """The builders' keyword for n invoice lines (None: their two default lines)."""
    if n is None:
        return {}
    return {"lines": tuple((f"Article {i}", 1 + i % 7, f"{3 + i % 40}.50") for i in range(n))}


def generate(folder: Path, n: int, prefix: str = "", lines: int | None = None) -> list[Path]:
    """n invoices, UBL and CII in turn, with an old mtime, every one with its
    own invoice number, so distinct bytes (the gateway processes a repeated
    file as a DOUBLON, without validating it). `prefix` makes another set of
    the same shape; `lines`, invoices of that many lines."""
    kw = invoice_lines(lines)
    templates = (ubl_invoice(number=f"{prefix}B{SLOT.decode()}", **kw),
                 cii_invoice(number=f"{prefix}C{SLOT.decode()}", **kw))
    return write_files(folder, n, lambda i: templates[i % 2].replace(SLOT, f"{i:07d}".encode()), ".xml")


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
    """The bare loop, then the gateway on the same files in a fresh home."""
    settings = config.load(out / f"home-{'rules' if rules else 'xsd'}", schematron=rules)
    base = baseline(files, settings)
    print(f"[XML, {checks(rules)}]")
    compare_once(files, settings.home, workers, rules, [Baseline("bare loop, 1 process:", "the bare loop", base)])
    return base


def run(out: Path, n: int, waiting: int, workers: int, lines: int | None = None) -> None:
    out = out / "xml"
    files = generate(out / "files", n, lines=lines)
    print(f"generated {len(files)} invoices (UBL and CII, {lines or 2} lines, about "
          f"{files[0].stat().st_size // 1024} KB each)")
    base_ms = 0.0
    for rules in (False, True):
        base = compare(files, out, workers, rules)
        if not rules:
            base_ms = base.seconds * 1000 / base.files

    settings = config.load(out / "home-rules")
    print_costs(stage_costs(files, settings))

    sample = files[:2000]
    stages = gateway_stage_costs(sample, out / "home-stages")
    print_costs(stages.costs, f"the gateway's own stages, XSD only, {len(sample)} files in one process "
                              f"(ms per file; {stages.whole_ms:.2f} in all, bare loop {base_ms:.2f}):")
    print(f"  this disk: {files_written_cost(out / 'probe'):.0f} us to create one small file (temporary "
          f"name, then rename); a flow wrote {stages.files_per_flow:.1f} on average above")

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

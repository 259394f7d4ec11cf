"""Throughput benchmarks: `python bench/run.py [--all | --run NAME ...] [sizes]`.

Every run measures the gateway beside a baseline in the same run, on the same
files built in code, and prints files/s, the ratio, per-stage cost and the peak
RSS and PSS of the gateway's process tree. Runs (default: xml):

- xml: UBL and CII invoices, `gateway run --once` beside a bare loop (locked-down
  lxml parse + XSD, then + EN 16931 rules); peak memory with M files waiting.
- sftp (issue #6): files uploaded by parallel paramiko clients (one connection
  each) to the SFTP server of `gateway run` (service), beside the same files
  dropped in the inbox folder of an identical service; first file in to last report.
- facturx (issue #4): Factur-X PDFs through `gateway run --once` beside pypdf
  extraction + parse + XSD (+ rules) in one process.
- signed (issue #4): PAdES-signed Factur-X PDFs (test PKI, its root trusted in the
  home) beside pyHanko validation alone, and pyHanko + the Factur-X bare loop.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import REPO  # noqa: E402

RUNS = ("xml", "sftp", "facturx", "signed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--all", action="store_true", help="every run: " + ", ".join(RUNS))
    ap.add_argument("--run", action="append", choices=RUNS, metavar="NAME",
                    help=f"a run to do (repeatable; one of {', '.join(RUNS)}); default xml")
    ap.add_argument("--files", type=int, default=5000, help="xml run: invoices (default 5000)")
    ap.add_argument("--lines", type=int, default=None,
                    help="xml run: invoice lines per invoice (default 2, about 5 KB; the corpus's median "
                         "invoice is about 9 KB): the fixed cost of a flow weighs less on a longer invoice")
    ap.add_argument("--waiting", type=int, default=None,
                    help="xml run: files waiting for the memory run, 0 = skip (default 10000; 0 with --all, "
                         "where the compare runs give the peak RSS with --files waiting)")
    ap.add_argument("--sftp-files", type=int, default=2000, help="sftp run: files (default 2000)")
    ap.add_argument("--sftp-clients", type=int, default=10, help="sftp run: parallel clients (default 10)")
    ap.add_argument("--facturx-files", type=int, default=600, help="facturx run: PDFs (default 600)")
    ap.add_argument("--signed-files", type=int, default=300, help="signed run: PDFs (default 300)")
    ap.add_argument("--rules", choices=("on", "off", "both"), default="on",
                    help="sftp, facturx and signed runs: EN 16931 rules on, off or both (default on, the "
                         "service default); the xml run always does both")
    ap.add_argument("--workers", type=int, default=2, help="gateway worker processes (default 2)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out",
                    help="scratch folder, emptied before and removed after (default bench/out)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (homes, logs) afterwards")
    args = ap.parse_args(argv)
    args.runs = RUNS if args.all else tuple(dict.fromkeys(args.run or ["xml"]))
    if args.waiting is None:
        args.waiting = 0 if args.all else 10000
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped to a file
    rule_modes = {"on": (True,), "off": (False,), "both": (False, True)}[args.rules]
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    started = time.perf_counter()
    try:
        for name in args.runs:
            t0 = time.perf_counter()
            if name == "xml":
                import xml_bench

                xml_bench.run(args.out, args.files, args.waiting, args.workers, args.lines)
            elif name == "sftp":
                import sftp_bench

                for rules in rule_modes:
                    sftp_bench.run(args.out, args.sftp_files, args.workers, rules, args.sftp_clients)
            elif name == "facturx":
                import pdf_bench

                pdf_bench.run_facturx(args.out, args.facturx_files, args.workers, rule_modes)
            elif name == "signed":
                import pdf_bench

                pdf_bench.run_signed(args.out, args.signed_files, args.workers, rule_modes)
            print(f"  ({name} run took {time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(args.out, ignore_errors=True)
    print(f"all runs took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

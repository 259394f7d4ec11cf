"""The PDF runs (issue #4): Factur-X PDFs, and PAdES-signed Factur-X PDFs,
through `gateway run --once` beside bare loops doing the same work with the
libraries alone (pypdf extraction + parse + XSD + rules; pyHanko
validation with the same trust roots), all built in code."""
from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from benchlib import (Baseline, checks, compare_once, in_process_rules, print_costs, stage_timer, timed_loop,
                      write_files, write_report_cost)
from invoice_support import cii_invoice
from pdf_support import make_facturx, make_pki, sign, sign_by, timestamp_document, trust

from gateway.core import config
from gateway.pipeline import pdf
from gateway.rules import schematron
from gateway.pipeline import signatures
from gateway.core import xmlsafe
from gateway.rules import xsd
from gateway.pipeline.evaluate import evaluate_file
from gateway.core.records import Format

LINE_COUNTS = (2, 10, 40)  # invoice lines, taken in turn
ATTACHMENT = ("timesheet.csv", b"date;hours\n2024-03-01;7.5\n2024-03-02;6\n" * 20)
SAMPLE = 100  # files for the in-process per-stage costs


# --- building the files ------------------------------------------------------------

def facturx_bytes(i: int, tag: str = "FX") -> bytes:
    """Factur-X number i, profile EN 16931: 2, 10 and 40 lines in turn, one in
    five a credit note, one in four with an embedded CSV attachment; every
    file distinct bytes.

    Only EN 16931: the pipeline does not yet give the rules a Factur-X's
    profile, so BASIC and EXTENDED files are judged by the EN 16931 rules and
    refused on their guideline ID (FX-SCH-A-000556)."""
    lines = tuple((f"Article {k}", 1 + k % 7, f"{3 + k % 11}.50") for k in range(LINE_COUNTS[i % len(LINE_COUNTS)]))
    xml = cii_invoice(number=f"{tag}-{i:07d}", lines=lines, type_code=381 if i % 5 == 4 else 380)
    return make_facturx("en16931", xml=xml, attachments=dict([ATTACHMENT]) if i % 4 == 3 else None)


FACTURX_MIX = "profile EN 16931; 2, 10 or 40 lines; 1 in 5 a credit note; 1 in 4 with a CSV attachment"
SIGNED_MIX = ("the Factur-X mix, signed under the trusted test CA (7 in 10), the same plus a document "
              "timestamp (2 in 10), signed under an untrusted CA (1 in 10)")


def signed_builder(pki) -> Callable[[int], bytes]:  # noqa: ANN001
    def build(i: int) -> bytes:
        fx = facturx_bytes(i, "SG")
        if i % 10 == 9:
            return sign(fx, pki.other_signer, (pki.other_root,))
        signed = sign_by(pki, fx)
        return timestamp_document(pki, signed) if i % 10 in (7, 8) else signed

    return build


# --- bare loops ----------------------------------------------------------------------

def embedded_xml(data: bytes) -> bytes:
    """pypdf alone: the Factur-X XML among the embedded files."""
    from pypdf import PdfReader

    files = PdfReader(io.BytesIO(data)).attachments
    for name in ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml"):
        if name in files:
            return files[name][0]
    raise ValueError("no Factur-X XML embedded")


def facturx_bare(settings: config.Settings, rules: bool) -> Callable[[bytes], None]:
    """Extract, parse (locked-down lxml), XSD, and the CII rules if on."""
    engine = in_process_rules(settings) if rules else None

    def one(data: bytes) -> None:
        xml = embedded_xml(data)
        tree, _ = xmlsafe.parse(xml)
        xsd.validate(tree, Format.CII, settings.schema_dirs, explain=False)
        if engine is not None:
            engine.check("cii", xml)

    return one


def pyhanko_bare(trust_dir: Path) -> Callable[[bytes], None]:
    """pyHanko alone: every signature (and document timestamp) validated
    offline against the same trust roots, a fresh context each, as the gateway does."""
    from pyhanko.keys import load_certs_from_pemder
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
    from pyhanko_certvalidator import ValidationContext

    roots = list(load_certs_from_pemder([str(p) for p in sorted(trust_dir.glob("*.pem"))]))

    def one(data: bytes) -> None:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        for emb in reader.embedded_signatures:
            vc = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
            if emb.sig_object_type == "/DocTimeStamp":
                validate_pdf_timestamp(emb, validation_context=vc)
            else:
                validate_pdf_signature(emb, vc)

    return one


# --- per-stage cost --------------------------------------------------------------------

def pdf_stage_costs(datas: Sequence[bytes], settings: config.Settings, signed: bool) -> dict[str, float]:
    """Milliseconds per file of each gateway stage, in-process, on a sample."""
    xmls = {id(d): pdf.inspect_pdf(d, settings).invoice_xml.data for d in datas}
    trees: dict[int, object] = {}
    cost, timed = stage_timer(datas)
    timed("bare pypdf extraction (for scale)", embedded_xml)
    label = "pdf inspection (pypdf, pyHanko, XMP)" if signed else "pdf inspection (pypdf, XMP, files)"
    timed(label, lambda d: pdf.inspect_pdf(d, settings))
    if signed:
        timed("  of which signatures (pyHanko)", lambda d: signatures.validate_signatures(d, settings))
    timed("parse embedded XML", lambda d: trees.__setitem__(id(d), xmlsafe.parse(xmls[id(d)])[0]))
    timed("xsd", lambda d: xsd.validate(trees[id(d)], Format.CII, settings.schema_dirs, explain=False))
    eng = schematron.shared_engine(settings)
    eng.check("cii", xmls[id(datas[0])])  # warm: start Saxon, compile
    timed("EN 16931 rules", lambda d: eng.check("cii", xmls[id(d)]))
    timed("whole evaluation (with rules)", lambda d: evaluate_file(d, "x.pdf", settings))
    write, out = write_report_cost(settings, datas[0], "x.pdf")
    timed("report (json+xml)", write)
    shutil.rmtree(out, ignore_errors=True)
    return cost


# --- the runs ----------------------------------------------------------------------------

Baselines = Callable[[config.Settings, bool, list[bytes]], list[Baseline]]


def _run(root: Path, n: int, build: Callable[[int], bytes], what: str, section: str, workers: int,
         rule_modes: Sequence[bool], baselines: Baselines, signed: bool,
         prepare: Callable[[config.Settings], None] = lambda settings: None) -> None:
    """Build n PDFs, then per rules mode: a fresh home (`prepare`d), the bare
    loops, the gateway beside them; then the per-stage costs."""
    t0 = time.perf_counter()
    files = write_files(root / "files", n, build, ".pdf")
    datas = [p.read_bytes() for p in files]
    print(f"[{what}, about {sum(map(len, datas)) // n // 1024} KB each; built in {time.perf_counter() - t0:.0f} s]")
    for rules in rule_modes:
        settings = config.load(root / f"home-{'rules' if rules else 'xsd'}", schematron=rules)
        prepare(settings)
        print(f" [{section}{checks(rules)}]")
        compare_once(files, settings.home, workers, rules, baselines(settings, rules, datas))
    # the stages with the rules, as their labels say, whichever modes ran
    print_costs(pdf_stage_costs(datas[:SAMPLE], replace(settings, schematron=True), signed=signed))


def run_facturx(out: Path, n: int, workers: int, rule_modes: Sequence[bool]) -> None:
    def baselines(settings: config.Settings, rules: bool, datas: list[bytes]) -> list[Baseline]:
        base = timed_loop(datas, [facturx_bare(settings, rules)])
        return [Baseline(f"pypdf extraction + {checks(rules)}, 1 process:", "the bare loop", base)]

    _run(out / "facturx", n, facturx_bytes, f"Factur-X, {n} PDFs ({FACTURX_MIX})", "", workers, rule_modes,
         baselines, signed=False)


def run_signed(out: Path, n: int, workers: int, rule_modes: Sequence[bool]) -> None:
    pki = make_pki()

    def baselines(settings: config.Settings, rules: bool, datas: list[bytes]) -> list[Baseline]:
        hanko = pyhanko_bare(settings.trust)
        alone = timed_loop(datas, [hanko])
        full = timed_loop(datas, [hanko, facturx_bare(settings, rules)])
        return [Baseline("pyHanko validation alone, 1 process:", "pyHanko alone", alone),
                Baseline(f"pyHanko + pypdf + {checks(rules)}, 1 process:", "pyHanko + the bare loop", full)]

    _run(out / "signed", n, signed_builder(pki), f"Signed PDFs, {n} PAdES-signed Factur-X ({SIGNED_MIX})",
         "signatures + Factur-X ", workers, rule_modes, baselines, signed=True,
         prepare=lambda settings: trust(settings, pki.root))  # the trust root configured in the home

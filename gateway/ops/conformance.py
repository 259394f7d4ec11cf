"""Conformance run (`gateway conformance CORPUS`, ops/cli/conformance.py):
`gateway validate --json` over a corpus, compared with its EXPECTED.tsv
(file, kind, expected, source_says, observed).

The reference verdict at each level is what the official schema and rules
gave (the `observed` column); where that disagrees with what the source
says (`expected`), the disagreement is listed, not counted against us.
Levels: `xsd` (syntax and schema), `en16931` (fatal business rules, when the
run reports that the rules ran), `attack` (hostile XML refused), `pdf`
(malformed PDFs answered cleanly), `signature` (PAdES verdicts).
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 150


@dataclass
class Tally:
    ok: Counter = field(default_factory=Counter)
    total: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, level: str, good: bool, what: str) -> None:
        self.total[level] += 1
        if good:
            self.ok[level] += 1
        else:
            self.failures.append(f"[{level}] {what}")


def load_expected(corpus: Path) -> list[dict[str, str]]:
    with open(corpus / "EXPECTED.tsv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r for r in rows if r["kind"] not in ("rule-unit-test",)]


def run_validate(files: list[Path], extra: list[str], env: dict[str, str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i in range(0, len(files), CHUNK):
        chunk = [str(f) for f in files[i:i + CHUNK]]
        proc = subprocess.run([sys.executable, "-m", "gateway.ops.cli", "validate", "--json", *extra, *chunk],
                              capture_output=True, text=True, env=env, timeout=1800)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"gateway validate failed ({proc.returncode}): {proc.stderr[-2000:]}")
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                obj = json.loads(line)
                out[obj["file"]] = obj
    return out


def _codes(res: dict) -> set[str]:
    return {e["code"] for e in res.get("errors", [])}


def _rules(res: dict) -> set[str]:
    # only the EN 16931 rules: the French public-sector controls that follow are ours, not the reference's
    return {e.get("rule") or "?" for e in res.get("errors", [])
            if e["code"] == "REJ_SEMAN" and e.get("stage") == "schematron"}


def _check_ran(res: dict, name: str) -> bool:
    return any(c["name"] == name and c["outcome"] in ("passed", "failed")
               for p in res.get("pieces", []) for c in p.get("checks", []))


_FATAL = re.compile(r"EN16931 v[\d.]+ fatal: ([^;]+)")


def compare(row: dict[str, str], res: dict | None, t: Tally) -> None:
    f, kind, expected, observed = row["file"], row["kind"], row["expected"], row["observed"]
    if res is None:
        t.check("answered", False, f"{f}: no answer from gateway validate")
        return
    t.check("answered", "ERR_INTERNE" not in _codes(res), f"{f}: internal error {res.get('errors')}")
    codes = _codes(res)
    if kind == "xml":
        if expected == "reject":
            t.check("attack", not res["valid"] and "IRR_SYNTAX" in codes, f"{f}: hostile XML not refused: {codes}")
        elif expected == "well-formed":
            t.check("attack", "IRR_SYNTAX" not in codes, f"{f}: benign XML reported as a syntax error")
        else:  # reject-or-ignore-dtd: either answer is fine as long as it is clean
            t.check("attack", bool(codes) or res["valid"], f"{f}: no clear answer")
        return
    if kind == "pdf" and expected == "malformed":
        t.check("pdf", bool(codes) or res["format"] in ("pdf", "pdf-signed", "facturx"),
                f"{f}: no clean answer ({res['format']}, {codes})")
        return
    if kind == "pades":
        _compare_pades(row, res, t)
        return
    if kind in ("ubl", "cii", "facturx"):
        if "not checked" in observed or "ZUGFeRD 1.0" in observed:
            t.notes.append(f"{f}: ZUGFeRD 1.0 XML, not validated by the reference; we said {codes or 'valid'}")
            return
        xsd_ok_ref = "XSD ok" in observed
        wellformed_ref = "not-wellformed" not in observed
        # "ok" only counts when the XSD check really ran: an unavailable validator is not a pass
        ours_xsd_ok = "IRR_SYNTAX" not in codes and _check_ran(res, "xsd")
        if not wellformed_ref:
            t.check("xsd", not ours_xsd_ok, f"{f}: reference says not well-formed, we accepted the syntax")
            return
        if "XSD" in observed:
            t.check("xsd", ours_xsd_ok == xsd_ok_ref,
                    f"{f}: XSD reference {'ok' if xsd_ok_ref else 'FAIL'}, ours {'ok' if ours_xsd_ok else codes}")
        m = _FATAL.search(observed)
        if m and xsd_ok_ref and ours_xsd_ok and _check_ran(res, "en16931"):
            ref = {r.strip() for r in m.group(1).split(",") if r.strip() and r.strip() != "none"}
            ours = _rules(res)
            t.check("en16931", ours == ref, f"{f}: EN16931 fatal reference {sorted(ref) or 'none'}, ours {sorted(ours) or 'none'}")
        if expected in ("valid", "invalid"):
            ref_valid = xsd_ok_ref and (m is None or m.group(1).strip() == "none")
            if (expected == "valid") != ref_valid:
                t.notes.append(f"{f}: source says {expected}, reference tools disagree ({observed[:90]})")


_SIG_ENTRY = re.compile(r"(\S+) \[2020-11-01: ([^\]]*)\]")


def _compare_pades(row: dict[str, str], res: dict, t: Tally) -> None:
    f, expected, observed = row["file"], row["expected"], row["observed"]
    sigs = {s["field_name"]: s for p in res.get("pieces", []) for s in p.get("signatures", [])
            if s.get("kind", "signature") == "signature"}
    codes = _codes(res) | {w["code"] for w in res.get("warnings", [])}
    if "READERR" in observed:
        t.check("signature", bool({"SIG_ILLISIBLE", "IRR_PDF"} & codes) or any(
            not s["intact"] for s in sigs.values()), f"{f}: unreadable signature not reported ({codes})")
        return
    if not any(c["name"] == "signatures" for p in res.get("pieces", []) for c in p.get("checks", [])):
        t.check("signature", False, f"{f}: no signature check ran")
        return
    for name, verdict in _SIG_ENTRY.findall(observed):
        if verdict.startswith("doc-timestamp"):
            continue
        ours = sigs.get(name)
        if ours is None:
            t.check("signature", False, f"{f}: signature {name} not reported")
            continue
        if verdict.startswith("ERR"):
            t.check("signature", not ours["intact"] or any(x["code"] == "SIG_ILLISIBLE" for x in ours["findings"]),
                    f"{f}: {name} is unreadable for the reference, we said intact")
            continue
        ref = dict(kv.split("=", 1) for kv in verdict.split() if "=" in kv)
        t.check("signature", (ours["intact"], ours["trusted"]) == (ref["intact"] == "True", ref["trusted"] == "True"),
                f"{f}: {name} intact/trusted reference {ref['intact']}/{ref['trusted']}, ours "
                f"{ours['intact']}/{ours['trusted']}")
    ours_bad = bool({"SIG_ALTEREE", "SIG_MODIFIEE", "SIG_NON_APPROUVEE", "SIG_ILLISIBLE", "SIG_PLAGE", "SIG_HORODATAGE",
                     "SIG_MASQUEE", "SIG_SOUS_FILTRE"} & codes)
    if expected == "signed-valid":
        t.check("signature", not ours_bad, f"{f}: signed-valid but we flagged {codes}")
    else:
        t.check("signature", ours_bad, f"{f}: {expected} but no signature problem reported")


@dataclass(frozen=True)
class ConformanceRun:
    corpus: Path
    files: int  # rows of EXPECTED.tsv compared
    tally: Tally


def check_corpus(corpus: Path) -> ConformanceRun:
    """`gateway validate --json` over the corpus's files (the PAdES ones with
    their trust anchors, at the date the reference verified them), each
    answer compared with its EXPECTED.tsv row."""
    corpus = corpus.resolve()
    rows = load_expected(corpus)
    env = dict(os.environ)
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups["pades" if r["kind"] == "pades" else "main"].append(r)
    results: dict[str, dict] = {}
    results.update(run_validate([corpus / r["file"] for r in groups["main"]], [], env))
    if groups["pades"]:
        penv = dict(env)
        penv.setdefault("GATEWAY_SIGNATURES_TRUST_DIRS", f"[{corpus / 'pades/pyhanko/trust-extracted'}]")
        results.update(run_validate([corpus / r["file"] for r in groups["pades"]],
                                    ["--at", "2020-11-01T00:00:00+00:00"], penv))
    t = Tally()
    for r in rows:
        compare(r, results.get(str(corpus / r["file"])), t)
    return ConformanceRun(corpus, len(rows), t)

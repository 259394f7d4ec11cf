"""The per-file cost of the French reform's rule sets (BR-FR-Flux2,
EXTENDED-CTC-FR) beside the CEN EN 16931 rules, in the gateway's Saxon worker,
and what `--profile fr-ctc` adds to a whole evaluation.

    PYTHONPATH=. python bench/fr_rules_bench.py [N]

N invoices of each syntax and size (2 and 200 lines), all distinct; the rule
sets are compiled before timing (first-use cost printed apart). Medians, in ms.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import benchlib  # noqa: F401 - puts tests/ on the path

from fr_support import EXTENDED_CTC_FR, fr_cii_invoice, fr_ubl_invoice

from gateway.core.config import Settings
from gateway.pipeline.evaluate import evaluate_file
from gateway.rules import rulesets
from gateway.rules.schematron import RuleEngine


def lines(n: int) -> dict:
    return {"lines": tuple((f"Article {i}", 1 + i % 7, f"{3 + i % 40}.50") for i in range(n))}


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main(n: int = 40) -> None:
    settings = Settings(home=Path(tempfile.mkdtemp(prefix="fr-bench-")))
    builds = {"ubl": fr_ubl_invoice, "cii": fr_cii_invoice}
    print(f"{n} invoices per row; median ms per file")
    print(f"{'syntax':6} {'lines':>5} {'rule set':16} {'first use':>10} {'per file':>9}")
    with RuleEngine(settings) as engine:
        for kind, build in builds.items():
            sets = (rulesets.find_ruleset(kind, settings), rulesets.br_fr_ruleset(kind, settings),
                    rulesets.fr_profile_ruleset(kind, settings))
            for size in (2, 200):
                docs = [build(number=f"FA-{size}-{i}", guideline=EXTENDED_CTC_FR, **lines(size)) for i in range(n)]
                for rs in sets:
                    t0 = time.perf_counter()
                    first = engine.check(kind, docs[0], ruleset=rs)
                    first_use = time.perf_counter() - t0
                    assert first.ran and not first.errors, [f.rule for f in first.errors]
                    samples = []
                    for doc in docs:
                        t0 = time.perf_counter()
                        assert engine.check(kind, doc, ruleset=rs).ran
                        samples.append(time.perf_counter() - t0)
                    print(f"{kind:6} {size:5} {rs.role:16} {first_use * 1000:10.0f} {median_ms(samples):9.1f}")
    print("\nwhole evaluation (evaluate_file: parse, XSD, rules), median ms per file")
    for kind, build in builds.items():
        for size in (2, 200):
            plain = [build(number=f"FB-{size}-{i}", **lines(size)) for i in range(n)]
            ext = [build(number=f"FC-{size}-{i}", guideline=EXTENDED_CTC_FR, **lines(size)) for i in range(n)]
            row = []
            for docs, selection in ((plain, "en16931"), (plain, "fr-ctc"), (ext, "en16931")):
                evaluate_file(docs[0], "warm.xml", settings, selection=selection)
                samples = []
                for doc in docs:
                    t0 = time.perf_counter()
                    evaluate_file(doc, "a.xml", settings, selection=selection)
                    samples.append(time.perf_counter() - t0)
                row.append(median_ms(samples))
            print(f"{kind} {size:3} lines: en16931 {row[0]:.1f}, fr-ctc {row[1]:.1f} (+{row[1] - row[0]:.1f}), "
                  f"EXTENDED-CTC-FR declared {row[2]:.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)

"""What a routing check adds to a piece's verdict: a check, and the finding that refuses it."""
from __future__ import annotations

from dataclasses import replace

from gateway.core.records import Check, Finding, Verdict

STAGE = "routing"


def with_check(v: Verdict, finding: Finding | None, check: Check) -> Verdict:
    return replace(v, findings=v.findings + ((finding,) if finding else ()), checks=v.checks + (check,))

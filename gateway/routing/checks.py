"""What a routing check adds to a piece's verdict: a check, and the finding that refuses it."""
from __future__ import annotations

from dataclasses import replace

from gateway.core import codes
from gateway.core.records import Check, Finding, Verdict

STAGE = "routing"


def with_check(v: Verdict, finding: Finding | None, check: Check) -> Verdict:
    return replace(v, findings=v.findings + ((finding,) if finding else ()), checks=v.checks + (check,))


def duplicate(first_flow: str, sha256: str) -> Finding:
    """DOUBLON: the same bytes from the same partner as an earlier flow."""
    return codes.finding("DOUBLON", f"Same content as flow {first_flow}, already received; not processed again",
                         f"Même contenu que le flux {first_flow}, déjà reçu ; non retraité",
                         value=sha256, stage="reception")

"""A piece must name the party it goes to first."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.core import codes
from gateway.core.records import Check, Verdict
from gateway.routing.checks import STAGE, with_check
from gateway.routing.parties import parties_of


def require_addressee(verdicts: Sequence[Verdict], machine: Any) -> list[Verdict]:
    """The party a piece goes to first must be named in it (an A4's MOE,
    an A9's validator): otherwise the piece would wait for nobody."""
    out = []
    for v in verdicts:
        if not (v.valid and v.invoice is not None):
            out.append(v)
            continue
        inv = v.invoice
        holder = machine.holder(inv.cadre, machine.entry(inv.cadre, inv.validator_levels)[-1])
        parties = parties_of(inv, "-", machine.depositor(inv.cadre))
        if holder in (None, "platform", "supplier", "depositor") or parties.get(holder, {}).get("siret"):
            out.append(v)
            continue
        names = {"moe": ("its maîtrise d'oeuvre (MOE)", "sa maîtrise d'œuvre (MOE)"),
                 "validator1": ("its validator", "son valideur"), "validator2": ("its second validator",
                                                                               "son second valideur")}
        en, fr = names.get(holder, (holder, holder))
        out.append(with_check(v, codes.finding(
            "REJ_CONT_B2G", f"Cadre {inv.cadre} goes first to {en}: give its SIRET", f"Le cadre {inv.cadre} "
            f"est d'abord adressé à {fr} : indiquez son SIRET", value=inv.cadre, stage=STAGE,
            location=inv.location("cadre.bt23") or inv.location("cadre.extension")),
            Check("addressee", "failed", holder)))
    return out

"""What a deposit would say of already-validated pieces, asked of the store
without changing it: the checks `gateway validate --home` adds, so that what
it calls valid is what a deposit accepts (first addressee named, the piece it
continues found, invoice number not taken, bytes not already received, and
with a partner its right to deposit the piece)."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.core.config import Settings
from gateway.core.records import Check, Finding, Verdict
from gateway.routing.addressees import require_addressee
from gateway.routing.checks import duplicate
from gateway.routing.links import resolve_links
from gateway.routing.numbers import enforce_uniqueness, numbers_wanted
from gateway.routing.rights import check_deposits
from gateway.store.pieces import numbers_held, original_flow
from gateway.store.repository import Store


@dataclass(frozen=True)
class Preview:
    verdicts: tuple[Verdict, ...]
    file_findings: tuple[Finding, ...]  # DOUBLON: the file as a whole
    skipped: tuple[Check, ...]  # the deposit checks not run, with why


def preview_deposit(settings: Settings, store: Store, machine: Any, verdicts: Sequence[Verdict], data: bytes | None,
                    partner: str | None) -> Preview:
    """The store checks of a deposit, read-only; pieces numbered as a flow's would be."""
    ids = [f"validate-{v.index:03d}" for v in verdicts]
    out = require_addressee(verdicts, machine)
    deposits = None
    if partner is not None:
        out, deposits = check_deposits(settings, store, out, ids, partner, machine)
    out, _links = resolve_links(settings, store, out, ids, machine, deposits)
    wanted = numbers_wanted(out, ids)
    out = enforce_uniqueness(out, ids, wanted, numbers_held(store, wanted)) if wanted else out
    found: list[Finding] = []
    skipped: list[Check] = []
    if partner is None:
        skipped.append(Check("duplicate", "skipped", "no --partner: whose earlier deposits to compare with"))
        skipped.append(Check("deposit_right", "skipped", "no --partner: who deposits (its structures and roles)"))
    elif data is not None:
        digest = hashlib.sha256(data).hexdigest()
        first = original_flow(store, partner, digest)
        if first:
            found.append(duplicate(first, digest))
    return Preview(tuple(out), tuple(found), tuple(skipped))

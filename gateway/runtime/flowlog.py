"""One INFO line per flow once its outcome is recorded (logger
`gateway.flow`), for whoever reads the service's log:

    flow F20261122091501-1a2b3c4d partner=ACME file='lot.zip' outcome=IN_INTEGRE_PARTIEL pieces=1/2
        codes=IRR_SYNTAX ms=412

`ms`: from reception to the outcome recorded (what /metrics' histogram counts).
The file name is the partner's: written quoted, so it cannot forge a line.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from gateway.core.clock import as_utc, utcnow
from gateway.store.repository import ClaimedFlow, FlowResult
from gateway.store.rows import detail_codes

flow_log = logging.getLogger("gateway.flow")


def outcome_codes(result: FlowResult) -> list[str]:
    """The file's codes (its validation event) and its pieces' codes, sorted, once each."""
    found: set[str] = set()
    for e in result.events:
        if e.stage == "validation" and e.piece_id is None:
            found.update(detail_codes(e.detail_json))
    for p in result.pieces:
        found.update(c for c in p.error_codes.split(",") if c)
    return sorted(found)


def log_outcomes(claimed: Sequence[ClaimedFlow], results: Iterable[FlowResult], recorded: Iterable[str],
                 now: datetime | None = None) -> None:
    if not flow_log.isEnabledFor(logging.INFO):
        return
    now = now or utcnow()
    by_id = {c.id: c for c in claimed}
    done = set(recorded)
    for r in results:
        c = by_id.get(r.flow_id)
        if c is None or r.flow_id not in done:
            continue
        ms = max(0, round((now - as_utc(c.received_at)).total_seconds() * 1000))
        valid = sum(1 for p in r.pieces if p.valid)
        flow_log.info("flow %s partner=%s file=%r outcome=%s pieces=%d/%d codes=%s ms=%d", r.flow_id, c.partner,
                      c.file_name, r.state, valid, len(r.pieces), ",".join(outcome_codes(r)) or "-", ms)

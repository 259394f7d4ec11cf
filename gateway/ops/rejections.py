"""`gateway report rejections`: the operators' view of what was refused,
built from the store's records (store/reporting.py).

Rejections are counted from the store: every piece that is not valid counts
once per error code (`piece.error_codes`), and every flow refused as a whole
(IRR_TAILLE_F, DOUBLON, IRR_LOT, ...) counts once per file-level code, read
from the flow's "validation" event (`{"format", "errors": [codes]}`), since a
flow refused whole has no piece. The details of a file-level error (message,
value) live only in the flow's JSON report, which the latest examples read
when the partner has not fetched and deleted it yet.

One builder (`rejections`) returns immutable records used by the three
renderers (ops/rejections_render.py: table, CSV, HTML) and by the web pages
(ops/web.py).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from gateway.core import codes
from gateway.core.config import Settings
from gateway.ops.query_names import DEFAULT_DAYS
from gateway.store import db, reporting
from gateway.store.rows import detail_codes

UNRECORDED = "(unrecorded)"  # a rejected flow whose codes the store does not hold: shown, never dropped
_REPORT_READ_LIMIT = 32 * 1024 * 1024  # a flow report bigger than this is not read for examples


# --- records -------------------------------------------------------------------------

@dataclass(frozen=True)
class Rejection:
    """One rejected piece (or file, when `piece` is None) under one code."""

    partner: str
    code: str
    flow_id: str
    file_name: str
    piece: int | None
    piece_name: str | None
    at: datetime  # when the flow was received (UTC)
    message: str = ""
    location: str = ""
    value: str | None = None


@dataclass(frozen=True)
class RejectionGroup:
    partner: str
    code: str
    count: int
    first: datetime
    last: datetime
    examples: tuple[Rejection, ...]  # the latest first

    @property
    def label(self) -> str:
        return code_label(self.code)


@dataclass(frozen=True)
class DayCounts:
    day: date
    by_code: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.by_code)


@dataclass(frozen=True)
class RejectionReport:
    since: datetime
    until: datetime
    partner: str | None
    groups: tuple[RejectionGroup, ...]  # by partner, then count (largest first), then code
    days: tuple[DayCounts, ...]  # every day from the first rejection's day to `until`'s day
    latest: tuple[Rejection, ...]  # the latest rejections, all groups mixed
    flows: int  # distinct flows with at least one rejection

    @property
    def total(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def codes(self) -> tuple[str, ...]:
        """Codes by total count, largest first (the chart's stacking order)."""
        tally: Counter[str] = Counter()
        for g in self.groups:
            tally[g.code] += g.count
        return tuple(c for c, _ in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))

    def empty_message(self) -> str:
        who = f" for partner {self.partner}" if self.partner else ""
        return f"no rejections since {fmt_time(self.since)} UTC{who}"


# --- building ----------------------------------------------------------------------

def parse_since(text: str | None, now: datetime | None = None) -> datetime:
    """A date (midnight UTC) or an ISO datetime (UTC unless it says otherwise);
    None means DEFAULT_DAYS back. Raises ValueError with a readable message."""
    now = now or db.utcnow()
    if text is None or not text.strip():
        return now - timedelta(days=DEFAULT_DAYS)
    raw = text.strip()
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time(0), timezone.utc)
        dt = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"invalid --since {text!r}: give a date (2026-11-01) or a datetime "
                         "(2026-11-01T08:00, UTC unless an offset is given)") from None
    return db.as_utc(dt)


@dataclass(frozen=True)
class _Hit:
    """A rejection before its details are read (counting needs none)."""

    partner: str
    code: str
    flow_id: str
    file_name: str
    piece: int | None
    piece_id: str | None
    piece_name: str | None
    at: datetime
    duplicate_of: str | None = None


def _latest_first(hits: list[_Hit]) -> None:
    """Latest flow first; within a flow, file-level codes, then pieces in order."""
    hits.sort(key=lambda h: (h.piece or 0, h.code))
    hits.sort(key=lambda h: (h.at, h.flow_id), reverse=True)  # stable: keeps the order within a flow


def _hits(settings: Settings, since: datetime, partner: str | None) -> list[_Hit]:
    found = reporting.rejected_since(settings, since, partner)
    hits: list[_Hit] = []
    with_pieces: set[str] = set()
    for p in found.pieces:
        with_pieces.add(p.flow_id)
        for code in p.error_codes or (UNRECORDED,):
            hits.append(_Hit(p.partner, code, p.flow_id, p.file_name, p.index, p.id, p.name, p.received_at))
    for f in found.flows:
        file_codes = list(detail_codes(f.validation_detail))
        if not file_codes and f.state == "IN_REJETE" and f.id not in with_pieces:
            file_codes = [UNRECORDED]
        hits.extend(_Hit(f.partner, code, f.id, f.file_name, None, None, None, f.received_at, f.duplicate_of)
                    for code in file_codes)
    _latest_first(hits)
    return hits


def rejections(settings: Settings, since: datetime, partner: str | None = None, *,
               now: datetime | None = None, examples: int = 3, latest: int = 20) -> RejectionReport:
    """Rejections received since `since`, grouped by partner and code, with
    `examples` latest examples per group and the `latest` rejections overall."""
    now = db.as_utc(now or db.utcnow())
    since = db.as_utc(since)
    hits = _hits(settings, since, partner)
    grouped: dict[tuple[str, str], list[_Hit]] = {}
    for h in hits:  # already latest first
        grouped.setdefault((h.partner, h.code), []).append(h)
    chosen = {id(h): h for hs in grouped.values() for h in hs[:examples]}
    chosen.update({id(h): h for h in hits[:latest]})
    details = _details(settings, list(chosen.values()))

    def full(h: _Hit) -> Rejection:
        msg, loc, val = details.get((h.flow_id, h.piece, h.code), ("", "", None))
        return Rejection(h.partner, h.code, h.flow_id, h.file_name, h.piece, h.piece_name, h.at, msg, loc, val)

    groups = [RejectionGroup(part, code, len(hs), min(h.at for h in hs), hs[0].at,
                             tuple(full(h) for h in hs[:examples]))
              for (part, code), hs in grouped.items()]
    groups.sort(key=lambda g: (g.partner, -g.count, g.code))
    return RejectionReport(since, now, partner, tuple(groups), _days(hits, now),
                           tuple(full(h) for h in hits[:latest]), len({h.flow_id for h in hits}))


def _days(hits: list[_Hit], now: datetime) -> tuple[DayCounts, ...]:
    if not hits:
        return ()
    tally: Counter[tuple[date, str]] = Counter((h.at.date(), h.code) for h in hits)
    first = min(d for d, _ in tally)
    last = max(max(d for d, _ in tally), now.date())
    out = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        by_code = sorted(((c, n) for (d, c), n in tally.items() if d == day), key=lambda kv: (-kv[1], kv[0]))
        out.append(DayCounts(day, tuple(by_code)))
    return tuple(out)


def _details(settings: Settings, hits: list[_Hit]) -> dict[tuple[str, int | None, str], tuple[str, str, str | None]]:
    """(flow, piece, code) → (message, location, value) of the first error with
    that code: pieces from their stored verdict, files from the flow's report."""
    out: dict[tuple[str, int | None, str], tuple[str, str, str | None]] = {}
    verdicts = {pid: json_object(vj)
                for pid, vj in reporting.piece_verdicts(settings, (h.piece_id for h in hits if h.piece_id)).items()}
    file_reports: dict[str, dict] = {}
    for h in hits:
        if h.piece_id:
            errors = verdicts.get(h.piece_id, {}).get("errors") or []
        else:
            if h.flow_id not in file_reports:
                file_reports[h.flow_id] = read_flow_report(settings, h.partner, h.flow_id)
            errors = file_reports[h.flow_id].get("errors") or []
        out[(h.flow_id, h.piece, h.code)] = _detail_of(h, errors)
    return out


def _detail_of(h: _Hit, errors: list[Any]) -> tuple[str, str, str | None]:
    for err in errors:
        if isinstance(err, dict) and err.get("code") == h.code:
            value = err.get("value")
            return (str(err.get("message") or ""), location_text(err.get("location")),
                    None if value is None else str(value))
    # The report was fetched and deleted by the partner, or the code has no
    # stored detail: say what the code means.
    if h.code == "DOUBLON" and h.duplicate_of:
        return (f"Same content as flow {h.duplicate_of}, already received", "", None)
    c = codes.CODES.get(h.code)
    return (c.en if c else "", "", None)


# --- what the store and the outbox say of an error ------------------------------------

def location_text(loc: Any) -> str:
    if not isinstance(loc, dict):
        return ""
    parts = [str(loc["member"])] if loc.get("member") else []
    if loc.get("xpath"):
        parts.append(str(loc["xpath"]))
    if loc.get("line"):
        parts.append(f"line {loc['line']}")
    return ", ".join(parts)


def json_object(text: str | None) -> dict:
    """A stored JSON object ({} when it is not one)."""
    try:
        d = json.loads(text or "{}")
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def read_flow_report(settings: Settings, partner: str, flow_id: str) -> dict:
    """The flow's JSON report if it is still in the outbox (partners delete
    what they fetched), read only from inside the outbox."""
    outbox = settings.outbox.resolve()
    path = (settings.reports_dir(partner) / f"{flow_id}.json")
    try:
        real = path.resolve()
        if not real.is_relative_to(outbox) or real.stat().st_size > _REPORT_READ_LIMIT:
            return {}
        return json_object(real.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}


def fmt_time(dt: datetime) -> str:
    return db.as_utc(dt).strftime("%Y-%m-%d %H:%M:%S")


def code_label(code: str) -> str:
    """What a code means, in English ("" for a code the gateway does not know)."""
    c = codes.CODES.get(code)
    return c.en if c else ""

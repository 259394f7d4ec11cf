"""`gateway report rejections`: the operators' view of what was refused.

Rejections are counted from the store: every piece that is not valid counts
once per error code (`piece.error_codes`), and every flow refused as a whole
(IRR_TAILLE_F, DOUBLON, IRR_LOT, ...) counts once per file-level code, read
from the flow's "validation" event (`{"format", "errors": [codes]}`), since a
flow refused whole has no piece. The details of a file-level error (message,
value) live only in the flow's JSON report, which the latest examples read
when the partner has not fetched and deleted it yet.

One query (`rejections`) returns immutable records used by the three
renderers here (table, CSV, HTML) and by the web pages (gateway/web.py).
Partner-supplied text (file names, messages, values) is hostile: the HTML
escapes it, the terminal table neutralises control characters and markup.
"""
from __future__ import annotations

import csv
import enum
import html
import io
import json
import math
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gateway.core import codes
from gateway.store import db
from gateway.ops.options import HomeOpt, existing_home
from gateway.core.config import Settings
from gateway.core.files import atomic_write
from gateway.core.records import FlowState

REJECTED_STATES = (FlowState.IN_REJETE.value, FlowState.IN_INTEGRE_PARTIEL.value)
DEFAULT_DAYS = 30
UNRECORDED = "(unrecorded)"  # a rejected flow whose codes the store does not hold: shown, never dropped
_REPORT_READ_LIMIT = 32 * 1024 * 1024  # a flow report bigger than this is not read for examples
_CHUNK = 500  # ids per IN (...) list


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
        return _label(self.code)


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


# --- the query -----------------------------------------------------------------------

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


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


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
    from sqlalchemy import select

    from gateway.store.repository import Event, Flow, Piece, Store

    f, e, p = Flow.__table__, Event.__table__, Piece.__table__
    st = Store(settings)
    hits: list[_Hit] = []
    with st.session() as s:
        # Flows refused or partly integrated, with their flow-level validation
        # event(s); a flow re-run after a crash has several: the last one holds.
        q = (select(f.c.id, f.c.partner, f.c.file_name, f.c.received_at, f.c.state, f.c.duplicate_of,
                    e.c.detail_json)
             .select_from(f.outerjoin(e, (e.c.flow_id == f.c.id) & e.c.piece_id.is_(None)
                                      & (e.c.stage == "validation")))
             .where(f.c.state.in_(REJECTED_STATES), f.c.received_at >= since)
             .order_by(f.c.id, e.c.id))
        if partner:
            q = q.where(f.c.partner == partner)
        flows: dict[str, tuple] = {}
        for fid, part, name, at, state, dup, detail in s.execute(q):
            flows[fid] = (part, name, db.as_utc(at), state, dup, detail)
        pq = (select(p.c.id, p.c.flow_id, p.c.index, p.c.name, p.c.error_codes, f.c.partner, f.c.file_name,
                     f.c.received_at)
              .select_from(p.join(f, f.c.id == p.c.flow_id))
              .where(p.c.valid.is_(False), f.c.received_at >= since))
        if partner:
            pq = pq.where(f.c.partner == partner)
        with_pieces: set[str] = set()
        for pid, fid, idx, pname, error_codes, part, name, at in s.execute(pq):
            with_pieces.add(fid)
            for code in [c for c in (error_codes or "").split(",") if c] or [UNRECORDED]:
                hits.append(_Hit(part, code, fid, name, idx, pid, pname, db.as_utc(at)))
    for fid, (part, name, at, state, dup, detail) in flows.items():
        file_codes = event_codes(detail)
        if not file_codes and state == "IN_REJETE" and fid not in with_pieces:
            file_codes = [UNRECORDED]
        hits.extend(_Hit(part, code, fid, name, None, None, None, at, dup) for code in file_codes)
    _latest_first(hits)
    return hits


def event_codes(detail: str | None) -> list[str]:
    """The file-level error codes of a flow's "validation" event."""
    if not detail or '"errors": []' in detail:  # most rejected flows: no file-level error (worker.py's json.dumps)
        return []
    try:
        d = json.loads(detail or "{}")
    except ValueError:
        return []
    errs = d.get("errors") if isinstance(d, dict) else None
    return [str(c) for c in dict.fromkeys(errs or []) if c]


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
    from sqlalchemy import select

    from gateway.store.repository import Piece, Store

    out: dict[tuple[str, int | None, str], tuple[str, str, str | None]] = {}
    piece_ids = sorted({h.piece_id for h in hits if h.piece_id})
    verdicts: dict[str, dict] = {}
    if piece_ids:
        with Store(settings).session() as s:
            for ids in _chunks(piece_ids):
                for pid, vj in s.execute(select(Piece.id, Piece.verdict_json).where(Piece.id.in_(ids))):
                    verdicts[pid] = json_object(vj)
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


# --- rendering: shared -----------------------------------------------------------------

def fmt_time(dt: datetime) -> str:
    return db.as_utc(dt).strftime("%Y-%m-%d %H:%M:%S")


def where(r: Rejection) -> str:
    """Flow, file and piece of a rejection, in one line."""
    piece = f" piece {r.piece}" + (f" ({r.piece_name})" if r.piece_name and r.piece_name != r.file_name else "") \
        if r.piece is not None else " (file)"
    return f"{r.file_name}{piece}"


# --- rendering: terminal table ------------------------------------------------------------

def printable(text: str | None, limit: int = 0) -> str:
    """Text safe for a terminal: control and format characters (escape
    sequences, bidi overrides) are shown as escapes such as \\u202e;
    `limit` shortens the result (0: no limit)."""
    if not text:
        return ""
    out = "".join(c if not unicodedata.category(c).startswith("C") else f"\\u{ord(c):04x}" for c in text)
    return out if not limit or len(out) <= limit else out[:limit - 1] + "…"


def render_table(report: RejectionReport, *, width: int | None = None, color: bool = True) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = io.StringIO()
    con = Console(file=buf, width=width or 160, force_terminal=color, color_system="standard" if color else None,
                  no_color=not color, highlight=False, soft_wrap=False)
    if not report.groups:
        con.print(Text(report.empty_message()))
        return buf.getvalue()
    who = f", partner {report.partner}" if report.partner else ""
    con.print(Text(f"Rejections since {fmt_time(report.since)} UTC{who}: {report.total} rejection(s) "
                   f"in {report.flows} flow(s)", style="bold"))
    t = Table("partner", "code", "count", "first (UTC)", "last (UTC)", "latest example", show_lines=False)
    for g in report.groups:
        ex = g.examples[0] if g.examples else None
        example = Text("")
        if ex is not None:
            example = Text(printable(f"{ex.flow_id} {where(ex)}", 120))
            example.append("\n" + printable(ex.message, 200), style="dim")
            extra = "; ".join(x for x in (printable(ex.location, 120),
                                          f"value {printable(ex.value, 60)!s}" if ex.value is not None else "") if x)
            if extra:
                example.append("\n" + extra, style="dim")
        t.add_row(Text(printable(g.partner)), Text(g.code), str(g.count), fmt_time(g.first), fmt_time(g.last), example)
    con.print(t)
    return buf.getvalue()


# --- rendering: CSV -------------------------------------------------------------------------

CSV_HEADER = ("partner", "code", "count", "first", "last", "example_flow_id", "example_file", "example_piece",
              "example_message", "example_location", "example_value")


def render_csv(report: RejectionReport) -> str:
    """One row per partner and code; times in ISO 8601 UTC; the example is the latest."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for g in report.groups:
        ex = g.examples[0] if g.examples else None
        w.writerow([g.partner, g.code, g.count, db.iso(g.first), db.iso(g.last),
                    ex.flow_id if ex else "", _cell(ex.file_name if ex else ""),
                    "" if ex is None or ex.piece is None else ex.piece,
                    _cell(ex.message if ex else ""), _cell(ex.location if ex else ""),
                    _cell("" if ex is None or ex.value is None else ex.value)])
    return buf.getvalue()


def _cell(text: Any) -> str:
    """Partner-supplied text starting like a formula is quoted, so a
    spreadsheet opening the CSV shows it instead of running it."""
    t = str(text)
    return "'" + t if t[:1] in ("=", "+", "-", "@", "\t", "\r") else t


# --- rendering: HTML --------------------------------------------------------------------------

def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


# The page loads nothing from outside: inline style, no script at all.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'"
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;
vertical-align:top}th{background:#f2f2f2}td.n{text-align:right}.dim{color:#666}.msg{max-width:60em;
overflow-wrap:anywhere}.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3em 1.2em}
.sw{display:inline-block;width:.9em;height:.9em;margin-right:.35em;vertical-align:-.1em}
.chart{overflow-x:auto}nav a{margin-right:1em}code{overflow-wrap:anywhere}
"""
_PALETTE = ("#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")


def color_of(index: int) -> str:
    if index < len(_PALETTE):
        return _PALETTE[index]
    return f"hsl({(index * 137.508) % 360:.0f},55%,45%)"  # golden angle: distinct for any number of codes


def html_page(title: str, body: str, *, refresh: int | None = None, nav: str = "") -> str:
    """One self-contained page: no external script, style or font."""
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{meta}'
            f"<title>{esc(title)}</title><style>{_STYLE}</style></head>\n<body>{nav}\n{body}\n</body></html>\n")


def chart_svg(report: RejectionReport) -> str:
    """Rejections per day as stacked bars (one group per day, one rect per code)."""
    days = report.days
    if not days:
        return ""
    order = report.codes
    colors = {c: color_of(i) for i, c in enumerate(order)}
    step = max(8, min(36, 900 // max(1, len(days))))
    bar = max(4, step - 3)
    left, top, plot_h, bottom = 44, 10, 180, 46
    width = max(240, left + step * len(days) + 10)
    peak = max(d.total for d in days) or 1
    scale = plot_h / peak
    label_every = max(1, math.ceil(len(days) / 16))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" width="{width}" '
           f'height="{top + plot_h + bottom}" role="img" aria-label="Rejections per day">',
           f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 5}" y2="{top + plot_h}" stroke="#888"/>']
    for frac in (1.0, 0.5):
        y = top + plot_h - peak * frac * scale
        label = f"{peak * frac:g}" if frac == 1.0 or peak * frac == int(peak * frac) else ""
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 5}" y2="{y:.1f}" stroke="#ddd"/>')
        if label:
            out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{esc(label)}</text>')
    for i, d in enumerate(days):
        x = left + i * step + 1
        out.append(f'<g class="day" data-day="{d.day.isoformat()}" data-total="{d.total}">'
                   f"<title>{esc(d.day.isoformat())}: {d.total} rejection(s)</title>")
        y = top + plot_h
        stacked = dict(d.by_code)
        for code in order:  # the same stacking order every day, so colors line up
            n = stacked.get(code, 0)
            if not n:
                continue
            h = n * scale
            y -= h
            out.append(f'<rect class="bar" data-code="{esc(code)}" data-count="{n}" x="{x}" y="{y:.1f}" '
                       f'width="{bar}" height="{h:.1f}" fill="{colors[code]}"><title>{esc(d.day.isoformat())} '
                       f"{esc(code)}: {n}</title></rect>")
        if i % label_every == 0:
            lx, ly = x + bar / 2, top + plot_h + 12
            out.append(f'<text x="{lx:.1f}" y="{ly}" font-size="10" text-anchor="end" '
                       f'transform="rotate(-45 {lx:.1f} {ly})">{d.day:%m-%d}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def legend_html(report: RejectionReport) -> str:
    totals = Counter()
    for g in report.groups:
        totals[g.code] += g.count
    items = "".join(f'<li><span class="sw" style="background:{color_of(i)}"></span>'
                    f"<code>{esc(c)}</code> {totals[c]} <span class=\"dim\">{esc(_label(c))}</span></li>"
                    for i, c in enumerate(report.codes))
    return f'<ul class="legend">{items}</ul>'


def _label(code: str) -> str:
    c = codes.CODES.get(code)
    return c.en if c else ""


FlowLink = Callable[[str], str]


def _flow_cell(flow_id: str, flow_link: FlowLink | None) -> str:
    if flow_link is None:
        return f"<code>{esc(flow_id)}</code>"
    return f'<a href="{esc(flow_link(flow_id))}"><code>{esc(flow_id)}</code></a>'


def rejections_body(report: RejectionReport, *, flow_link: FlowLink | None = None) -> str:
    """The report's content (heading, chart, grouped table, latest examples), for a page."""
    who = f" — partner {report.partner}" if report.partner else ""
    parts = [f"<h1>Rejections since {esc(fmt_time(report.since))} UTC{esc(who)}</h1>",
             f'<p class="dim">Generated {esc(fmt_time(report.until))} UTC.</p>']
    if not report.groups:
        parts.append(f'<p class="empty">{esc(report.empty_message())}</p>')
        return "\n".join(parts)
    parts.append(f"<p><strong>{report.total}</strong> rejection(s) in <strong>{report.flows}</strong> flow(s), "
                 f"{len(report.groups)} partner/code group(s).</p>")
    parts.append("<h2>Rejections per day</h2>")
    parts.append(f'<div class="chart">{chart_svg(report)}</div>{legend_html(report)}')
    parts.append("<h2>By partner and code</h2>")
    rows = []
    for g in report.groups:
        ex = g.examples[0] if g.examples else None
        example = (f"{_flow_cell(ex.flow_id, flow_link)} {esc(where(ex))}<br>"
                   f'<span class="msg">{esc(ex.message)}</span>') if ex else ""
        rows.append(f"<tr><td>{esc(g.partner)}</td><td><code>{esc(g.code)}</code><br>"
                    f'<span class="dim">{esc(g.label)}</span></td><td class="n">{g.count}</td>'
                    f"<td>{esc(fmt_time(g.first))}</td><td>{esc(fmt_time(g.last))}</td><td>{example}</td></tr>")
    parts.append('<table class="groups"><thead><tr><th>partner</th><th>code</th><th>count</th><th>first (UTC)</th>'
                 "<th>last (UTC)</th><th>latest example</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    parts.append("<h2>Latest rejections</h2>")
    parts.append(examples_table(report.latest, flow_link=flow_link))
    return "\n".join(parts)


def examples_table(items: Iterable[Rejection], *, flow_link: FlowLink | None = None) -> str:
    rows = []
    for r in items:
        rows.append(f"<tr><td>{esc(fmt_time(r.at))}</td><td>{esc(r.partner)}</td><td><code>{esc(r.code)}</code></td>"
                    f"<td>{_flow_cell(r.flow_id, flow_link)}</td><td>{esc(r.file_name)}</td>"
                    f"<td>{esc('' if r.piece is None else r.piece)}"
                    f"{'' if not r.piece_name or r.piece_name == r.file_name else ' ' + esc(r.piece_name)}</td>"
                    f'<td class="msg">{esc(r.message)}</td><td class="msg">{esc(r.location)}</td>'
                    f'<td class="msg">{esc(r.value)}</td></tr>')
    if not rows:
        return '<p class="dim">none</p>'
    return ('<table class="latest"><thead><tr><th>when (UTC)</th><th>partner</th><th>code</th><th>flow</th>'
            "<th>file</th><th>piece</th><th>message</th><th>location</th><th>value</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def render_html(report: RejectionReport, *, flow_link: FlowLink | None = None, nav: str = "") -> str:
    title = f"Rejections since {fmt_time(report.since)} UTC" + (f" — {report.partner}" if report.partner else "")
    return html_page(title, rejections_body(report, flow_link=flow_link), nav=nav)


# --- the command -------------------------------------------------------------------------------

class OutputFormat(str, enum.Enum):
    table = "table"
    csv = "csv"
    html = "html"


app = typer.Typer(help="Operators' reports.", no_args_is_help=True, add_completion=False)


@app.callback()
def _group() -> None:
    """Operators' reports."""


@app.command("rejections")
def rejections_command(
    since: Annotated[Optional[str], typer.Option(
        "--since", help=f"From this date (2026-11-01) or datetime (2026-11-01T08:00, UTC unless an offset is "
                        f"given); default {DEFAULT_DAYS} days back.")] = None,
    partner: Annotated[Optional[str], typer.Option("--partner", help="Only this partner.")] = None,
    output_format: Annotated[OutputFormat, typer.Option(
        "--format", case_sensitive=False,
        help="table (terminal), csv (machine-readable) or html (one page).")] = OutputFormat.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file, not stdout.")] = None,
    home: HomeOpt = None,
) -> None:
    """Rejections grouped by partner and code, with counts and the latest examples."""
    try:
        start = parse_since(since)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    report = rejections(existing_home(home), start, partner)
    if output_format is OutputFormat.csv:
        text = render_csv(report)
    elif output_format is OutputFormat.html:
        text = render_html(report)
    else:
        text = render_table(report, color=output is None and sys.stdout.isatty())
    if output is not None:
        atomic_write(output, text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    if not report.groups and output_format is not OutputFormat.table:
        typer.echo(report.empty_message(), err=True)  # the CSV/page itself stays valid
    elif output is not None:
        typer.echo(f"{report.total} rejection(s) in {report.flows} flow(s) written to {output}", err=True)

"""The overview page (`/`) and the flows list (`/flows?state=&partner=&since=&until=`).

The overview: flows and rejections per day over the last 30 days (inline
SVG bars, each day a link), flows by state, stuck flows, pieces by status,
delays running out, the latest rejections. Every count is a link: to the
flows list for flow states, to the search page (`/search?...`) for piece
statuses and rejection codes.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone

from gateway.core.config import Settings
from gateway.core.records import FlowState
from gateway.ops.chrome import chart_svg, color_of, esc, html_page
from gateway.ops.monitoring import HealthRules
from gateway.ops.rejections import code_label, fmt_time, rejections
from gateway.ops.rejections_render import examples_table
from gateway.ops.web_links import NAV, flow_link, flows_link, piece_link, search_link
from gateway.store import db, overview, reporting
from gateway.store.repository import Store

STATES = ("IN_RECU", *(s.value for s in FlowState))  # received (the store's first state), then the outcomes
CHART_DAYS = 30
_STATE_COLORS = {"IN_INTEGRE": "#2ca02c", "IN_INTEGRE_PARTIEL": "#ff7f0e", "IN_REJETE": "#d62728",
                 "IN_RECU": "#7f7f7f"}


def why_stuck(queue: str, locked_until: datetime | None, queued_minutes: float) -> str:
    return (f"lease expired {fmt_time(locked_until)} UTC" if queue == "running" and locked_until
            else f"queued more than {queued_minutes:g} min")


def flows_chart(settings: Settings, now: datetime, days: int = CHART_DAYS) -> str:
    """Flows received per day, stacked by state; each day links to its flows."""
    first = (now - timedelta(days=days - 1)).date()
    counts: dict[date, dict[str, int]] = defaultdict(dict)
    for c in overview.flows_per_day(settings, datetime.combine(first, time(), timezone.utc)):
        counts[c.day][c.state] = c.count
    order = [*STATES, *sorted({s for d in counts.values() for s in d} - set(STATES))]
    span = [first + timedelta(days=i) for i in range(days)]
    peak = max((sum(counts[d].values()) for d in span), default=0) or 1
    left, top, plot_h, step, bar = 44, 10, 160, 24, 20
    width = left + step * days + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="flows-svg" width="{width}" height="{top + plot_h + 46}" '
           f'role="img" aria-label="Flows per day">',
           f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 5}" y2="{top + plot_h}" stroke="#888"/>',
           f'<text x="{left - 4}" y="{top + 4}" font-size="11" text-anchor="end">{peak}</text>']
    for i, d in enumerate(span):
        x, y, total = left + i * step + 1, float(top + plot_h), sum(counts[d].values())
        href = flows_link(since=d.isoformat(), until=d.isoformat())
        out.append(f'<a href="{esc(href)}"><g class="day" data-day="{d.isoformat()}" data-total="{total}">'
                   f"<title>{d.isoformat()}: {total} flow(s)</title>")
        for state in order:
            n = counts[d].get(state, 0)
            if n:
                h = n * plot_h / peak
                y -= h
                out.append(f'<rect data-state="{esc(state)}" data-count="{n}" x="{x}" y="{y:.1f}" width="{bar}" '
                           f'height="{h:.1f}" fill="{_STATE_COLORS.get(state, "#9467bd")}"><title>{d.isoformat()} '
                           f"{esc(state)}: {n}</title></rect>")
        if i % 3 == 0:
            lx, ly = x + bar / 2, top + plot_h + 12
            out.append(f'<text x="{lx:.1f}" y="{ly}" font-size="10" text-anchor="end" '
                       f'transform="rotate(-45 {lx:.1f} {ly})">{d:%m-%d}</text>')
        out.append("</g></a>")
    out.append("</svg>")
    legend = "".join(f'<li><span class="sw" style="background:{_STATE_COLORS.get(s, "#9467bd")}"></span>{esc(s)}</li>'
                     for s in order if any(s in counts[d] for d in span))
    return f'<div class="chart">{"".join(out)}</div><ul class="legend">{legend}</ul>'


def overview_page(settings: Settings, *, now: datetime | None = None) -> str:
    now = now or db.utcnow()
    counts = Store(settings).counts_by_state()
    state_rows = "".join(f'<tr><td>{esc(s)}</td><td class="n"><a href="{esc(flows_link(state=s))}">'
                         f"{counts.get(s, 0)}</a></td></tr>"
                         for s in (*STATES, *sorted(set(counts) - set(STATES))))
    month = now - timedelta(days=CHART_DAYS - 1)
    since = month.date().isoformat()
    rep = rejections(settings, datetime.combine(month.date(), time(), timezone.utc), now=now, examples=0, latest=0)
    rej_chart = chart_svg(rep, day_link=lambda d: search_link(since=d.isoformat(), until=d.isoformat(),
                                                                status="IRRECEVABLE"))
    totals: dict[str, int] = defaultdict(int)
    for g in rep.groups:
        totals[g.code] += g.count
    code_items = "".join(f'<li><span class="sw" style="background:{color_of(i)}"></span>'
                         f'<a href="{esc(search_link(code=c, since=since))}"><code>{esc(c)}</code> {totals[c]}</a> '
                         f'<span class="dim">{esc(code_label(c))}</span></li>' for i, c in enumerate(rep.codes))
    # the last 24 hours only: this page refreshes itself, the full report is a click away
    day = rejections(settings, now - timedelta(days=1), now=now, examples=0, latest=20)
    latest = (examples_table(day.latest, flow_link=flow_link) if day.latest
              else f'<p class="dim">{esc(day.empty_message())}</p>')
    body = (f'<h1>Gateway</h1><p class="dim">{esc(fmt_time(now))} UTC; refreshed every 30 s.</p>'
            f"<h2>Flows per day (last {CHART_DAYS} days)</h2>{flows_chart(settings, now)}"
            f'<h2>Rejections per day (last {CHART_DAYS} days)</h2><p>{rep.total} rejection(s) in {rep.flows} '
            f'flow(s); <a href="/rejections">by partner and code</a></p>'
            f'<div class="chart">{rej_chart}</div><ul class="legend codes">{code_items}</ul>'
            f'<h2>Flows by state</h2><table class="states"><thead><tr><th>state</th><th>flows</th></tr></thead>'
            f"<tbody>{state_rows}</tbody></table>"
            f"{_stuck(settings, now)}{_pieces_summary(settings, now)}"
            f"<h2>Latest rejections</h2><p>{day.total} rejection(s) in the last 24 hours; "
            f'<a href="/rejections">the last 30 days by partner and code</a></p>{latest}')
    return html_page("Gateway — overview", body, refresh=30, nav=NAV)


def _stuck(settings: Settings, now: datetime) -> str:
    minutes = HealthRules.from_settings(settings).stuck_minutes
    n_stuck, stuck = reporting.stuck_flows(settings, now=now, queued_minutes=minutes, limit=100)
    rows = "".join(
        f'<tr><td><a href="{esc(flow_link(f.flow_id))}"><code>{esc(f.flow_id)}</code></a></td>'
        f"<td>{esc(f.partner)}</td><td>{esc(f.file_name)}</td><td>{esc(fmt_time(f.received_at))}</td>"
        f"<td>{esc(f.queue)}</td><td>{esc(f.locked_by or '')}</td><td class=\"n\">{f.attempts}</td>"
        f"<td>{esc(why_stuck(f.queue, f.locked_until, minutes))}</td></tr>" for f in stuck)
    more = f'<p class="dim">{n_stuck - len(stuck)} more not shown.</p>' if n_stuck > len(stuck) else ""
    table = ('<table class="stuck"><thead><tr><th>flow</th><th>partner</th><th>file</th><th>received (UTC)</th>'
             "<th>queue</th><th>held by</th><th>attempts</th><th>why</th></tr>"
             f"</thead><tbody>{rows}</tbody></table>{more}") if rows else '<p class="dim">none</p>'
    return (f'<h2>Stuck flows ({n_stuck})</h2><p class="dim">Leased to a worker whose lease expired, or queued '
            f"for more than {minutes:g} minutes.</p>{table}")


def _pieces_summary(settings: Settings, now: datetime) -> str:
    """Accepted pieces by status (each count a search), and those whose delay
    runs out within a day (a validator or MOE that does not answer)."""
    by_status = reporting.pieces_by_status(settings)
    soon = reporting.pieces_due_by(settings, now + timedelta(days=1), limit=50)
    rows = "".join(f'<tr><td>{esc(st)}</td><td class="n"><a href="{esc(search_link(status=st))}">{n}</a></td></tr>'
                   for st, n in by_status)
    table = (f'<table class="pstates"><thead><tr><th>status</th><th>pieces</th></tr></thead><tbody>{rows}</tbody>'
             "</table>" if rows else '<p class="dim">none</p>')
    due_rows = "".join(
        f'<tr><td><a href="{esc(piece_link(p.id))}"><code>{esc(p.id)}</code></a></td><td>{esc(p.cadre)}</td>'
        f"<td>{esc(p.invoice_number or '')}</td><td>{esc(p.status)}</td><td>{esc(fmt_time(p.due_at))}</td></tr>"
        for p in soon)
    due = (f'<table class="due"><thead><tr><th>piece</th><th>cadre</th><th>number</th><th>status</th>'
           f"<th>due (UTC)</th></tr></thead><tbody>{due_rows}</tbody></table>" if due_rows
           else '<p class="dim">none</p>')
    return (f"<h2>Pieces by status</h2>{table}<h2>Delays running out within a day ({len(soon)})</h2>"
            f'<p class="dim">Applied by the service on its own; <code>gateway deadlines</code> applies them now.</p>{due}')


def parse_day(text: str | None, name: str) -> date | None:
    """A YYYY-MM-DD filter; ValueError naming the parameter otherwise."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} must be a date, YYYY-MM-DD, not {text!r}") from None


def flows_page(settings: Settings, *, state: str | None, partner: str | None, since: str | None,
               until: str | None) -> str:
    """Flows received from `since` to `until` (days, both included). ValueError on a bad filter."""
    if state and state not in STATES:
        raise ValueError(f"unknown state {state!r}; one of {', '.join(STATES)}")
    first, last = parse_day(since, "since"), parse_day(until, "until")
    start = datetime.combine(first, time(), timezone.utc) if first else None
    end = datetime.combine(last + timedelta(days=1), time(), timezone.utc) if last else None
    total, flows = overview.list_flows(settings, state=state or None, partner=partner or None, since=start, until=end)
    rows = "".join(
        f'<tr><td><a href="{esc(flow_link(f.id))}"><code>{esc(f.id)}</code></a></td><td>{esc(f.partner)}</td>'
        f"<td>{esc(f.file_name)}</td><td>{esc(fmt_time(f.received_at))}</td><td>{esc(f.state)}</td>"
        f"<td>{esc(f.format or '')}</td><td class=\"n\">{f.pieces_valid} / {f.pieces_total}</td></tr>" for f in flows)
    said = ", ".join(f"{k} {v}" for k, v in (("state", state), ("partner", partner), ("since", since),
                                             ("until", until)) if v) or "all"
    form = ('<form method="get" action="/flows">state <select name="state"><option value="">any</option>'
            + "".join(f'<option{" selected" if s == state else ""}>{esc(s)}</option>' for s in STATES)
            + f'</select> partner <input name="partner" value="{esc(partner or "")}"> since <input name="since" '
            f'placeholder="2026-11-01" value="{esc(since or "")}"> until <input name="until" '
            f'placeholder="2026-11-30" value="{esc(until or "")}"> <button type="submit">show</button></form>')
    table = ('<table class="flows"><thead><tr><th>flow</th><th>partner</th><th>file</th><th>received (UTC)</th>'
             f"<th>state</th><th>format</th><th>pieces valid / all</th></tr></thead><tbody>{rows}</tbody></table>"
             if rows else '<p class="dim">none</p>')
    more = f'<p class="dim">the newest {len(flows)} shown.</p>' if total > len(flows) else ""
    return html_page(f"Flows: {said}", f"<h1>Flows: {esc(said)}</h1>{form}<p>{total} flow(s)</p>{table}{more}",
                     nav=NAV)

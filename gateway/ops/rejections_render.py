"""The rejections report (ops/rejections.py) rendered three ways: a terminal
table, CSV, and one HTML page (the web pages' /rejections shows the same body).

Partner-supplied text (file names, messages, values) is hostile: the HTML
escapes it, the terminal table neutralises control characters and markup,
the CSV quotes what a spreadsheet would run as a formula.
"""
from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from gateway.ops.chrome import chart_svg, esc, html_page, legend_html
from gateway.ops.rejections import Rejection, RejectionReport, fmt_time
from gateway.store import db


# --- shared ----------------------------------------------------------------------------------

def where(r: Rejection) -> str:
    """Flow, file and piece of a rejection, in one line."""
    piece = f" piece {r.piece}" + (f" ({r.piece_name})" if r.piece_name and r.piece_name != r.file_name else "") \
        if r.piece is not None else " (file)"
    return f"{r.file_name}{piece}"


# --- terminal table --------------------------------------------------------------------------

def printable(text: str | None, limit: int = 0) -> str:
    """Text safe for a terminal: control and format characters (escape
    sequences, bidi overrides) are shown as escapes such as \\u202e;
    `limit` shortens the result (0: no limit)."""
    if not text:
        return ""
    out = "".join(c if not unicodedata.category(c).startswith("C") else f"\\u{ord(c):04x}" for c in text)
    return out if not limit or len(out) <= limit else out[:limit - 1] + "…"


def render_table(report: RejectionReport, *, width: int | None = None, color: bool = True) -> str:
    # rich only where a table is printed: the web pages never load it
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


# --- CSV -------------------------------------------------------------------------

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


# --- HTML ----------------------------------------------------------------------------

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



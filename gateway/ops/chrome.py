"""What every operators' page shares: one self-contained HTML page (no
script, no outside style or font, a Content-Security-Policy that says so),
escaping, the codes' colours, and the rejections-per-day chart (inline SVG).
"""
from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

from gateway.ops.rejections import RejectionReport, code_label


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


def chart_svg(report: RejectionReport, day_link: Callable[[date], str] | None = None) -> str:
    """Rejections per day as stacked bars (one group per day, one rect per code);
    with `day_link`, each day's bar is a link there."""
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
        if day_link is not None:
            out.append(f'<a href="{esc(day_link(d.day))}">')
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
        out.append("</g></a>" if day_link is not None else "</g>")
    out.append("</svg>")
    return "".join(out)


def legend_html(report: RejectionReport) -> str:
    totals = Counter()
    for g in report.groups:
        totals[g.code] += g.count
    items = "".join(f'<li><span class="sw" style="background:{color_of(i)}"></span>'
                    f"<code>{esc(c)}</code> {totals[c]} <span class=\"dim\">{esc(code_label(c))}</span></li>"
                    for i, c in enumerate(report.codes))
    return f'<ul class="legend">{items}</ul>'

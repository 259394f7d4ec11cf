"""The piece page (`/pieces/{id}`): its invoice data and where it stands,
its billing file (the pieces linked to it, each a link), its status
timeline, and its status files for logged-in operators.
"""
from __future__ import annotations

from gateway.core.config import Settings
from gateway.ops.chrome import esc, html_page
from gateway.ops.rejections import fmt_time, json_object
from gateway.ops.web_files import flow_files
from gateway.ops.web_flow import facts_table, files_html, findings_html, invoice_facts
from gateway.ops.web_history import event_text, history_table
from gateway.ops.web_links import NAV, flow_link, piece_link
from gateway.store.pieces import piece_history
from gateway.store.repository import Store


def _timeline(events: list) -> str:  # noqa: ANN001 - the store's Event rows
    """The status changes alone, oldest first: when, status, from, by whom, why."""
    rows = []
    for e in events:
        if e.stage != "status":
            continue
        d = json_object(e.detail_json)
        rows.append(f'<tr><td>{esc(fmt_time(e.at))}</td><td class="status">{esc(e.outcome)}</td>'
                    f"<td>{esc(d.get('from') or '')}</td><td>{esc(d.get('role') or '')}</td>"
                    f'<td class="msg">{esc(event_text(e.stage, e.outcome, d))}</td>'
                    f'<td><a href="{esc(flow_link(e.flow_id))}"><code>{esc(e.flow_id)}</code></a></td></tr>')
    if not rows:
        return '<p class="dim">no status change recorded</p>'
    return ('<table class="timeline"><thead><tr><th>when (UTC)</th><th>status</th><th>from</th><th>by</th>'
            f"<th>what happened</th><th>through flow</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def piece_page(settings: Settings, piece_id: str, *, logged_in: bool = False) -> str | None:
    """One piece's page, or None when there is no such piece."""
    h = piece_history(Store(settings), piece_id)
    if h is None:
        return None
    p = h.piece
    facts = [("flow", f'<a href="{esc(flow_link(p.flow_id))}"><code>{esc(p.flow_id)}</code></a>'
              + (f" — {esc(h.flow.file_name)} from {esc(h.flow.partner)}" if h.flow else "")),
             ("piece", f"{p.index}: {esc(p.name)} ({esc(p.format)})"),
             ("valid", "yes" if p.valid else "no, refused at intake"),
             ("status", f'<strong class="status">{esc(p.status)}</strong>'
              + (f" since {esc(fmt_time(p.status_at))} UTC" if p.status_at else "")),
             ("delay runs out (UTC)", esc(fmt_time(p.due_at)) if p.due_at else "")]
    if p.link_id:
        facts.append(("continues", f'<a href="{esc(piece_link(p.link_id))}"><code>{esc(p.link_id)}</code></a>'))
    parts = [f"<h1>Piece <code>{esc(p.id)}</code></h1>", facts_table([(k, v) for k, v in facts if v], "piece"),
             "<h2>Invoice</h2>", facts_table(invoice_facts(p), "invoice"), findings_html(json_object(p.verdict_json))]
    dossier = sorted([*h.dossier, p], key=lambda x: (x.created_at, x.id))
    mark = ' class="this"'
    rows = "".join(
        f'<tr{mark if d.id == p.id else ""}><td><a href="{esc(piece_link(d.id))}"><code>{esc(d.id)}'
        f"</code></a>{' (this piece)' if d.id == p.id else ''}</td><td>{esc(d.cadre)}</td>"
        f"<td>{esc(d.piece_type)}</td><td>{esc(d.invoice_number or '')}</td><td>{esc(d.status)}</td>"
        f"<td>{esc(fmt_time(d.created_at))}</td></tr>" for d in dossier)
    parts.append(f"<h2>Billing file ({len(dossier)} piece(s))</h2>"
                 '<table class="dossier"><thead><tr><th>piece</th><th>cadre</th><th>type</th><th>number</th>'
                 f"<th>status</th><th>received (UTC)</th></tr></thead><tbody>{rows}</tbody></table>")
    parts.append("<h2>Status timeline</h2>" + _timeline(h.events))
    mine = tuple(x for x in flow_files(settings, p.flow_id) if x.piece_id == p.id)
    parts.append("<h2>Files</h2>" + files_html(mine, piece_link(p.id), logged_in))
    parts.append("<h2>History</h2>" + history_table(h.events, show_piece=False))
    return html_page(f"Piece {p.id}", "\n".join(parts), nav=NAV)

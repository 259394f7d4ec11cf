"""The flow page (`/flows/{id}`): what came in, each piece's invoice data
(number, issue date, amounts, supplier, recipient SIRET and service, cadre),
its errors and warnings (code, message, location, value), the flow's history
in words, and its files for logged-in operators (ops/web_files.py).
"""
from __future__ import annotations

from typing import Any

from gateway.core.config import Settings
from gateway.ops.chrome import esc, html_page
from gateway.ops.rejections import fmt_time, json_object, location_text, read_flow_report
from gateway.ops.web_files import FileLink, flow_files
from gateway.ops.web_history import history_table
from gateway.ops.web_links import NAV, flow_link, login_link, piece_link
from gateway.store.repository import Store
from gateway.store.rows import detail_codes


def facts_table(facts: list[tuple[str, str]], css: str = "facts") -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in facts)  # values arrive escaped
    return f'<table class="{css}">{rows}</table>'


def invoice_facts(piece: Any) -> list[tuple[str, str]]:
    """A piece's invoice data, escaped, from its columns, its verdict and its summary."""
    verdict, summary = json_object(piece.verdict_json), json_object(piece.summary_json)
    inv = verdict.get("invoice") if isinstance(verdict.get("invoice"), dict) else {}
    recipient = verdict.get("recipient") if isinstance(verdict.get("recipient"), dict) else {}
    currency = inv.get("currency") or summary.get("currency") or ""

    def money(v: Any) -> str:
        return f"{esc(v)} {esc(currency)}".strip() if v not in (None, "") else ""

    supplier = piece.supplier_id or inv.get("supplier") or ""
    rec_name = recipient.get("name") or summary.get("debtor_name") or ""
    service = piece.service_code or inv.get("service") or ""
    facts = [("number", esc(piece.invoice_number or inv.get("number") or "")),
             ("issue date", esc(piece.issue_date or inv.get("date") or "")),
             ("cadre", esc(piece.cadre or inv.get("cadre") or "")),
             ("type", esc(piece.piece_type or inv.get("piece_type") or "")),
             ("supplier", esc(supplier) + (f" — {esc(summary['supplier_name'])}" if summary.get("supplier_name")
                                           else "")),
             ("recipient SIRET", esc(piece.recipient_siret or inv.get("recipient") or "")
              + (f" — {esc(rec_name)}" if rec_name else "")),
             ("service", esc(service) + (f" — {esc(recipient['service'])}" if recipient.get("service") else "")),
             ("engagement", esc(piece.engagement_number or inv.get("engagement") or "")),
             ("total without VAT", money(summary.get("net"))), ("VAT", money(summary.get("tax"))),
             ("total with VAT", money(summary.get("gross"))),
             ("amount due", money(summary.get("total") or inv.get("total")))]
    return [(k, v) for k, v in facts if v]


def errors_table(errors: list[dict[str, Any]], css: str = "errors") -> str:
    rows = "".join(f"<tr><td><code>{esc(e.get('code'))}</code></td><td class=\"msg\">{esc(e.get('message'))}</td>"
                   f"<td class=\"msg\">{esc(location_text(e.get('location')))}</td>"
                   f"<td class=\"msg\">{esc(e.get('value'))}</td><td>{esc(e.get('rule') or '')}</td></tr>"
                   for e in errors)
    return (f'<table class="{css}"><thead><tr><th>code</th><th>message</th><th>location</th><th>value</th>'
            f"<th>rule</th></tr></thead><tbody>{rows}</tbody></table>")


def findings_html(verdict: dict[str, Any]) -> str:
    errs = [e for e in verdict.get("errors") or [] if isinstance(e, dict)]
    warns = [e for e in verdict.get("warnings") or [] if isinstance(e, dict)]
    out = f"<h4>Errors ({len(errs)})</h4>" + errors_table(errs) if errs else ""
    if warns:
        out += f"<h4>Warnings ({len(warns)})</h4>" + errors_table(warns, "warnings")
    return out


def files_html(links: tuple[FileLink, ...], here: str, logged_in: bool) -> str:
    if not links:
        return '<p class="dim">none left: the partner may have fetched (deleted) them</p>'
    if not logged_in:
        return (f'<p>{len(links)} file(s): <a href="{esc(login_link(here))}">log in</a> to download the original, '
                "the return files and the pivots.</p>")
    items = "".join(f'<li><a href="{esc(f.href)}" download>{esc(f.label)}</a></li>' for f in links)
    return f'<ul class="files">{items}</ul>'


def flow_page(settings: Settings, flow_id: str, *, logged_in: bool = False) -> str | None:
    """One flow's page, or None when there is no such flow."""
    st = Store(settings)
    f = st.flow(flow_id)
    if f is None:
        return None
    pieces, history = st.pieces(flow_id), st.history(flow_id)
    facts = [("partner", esc(f.partner)), ("file", esc(f.file_name)), ("size", f"{f.size} bytes"),
             ("sha256", f"<code>{esc(f.sha256)}</code>"), ("received (UTC)", esc(fmt_time(f.received_at))),
             ("channel", esc(f.channel)), ("format", esc(f.format or "")), ("state", esc(f.state)),
             ("queue", esc(f.queue)), ("attempts", str(f.attempts)),
             ("pieces valid / all", f"{f.pieces_valid} / {f.pieces_total}")]
    if f.duplicate_of:
        facts.append(("duplicate of", f'<a href="{esc(flow_link(f.duplicate_of))}">{esc(f.duplicate_of)}</a>'))
    if f.queue == "running":
        facts.append(("held by", esc(f"{f.locked_by} until {fmt_time(f.locked_until) if f.locked_until else '?'} "
                                     "UTC")))
    links = flow_files(settings, flow_id)
    parts = [f"<h1>Flow <code>{esc(f.id)}</code></h1>", facts_table(facts, "flow"),
             "<h2>Files</h2>", files_html(tuple(x for x in links if x.piece_id is None), flow_link(f.id), logged_in)]
    file_errors = _file_errors(settings, f, history)
    if file_errors:
        parts.append("<h2>File-level errors</h2>" + errors_table(file_errors))
    parts.append(f"<h2>Pieces ({len(pieces)})</h2>")
    for p in pieces:
        verdict = json_object(p.verdict_json)
        mark = "valid" if p.valid else "REJECTED"
        parts.append(f'<section class="piece" id="piece-{p.index}"><h3>Piece {p.index}: '
                     f'<a href="{esc(piece_link(p.id))}"><code>{esc(p.id)}</code></a> {esc(p.name)} — '
                     f"{esc(p.format)}, {mark}, status {esc(p.status)}</h3>")
        facts_ = invoice_facts(p)
        if facts_:
            parts.append(facts_table(facts_, "invoice"))
        parts.append(findings_html(verdict))
        mine = tuple(x for x in links if x.piece_id == p.id)
        if mine:
            parts.append(files_html(mine, flow_link(f.id), logged_in))
        parts.append("</section>")
    indexes = {p.id: f"piece {p.index}" for p in pieces}
    parts.append("<h2>History</h2>" + history_table(history, piece_label=lambda pid: indexes.get(pid, pid)))
    return html_page(f"Flow {f.id}", "\n".join(parts), nav=NAV)


def _file_errors(settings: Settings, f, history) -> list[dict[str, Any]]:  # noqa: ANN001
    """A flow's file-level errors: codes from its last validation event, with
    the details of its report when the partner has not deleted it yet."""
    last = [e for e in history if e.stage == "validation" and e.piece_id is None]
    codes_ = list(detail_codes(last[-1].detail_json)) if last else []
    detailed = [e for e in read_flow_report(settings, f.partner, f.id).get("errors") or [] if isinstance(e, dict)]
    known = {e.get("code") for e in detailed}
    return detailed + [{"code": c, "message": "(details in the flow's report, no longer in the outbox)"}
                       for c in codes_ if c not in known]

"""The web's search page and replay by query, on the app of ops/web.py.

    GET  /search?cadre=A4&status=...&since=...   the filters of `gateway search` (ops/search_query.py), the
                                                 pieces found linking to /pieces/{id} and /flows/{id}
    GET  /search.csv?...                         the same pieces as `gateway search --csv --all`
    POST /search/replay                          replay the flows of the pieces found (preview first)

Replaying changes the store: only a logged-in operator may (never on an open
page with no operator), and only from this page's own form: the form carries
a token bound to the operator (an HMAC under a key made at start), and a
request another site makes the browser send (with the Basic credentials it
remembers) has neither the token nor our Origin. The rest is read-only.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

# imported by ops/web.py when it builds the app, never by the command line
from starlette.concurrency import run_in_threadpool
from fastapi import Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from gateway.core.config import Settings
from gateway.ops.chrome import CSP, esc, html_page
from gateway.ops.replay import NothingToSelect, ReplayOutcome, replay
from gateway.ops.web_links import NAV, flow_link, piece_link
from gateway.ops.search_query import EXPORT_COLUMNS, FILTERS, QueryError, build_query, csv_cells
from gateway.store import db
from gateway.store.repository import Store
from gateway.store.search import FoundPiece, PieceQuery, count_pieces, iter_pieces, refused_flows, search_pieces

if TYPE_CHECKING:
    from fastapi import FastAPI

PAGE_SIZE = 100
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
_KINDS = {"": "all pieces", "accepted": "accepted only", "rejected": "refused only"}


def query_of(settings: Settings, params: Mapping[str, str]) -> PieceQuery:
    """The page's parameters as a query (QueryError when one is unknown or wrong)."""
    kind = params.get("kind") or ""
    if kind not in _KINDS:
        raise QueryError(f"unknown kind {kind!r}; valid: accepted, rejected (or empty)")
    values = {f.name: params.get(f.name) for f in FILTERS}
    return build_query(settings, values, accepted=kind == "accepted", rejected=kind == "rejected")


def _kept(params: Mapping[str, str]) -> dict[str, str]:
    """The filters given, as the page passes them on (links, exports, the replay form)."""
    names = [f.name for f in FILTERS] + ["kind"]
    return {k: params[k] for k in names if params.get(k)}


def _form(params: Mapping[str, str]) -> str:
    fields = "".join(
        f'<label>{esc(f.name.replace("_", " "))} <input name="{esc(f.name)}" value="{esc(params.get(f.name, ""))}"'
        f' placeholder="{esc(f.example)}" title="{esc(f.help)}"></label> ' for f in FILTERS)
    kind = params.get("kind", "")
    options = "".join(f'<option value="{esc(k)}"{" selected" if k == kind else ""}>{esc(v)}</option>'
                      for k, v in _KINDS.items())
    return (f'<form method="get" action="/search" class="search">{fields}<label>pieces <select name="kind">'
            f'{options}</select></label> <button type="submit">search</button></form>')


def _rows(found: list[FoundPiece]) -> str:
    return "".join(
        f'<tr><td><a href="{esc(piece_link(p.id))}"><code>{esc(p.id)}</code></a></td>'
        f'<td><a href="{esc(flow_link(p.flow_id))}"><code>{esc(p.flow_id)}</code></a></td>'
        f"<td>{esc(p.partner)}<br>{esc(p.file_name)}</td><td>{esc(db.iso(p.received_at))}</td>"
        f"<td>{esc(p.cadre)} {esc(p.piece_type)}</td><td>{esc(p.invoice_number or '')}</td>"
        f"<td><code>{esc(p.supplier_id or '')}</code></td><td><code>{esc(p.recipient_siret or '')}</code>"
        f"{'<br>' + esc(p.service_code) if p.service_code else ''}</td>"
        f'<td class="status">{esc(p.status)}</td><td>{esc(" ".join(p.error_codes))}</td></tr>' for p in found)


def results_html(settings: Settings, params: Mapping[str, str], q: PieceQuery, page: int) -> str:
    store = Store(settings)
    found = search_pieces(store, q, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    total = count_pieces(store, q) if found or page else 0
    kept = _kept(params)
    parts = [f'<p class="found">{total} piece(s) found; <a href="/search.csv?{esc(urlencode(kept))}">'
             "export as CSV</a></p>"]
    if found:
        parts.append('<table class="results"><thead><tr><th>piece</th><th>flow</th><th>partner / file</th>'
                     "<th>deposited (UTC)</th><th>cadre, type</th><th>number</th><th>supplier</th><th>recipient"
                     f"</th><th>status</th><th>codes</th></tr></thead><tbody>{_rows(found)}</tbody></table>")
    pages = []
    if page > 0:
        pages.append(f'<a href="/search?{esc(urlencode({**kept, "page": page - 1}))}">previous</a>')
    if (page + 1) * PAGE_SIZE < total:
        pages.append(f'<a href="/search?{esc(urlencode({**kept, "page": page + 1}))}">next</a>')
    if pages:
        parts.append(f'<p>{" ".join(pages)}</p>')
    refused = refused_flows(store, q, limit=PAGE_SIZE) if page == 0 else []
    if refused:  # no piece shows them; the replay below reaches them too
        rows = "".join(f'<tr><td><a href="{esc(flow_link(f.id))}"><code>{esc(f.id)}</code></a></td>'
                       f"<td>{esc(f.partner)}<br>{esc(f.file_name)}</td><td>{esc(db.iso(f.received_at))}</td>"
                       f"<td>{esc(' '.join(f.codes))}</td></tr>" for f in refused)
        parts.append(f'<h2>Flows refused whole</h2><p class="found">{len(refused)} flow(s) refused without a '
                     'piece fit these filters</p><table class="results refused"><thead><tr><th>flow</th>'
                     "<th>partner / file</th><th>deposited (UTC)</th><th>codes</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>")
    return "".join(parts)


def _token(key: bytes, operator: str) -> str:
    return hmac.new(key, f"replay:{operator}".encode(), hashlib.sha256).hexdigest()


def replay_form(params: Mapping[str, str], token: str, *, preview: bool = True) -> str:
    hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in _kept(params).items())
    button = ('<button type="submit" name="action" value="preview">preview the replay</button>' if preview else
              '<button type="submit" name="action" value="replay">replay these flows</button>')
    return (f'<form method="post" action="/search/replay" class="replay">{hidden}'
            f'<input type="hidden" name="csrf" value="{esc(token)}">{button}</form>')


def outcome_html(out: ReplayOutcome, dry_run: bool) -> str:
    rows = "".join(
        f'<tr><td><a href="{esc(flow_link(c.flow_id))}"><code>{esc(c.flow_id)}</code></a></td>'
        f"<td>{esc(c.partner)}<br>{esc(c.file_name)}</td><td>{esc(c.state)}</td><td>"
        + (("would be replayed" if dry_run else
            f'replayed as <a href="{esc(flow_link(out.queued[c.flow_id]))}">'
            f"<code>{esc(out.queued[c.flow_id])}</code></a>") if c.replay else f"left: {esc(c.reason)}")
        + "</td></tr>" for c in out.choices)
    n = len(out.to_replay)
    head = (f"<p class=\"replay-summary\">{n} flow(s) {'would be' if dry_run else ''} replayed, {len(out.left)} "
            "left as they are.</p>").replace("  ", " ")
    return head + ('<table class="replays"><thead><tr><th>flow</th><th>partner / file</th><th>state</th>'
                   f"<th>replay</th></tr></thead><tbody>{rows}</tbody></table>" if rows else "")


def register(app: "FastAPI", settings: Settings) -> None:
    """Add /search, /search.csv and /search/replay to the pages' app."""
    key = secrets.token_bytes(32)

    def page(title: str, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(html_page(title, body, nav=NAV), status_code=status, headers=HEADERS)

    def operator(request: Request) -> str | None:
        """The logged-in operator, as the login middleware found it (it checked the password,
        off the event loop); None on open pages."""
        return getattr(request.state, "operator", None)

    @app.get("/search", response_class=HTMLResponse)
    def search_view(request: Request):  # noqa: ANN202
        params = dict(request.query_params)
        body = "<h1>Search pieces</h1>" + _form(params)
        try:
            q = query_of(settings, params)
            page_no = max(0, int(params.get("page") or 0))
        except (QueryError, ValueError) as exc:
            return page("Search", body + f'<p class="error">{esc(exc)}</p>', 400)
        if not _kept(params):
            return page("Search", body + '<p class="dim">Give a filter or two, then search.</p>')
        body += results_html(settings, params, q, page_no)
        who = operator(request)
        if who is not None and not q.is_empty():
            body += "<h2>Replay</h2><p>Evaluate the flows of these pieces again from their archived files " \
                    "(after a fix to the directory, for instance), and the flows refused whole these filters fit; " \
                    "the preview lists them all.</p>" + replay_form(params, _token(key, who))
        return page("Search", body)

    @app.get("/search.csv")
    def search_csv(request: Request):  # noqa: ANN202
        try:
            q = query_of(settings, dict(request.query_params))
        except QueryError as exc:
            return Response(str(exc), status_code=400, media_type="text/plain; charset=utf-8")

        def lines():  # noqa: ANN202
            buf = io.StringIO()
            out = csv.writer(buf, lineterminator="\n")
            out.writerow(EXPORT_COLUMNS)
            for p in iter_pieces(Store(settings), q):
                out.writerow(csv_cells(p))
                if buf.tell() > 65536:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue()

        return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": 'attachment; filename="pieces.csv"', "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"})

    @app.post("/search/replay", response_class=HTMLResponse)
    async def replay_view(request: Request):  # noqa: ANN202
        who = operator(request)
        if who is None:
            return page("Replay refused", "<h1>Replay refused</h1><p>Replaying needs a logged-in operator "
                        "(<code>gateway operator add NAME</code>).</p>", 403)
        origin = request.headers.get("origin")
        if (origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host")) or \
                request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return page("Replay refused", "<h1>Replay refused</h1><p>Not sent from this gateway's page.</p>", 403)
        form = dict(await request.form())
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        if not hmac.compare_digest(params.get("csrf", ""), _token(key, who)):
            return page("Replay refused", "<h1>Replay refused</h1><p>The form is stale or was not sent from this "
                        "gateway's search page: search again, then replay.</p>", 403)
        try:
            q = query_of(settings, params)
            out = await run_in_threadpool(replay, settings, q, dry_run=params.get("action") != "replay",
                                          by=f"web:{who}")  # store work: off the event loop
        except (QueryError, NothingToSelect) as exc:
            return page("Replay", f"<h1>Replay</h1><p class=\"error\">{esc(exc)}</p>", 400)
        dry_run = params.get("action") != "replay"
        body = (f"<h1>Replay {'preview' if dry_run else 'done'}</h1><p class=\"dim\">{esc(q.described())}</p>"
                + outcome_html(out, dry_run))
        if dry_run and out.to_replay:
            body += replay_form(params, _token(key, who), preview=False)
        body += f'<p><a href="/search?{esc(urlencode(_kept(params)))}">back to the search</a></p>'
        return page("Replay", body)


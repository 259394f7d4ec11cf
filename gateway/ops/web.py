"""`gateway web`: the operators' pages, read-only.

    /                 flows by state, stuck flows, pieces by status, delays running out, latest rejections
    /rejections       the rejections report (?since=DATE&partner=P), as `gateway report rejections --format html`
    /flows/{flow_id}  one flow: its pieces, their errors, its history
    /healthz          JSON: the store answers, counts, stuck flows; 503 "paused: disk low on ..."

Every page is self-contained (no script, inline style) and escapes what
partners sent. Nothing here writes to the store. Pages ask for an operator's
login (HTTP Basic; `gateway operator add NAME`) as soon as one operator
exists, and always when they listen on anything but the loopback address;
/healthz stays open to monitoring (counts only). Basic sends the password
with every request: put TLS in front (a reverse proxy) beyond this machine.
Failed logins are counted per client address, per name tried and from
everywhere (operators.LoginThrottle, `[web] login_*`): past a limit the pages
answer 429 with Retry-After, without running scrypt; past the global one,
only an operator at an address it logged in from before is still checked.
Behind a reverse proxy on this machine the client's address is its
X-Forwarded-For (uvicorn trusts it from 127.0.0.1 and ::1 only); addresses
made up there are caught by the global limit.
FastAPI is imported only when the app is built, so the rest of the command
line does not pay for it.
"""
from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import quote

from gateway.core.config import Settings
from gateway.core.records import FlowState
from gateway.core.space import home_space
from gateway.ops.chrome import CSP, esc, html_page
from gateway.ops.operators import Checker, LoginRules, LoginThrottle, claimed_name, load
from gateway.ops.rejections import (event_codes, fmt_time, json_object, location_text, parse_since, read_flow_report,
                                    rejections)
from gateway.ops.rejections_render import examples_table, rejections_body
from gateway.store import db, reporting
from gateway.store.reporting import StuckFlow
from gateway.store.repository import Store

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

DEFAULT_STUCK_MINUTES = 15
STATES = ("IN_RECU", *(s.value for s in FlowState))  # received (the store's first state), then the outcomes
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


def stuck_minutes(settings: Settings) -> float:
    return float(settings.section("web").get("stuck_minutes", DEFAULT_STUCK_MINUTES))


def stuck_flows(settings: Settings, *, now: datetime | None = None, queued_minutes: float | None = None,
                limit: int = 100) -> tuple[int, tuple[StuckFlow, ...]]:
    """Flows leased to a worker whose lease expired, or queued for longer than
    `queued_minutes` since they arrived. Returns (how many, the oldest `limit`)."""
    now = now or db.utcnow()
    minutes = stuck_minutes(settings) if queued_minutes is None else queued_minutes
    return reporting.stuck_flows(settings, now=now, queued_minutes=minutes, limit=limit)


def why_stuck(f: StuckFlow, queued_minutes: float) -> str:
    return (f"lease expired {fmt_time(f.locked_until)} UTC" if f.queue == "running"
            else f"queued more than {queued_minutes:g} min")


def flow_link(flow_id: str) -> str:
    return f"/flows/{quote(flow_id, safe='')}"


NAV = '<nav><a href="/">overview</a><a href="/rejections">rejections</a><a href="/healthz">health</a></nav>'


# --- pages ---------------------------------------------------------------------------------------

def overview_page(settings: Settings, *, now: datetime | None = None) -> str:
    now = now or db.utcnow()
    counts = Store(settings).counts_by_state()
    state_rows = "".join(f'<tr><td>{esc(s)}</td><td class="n">{counts.get(s, 0)}</td></tr>'
                         for s in (*STATES, *sorted(set(counts) - set(STATES))))
    minutes = stuck_minutes(settings)
    n_stuck, stuck = stuck_flows(settings, now=now, queued_minutes=minutes)
    if stuck:
        rows = "".join(
            f'<tr><td><a href="{esc(flow_link(f.flow_id))}"><code>{esc(f.flow_id)}</code></a></td>'
            f"<td>{esc(f.partner)}</td><td>{esc(f.file_name)}</td><td>{esc(fmt_time(f.received_at))}</td>"
            f"<td>{esc(f.queue)}</td><td>{esc(f.locked_by or '')}</td><td class=\"n\">{f.attempts}</td>"
            f"<td>{esc(why_stuck(f, minutes))}</td></tr>" for f in stuck)
        more = f'<p class="dim">{n_stuck - len(stuck)} more not shown.</p>' if n_stuck > len(stuck) else ""
        stuck_html = ('<table class="stuck"><thead><tr><th>flow</th><th>partner</th><th>file</th>'
                      "<th>received (UTC)</th><th>queue</th><th>held by</th><th>attempts</th><th>why</th></tr>"
                      f"</thead><tbody>{rows}</tbody></table>{more}")
    else:
        stuck_html = '<p class="dim">none</p>'
    pieces_html = _pieces_summary(settings, now)
    # the last 24 hours only: this page refreshes itself, the full report is a click away
    rep = rejections(settings, now - timedelta(days=1), now=now, examples=0, latest=20)
    latest = (examples_table(rep.latest, flow_link=flow_link) if rep.latest
              else f'<p class="dim">{esc(rep.empty_message())}</p>')
    body = (f"<h1>Gateway</h1><p class=\"dim\">{esc(fmt_time(now))} UTC; refreshed every 30 s.</p>"
            f'<h2>Flows by state</h2><table class="states"><thead><tr><th>state</th><th>flows</th></tr></thead>'
            f"<tbody>{state_rows}</tbody></table>"
            f"<h2>Stuck flows ({n_stuck})</h2><p class=\"dim\">Leased to a worker whose lease expired, or queued "
            f"for more than {minutes:g} minutes.</p>{stuck_html}"
            f"{pieces_html}"
            f"<h2>Latest rejections</h2><p>{rep.total} rejection(s) in the last 24 hours; "
            f'<a href="/rejections">the last 30 days by partner and code</a></p>'
            f"{latest}")
    return html_page("Gateway — overview", body, refresh=30, nav=NAV)


def _pieces_summary(settings: Settings, now: datetime) -> str:
    """Accepted pieces by status, and those whose delay runs out within a day
    (a validator or MOE that does not answer)."""
    by_status = reporting.pieces_by_status(settings)
    soon = reporting.pieces_due_by(settings, now + timedelta(days=1), limit=50)
    rows = "".join(f'<tr><td>{esc(st)}</td><td class="n">{n}</td></tr>' for st, n in by_status)
    table = (f'<table class="states"><thead><tr><th>status</th><th>pieces</th></tr></thead><tbody>{rows}</tbody>'
             "</table>" if rows else '<p class="dim">none</p>')
    due_rows = "".join(
        f'<tr><td><a href="{esc(flow_link(p.flow_id))}"><code>{esc(p.id)}</code></a></td><td>{esc(p.cadre)}</td>'
        f"<td>{esc(p.invoice_number or '')}</td><td>{esc(p.status)}</td><td>{esc(fmt_time(p.due_at))}</td></tr>"
        for p in soon)
    due = (f'<table class="stuck"><thead><tr><th>piece</th><th>cadre</th><th>number</th><th>status</th>'
           f"<th>due (UTC)</th></tr></thead><tbody>{due_rows}</tbody></table>" if due_rows
           else '<p class="dim">none</p>')
    return (f"<h2>Pieces by status</h2>{table}<h2>Delays running out within a day ({len(soon)})</h2>"
            f'<p class="dim">Applied by the service on its own; <code>gateway deadlines</code> applies them now.</p>{due}')


def rejections_page(settings: Settings, since: str | None, partner: str | None) -> str:
    """Raises ValueError on a bad `since`."""
    report = rejections(settings, parse_since(since), partner or None)
    return html_page(f"Rejections since {fmt_time(report.since)} UTC",
                     _filter_form(since, partner) + rejections_body(report, flow_link=flow_link), nav=NAV)


def _filter_form(since: str | None, partner: str | None) -> str:
    return ('<form method="get" action="/rejections">since <input name="since" placeholder="2026-11-01" '
            f'value="{esc(since or "")}"> partner <input name="partner" value="{esc(partner or "")}"> '
            '<button type="submit">show</button></form>')


def flow_page(settings: Settings, flow_id: str) -> str | None:
    """One flow's page, or None when there is no such flow."""
    st = Store(settings)
    f = st.flow(flow_id)
    if f is None:
        return None
    pieces, history = st.pieces(flow_id), st.history(flow_id)
    facts = [("partner", f.partner), ("file", f.file_name), ("size", f"{f.size} bytes"), ("sha256", f.sha256),
             ("received (UTC)", fmt_time(f.received_at)), ("channel", f.channel), ("format", f.format or ""),
             ("state", f.state), ("queue", f.queue), ("attempts", f.attempts),
             ("pieces valid / all", f"{f.pieces_valid} / {f.pieces_total}")]
    if f.duplicate_of:
        facts.append(("duplicate of", f.duplicate_of))
    if f.queue == "running":
        facts.append(("held by", f"{f.locked_by} until {fmt_time(f.locked_until) if f.locked_until else '?'} UTC"))
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
    if f.duplicate_of:
        rows += (f'<tr><th>original</th><td><a href="{esc(flow_link(f.duplicate_of))}">'
                 f"{esc(f.duplicate_of)}</a></td></tr>")
    parts = [f"<h1>Flow <code>{esc(f.id)}</code></h1>", f'<table class="flow">{rows}</table>']
    file_errors = _file_errors(settings, f, history)
    if file_errors:
        parts.append("<h2>File-level errors</h2>" + _errors_table(file_errors))
    parts.append(f"<h2>Pieces ({len(pieces)})</h2>")
    for p in pieces:
        verdict = json_object(p.verdict_json)
        mark = "valid" if p.valid else "REJECTED"
        parts.append(f"<h3>Piece {p.index}: {esc(p.name)} — {esc(p.format)}, {mark}, status {esc(p.status)}</h3>")
        errs = [e for e in verdict.get("errors") or [] if isinstance(e, dict)]
        warns = [e for e in verdict.get("warnings") or [] if isinstance(e, dict)]
        if errs:
            parts.append(_errors_table(errs))
        if warns:
            parts.append("<p>Warnings</p>" + _errors_table(warns))
    parts.append("<h2>History</h2>")
    hrows = "".join(f"<tr><td>{esc(fmt_time(e.at))}</td><td>{esc(e.stage)}</td><td>{esc(e.outcome)}</td>"
                    f"<td>{esc(e.piece_id or '')}</td><td><code>{esc(e.detail_json)}</code></td></tr>" for e in history)
    parts.append('<table class="history"><thead><tr><th>when (UTC)</th><th>stage</th><th>outcome</th><th>piece</th>'
                 f"<th>detail</th></tr></thead><tbody>{hrows}</tbody></table>")
    return html_page(f"Flow {f.id}", "\n".join(parts), nav=NAV)


def _file_errors(settings: Settings, f, history) -> list[dict[str, Any]]:  # noqa: ANN001
    """A flow's file-level errors: codes from its last validation event, with
    the details of its report when the partner has not deleted it yet."""
    last = [e for e in history if e.stage == "validation" and e.piece_id is None]
    codes_ = event_codes(last[-1].detail_json) if last else []
    detailed = [e for e in read_flow_report(settings, f.partner, f.id).get("errors") or [] if isinstance(e, dict)]
    known = {e.get("code") for e in detailed}
    return detailed + [{"code": c, "message": "(details in the flow's report, no longer in the outbox)"}
                       for c in codes_ if c not in known]


def _errors_table(errors: list[dict[str, Any]]) -> str:
    rows = "".join(f"<tr><td><code>{esc(e.get('code'))}</code></td><td class=\"msg\">{esc(e.get('message'))}</td>"
                   f"<td class=\"msg\">{esc(location_text(e.get('location')))}</td>"
                   f"<td class=\"msg\">{esc(e.get('value'))}</td><td>{esc(e.get('rule') or '')}</td></tr>"
                   for e in errors)
    return ('<table class="errors"><thead><tr><th>code</th><th>message</th><th>location</th><th>value</th>'
            f"<th>rule</th></tr></thead><tbody>{rows}</tbody></table>")


def health(settings: Settings) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 when the store answers and intake can claim;
    503 when the store is unavailable, or with status "paused" when a folder
    is below its free-space floor (the service's own test: it claims nothing then)."""
    try:
        counts = Store(settings).counts_by_state()
        n_stuck, _ = stuck_flows(settings, limit=0)
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        return 503, {"status": "error", "error": f"store unavailable: {type(exc).__name__}",
                     "time": db.iso(db.utcnow())}
    body = {"status": "ok", "time": db.iso(db.utcnow()), "flows": counts, "stuck": n_stuck}
    low = home_space(settings)
    if low is not None:
        return 503, {**body, "status": "paused", "reason": f"paused: {low.reason()}"}
    return 200, body


# --- the app ----------------------------------------------------------------------------------

def wait_text(seconds: float) -> str:
    """A wait in words: "45 seconds", "2 minutes"."""
    if seconds < 90:
        n = max(1, math.ceil(seconds))
        return f"{n} second{'s' if n > 1 else ''}"
    n = math.ceil(seconds / 60)
    return f"{n} minutes"


def too_many_logins_page(seconds: float, *, now: datetime | None = None) -> str:
    at = (now or db.utcnow()) + timedelta(seconds=math.ceil(seconds))
    return html_page("Too many failed logins", (
        "<h1>Too many failed logins</h1><p>Too many wrong names or passwords came from this address, for this "
        f"name or from everywhere. Try again in {esc(wait_text(seconds))}, after {esc(fmt_time(at))} UTC; each "
        "further failure makes the wait longer. Trop d'échecs de connexion : réessayez après "
        f"{esc(fmt_time(at))} UTC.</p>"))


def create_app(settings: Settings, *, require_login: bool = False,
               throttle: LoginThrottle | None = None) -> "FastAPI":
    """The pages. `require_login`: refuse everyone (but /healthz) while no
    operator exists, as when listening beyond the loopback address.
    `throttle`: counts failed logins (by default from `[web]` in gateway.toml;
    ValueError on a bad setting)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool

    # No /docs: Swagger would load scripts from outside, and nothing here is an API to explore.
    app = FastAPI(title="e-invoicing gateway", docs_url=None, redoc_url=None, openapi_url=None)
    checker = Checker(settings)
    # not `throttle or ...`: an empty throttle has len 0
    failures = throttle if throttle is not None else LoginThrottle(LoginRules.from_settings(settings))

    def login_required() -> HTMLResponse:
        return HTMLResponse(html_page("Login required", "<h1>Login required</h1><p>An operator's name and "
                                      "password (<code>gateway operator add NAME</code>).</p>"),
                            status_code=401, headers={**_HEADERS, "WWW-Authenticate": 'Basic realm="gateway", '
                                                                                        'charset="UTF-8"'})

    @app.middleware("http")
    async def login(request: Request, call_next):  # noqa: ANN001, ANN202
        if request.url.path == "/healthz" or not (require_login or checker.users()):
            return await call_next(request)
        header = request.headers.get("authorization")
        if checker.remembered(header) is not None:  # passed a moment ago: no scrypt, no count
            return await call_next(request)
        if not header:  # a browser asks first without credentials: not a failed login
            return login_required()
        address = request.client.host if request.client else "unknown"
        name = claimed_name(header)
        shown = name if name is not None else "(no valid name)"  # never what may be a password
        wait = failures.admit(address, name)
        if wait > 0:
            # INFO: one line per refused request, as many as an attack sends; the lockout is the WARNING
            log.info("login refused without checking: too many failed logins from %r or as %r%s; retry in %d s",
                     address, shown, " or from everywhere" if failures.paused() else "", math.ceil(wait))
            return HTMLResponse(too_many_logins_page(wait), status_code=429,
                                headers={**_HEADERS, "Retry-After": str(math.ceil(wait))})
        who = None
        try:
            # scrypt takes tens of ms: off the event loop
            who = await run_in_threadpool(checker.operator, header)
        finally:
            if who is not None:
                failures.passed(address, who)
            else:
                paused = failures.paused() > 0
                lock = failures.failed(address, name)
                if lock > 0:
                    log.warning("logins locked for %d s: too many failed logins from %r or as %r",
                                math.ceil(lock), address, shown)
                if not paused and failures.paused() > 0:  # once per pause
                    log.warning("logins paused for %d s for every address no operator logged in from: %d failed "
                                "logins from all addresses and names within %d min (the last from %r as %r)",
                                math.ceil(failures.paused()), failures.rules.global_failures,
                                math.ceil(failures.rules.window_seconds / 60), address, shown)
        if who is None:
            return login_required()
        return await call_next(request)

    def page(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status, headers=_HEADERS)

    def error(status: int, message: str) -> HTMLResponse:
        return page(html_page(message, f"<h1>{esc(message)}</h1>", nav=NAV), status)

    @app.get("/", response_class=HTMLResponse)
    def overview():  # noqa: ANN202
        return page(overview_page(settings))

    @app.get("/rejections", response_class=HTMLResponse)
    def rejections_view(since: Optional[str] = None, partner: Optional[str] = None):  # noqa: ANN202
        try:
            return page(rejections_page(settings, since, partner))
        except ValueError as exc:
            return error(400, str(exc).replace("--since", "since"))

    @app.get("/flows/{flow_id}", response_class=HTMLResponse)
    def flow_view(flow_id: str):  # noqa: ANN202
        text = flow_page(settings, flow_id)
        return error(404, f"no flow {flow_id}") if text is None else page(text)

    from gateway.ops import web_search  # /search, /search.csv, /search/replay

    web_search.register(app, settings, checker)

    @app.get("/healthz")
    def healthz():  # noqa: ANN202
        status, body = health(settings)
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    return app


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the pages until SIGTERM or Ctrl-C. Beyond the loopback address,
    only with operators to log in (ValueError otherwise)."""
    import signal
    import threading

    import uvicorn

    local = is_loopback(host)
    if not local and not load(settings):
        raise ValueError(f"the pages would listen on {host} with nobody able to log in: add an operator first "
                         "(gateway operator add NAME)")

    if threading.current_thread() is threading.main_thread():
        # uvicorn stops gracefully, then re-raises the signal to the handler it
        # found: with these, a stop on request ends with exit 0, as `gateway run`.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: None)
    uvicorn.run(create_app(settings, require_login=not local), host=host, port=port, log_level="info",
                access_log=True, server_header=False)

"""`gateway web`: the operators' pages, read-only.

    /                 flows and rejections per day, flows by state, stuck flows, pieces by status, delays
                      running out, latest rejections; every count a link (ops/web_overview.py)
    /flows            flows by state, partner, days (?state=&partner=&since=&until=)
    /flows/{flow_id}  one flow: its pieces' invoice data, errors and warnings, history (ops/web_flow.py)
    /flows/{flow_id}/files/...   its original, report, status files and pivots (logged-in operators only)
    /pieces/{id}      one piece: its billing file and status timeline (ops/web_piece.py)
    /rejections       the rejections report (?since=DATE&partner=P), as `gateway report rejections --format html`
    /login?next=PATH  asks for an operator's login, then goes back to PATH
    /healthz          JSON: ok, or 503 degraded with its reasons (ops/monitoring.py)
    /metrics          the Prometheus text format, read from the store at each scrape

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

from gateway.core.config import Settings
from gateway.ops import monitoring
from gateway.ops.chrome import CSP, esc, html_page
from gateway.ops.operators import Checker, LoginRules, LoginThrottle, claimed_name, load
from gateway.ops.rejections import fmt_time, parse_since, rejections
from gateway.ops.rejections_render import rejections_body
from gateway.ops.web_flow import flow_page  # noqa: F401 - the callers' name
from gateway.ops.web_links import NAV, flow_link
from gateway.ops.web_overview import STATES, overview_page  # noqa: F401 - STATES: the callers' name
from gateway.ops.web_routes import add_pages, operators_only
from gateway.store import db, reporting
from gateway.store.reporting import StuckFlow

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

DEFAULT_STUCK_MINUTES = monitoring.DEFAULT_STUCK_MINUTES
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


def stuck_minutes(settings: Settings) -> float:
    return monitoring.HealthRules.from_settings(settings).stuck_minutes


def stuck_flows(settings: Settings, *, now: datetime | None = None, queued_minutes: float | None = None,
                limit: int = 100) -> tuple[int, tuple[StuckFlow, ...]]:
    """Flows leased to a worker whose lease expired, or queued for longer than
    `queued_minutes` since they arrived. Returns (how many, the oldest `limit`)."""
    now = now or db.utcnow()
    minutes = stuck_minutes(settings) if queued_minutes is None else queued_minutes
    return reporting.stuck_flows(settings, now=now, queued_minutes=minutes, limit=limit)


# --- pages ---------------------------------------------------------------------------------------

def rejections_page(settings: Settings, since: str | None, partner: str | None) -> str:
    """Raises ValueError on a bad `since`."""
    report = rejections(settings, parse_since(since), partner or None)
    return html_page(f"Rejections since {fmt_time(report.since)} UTC",
                     _filter_form(since, partner) + rejections_body(report, flow_link=flow_link), nav=NAV)


def _filter_form(since: str | None, partner: str | None) -> str:
    return ('<form method="get" action="/rejections">since <input name="since" placeholder="2026-11-01" '
            f'value="{esc(since or "")}"> partner <input name="partner" value="{esc(partner or "")}"> '
            '<button type="submit">show</button></form>')


def health(settings: Settings) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 `ok`, 503 `degraded` with its reasons (ops/monitoring.py)."""
    return monitoring.health(settings)


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
    `throttle`: counts failed logins (by default from `[web]` in gateway.toml).
    ValueError on a bad `[web]` or `[monitoring]` setting."""
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

    open_metrics = monitoring.metrics_open(settings)
    monitoring.HealthRules.from_settings(settings)  # a bad [monitoring] setting stops the start, not a page

    @app.middleware("http")
    async def login(request: Request, call_next):  # noqa: ANN001, ANN202
        path = request.url.path
        request.state.operator = None  # who logged in, for the pages that show downloads
        if path == "/healthz" or (path == "/metrics" and open_metrics):
            return await call_next(request)
        if not (require_login or checker.users() or operators_only(path)):
            return await call_next(request)
        header = request.headers.get("authorization")
        known = checker.remembered(header)
        if known is not None:  # passed a moment ago: no scrypt, no count
            request.state.operator = known
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
        request.state.operator = who
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

    from gateway.ops import web_search  # /search, /search.csv, /search/replay

    web_search.register(app, settings)

    @app.get("/healthz")
    def healthz():  # noqa: ANN202
        status, body = health(settings)
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    add_pages(app, settings, page, error, _HEADERS)  # flows, a flow and its files, pieces, login, metrics
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

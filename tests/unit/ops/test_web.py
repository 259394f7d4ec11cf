"""`gateway web`: the operators' pages, served by uvicorn for real and read
with urllib (FastAPI's TestClient needs httpx2, which is not a dependency)."""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import quote

import pytest
import uvicorn

from conftest import REPO
from gateway.store import db
from gateway.store.repository import NewFlow, Store, new_flow_id
from gateway.ops.web import create_app, stuck_flows
from test_report_rejections import HOSTILE_LOT, HOSTILE_MEMBER, fill_home


def _queue(settings, name: str, back: timedelta) -> str:
    at = db.utcnow() - back
    fid = new_flow_id(at)
    Store(settings).record_received([NewFlow(fid, "ACME", "folder", name, fid * 2, 10, at, f"/nowhere/{fid}.bin")])
    return fid


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    s = fill_home(tmp_path_factory.mktemp("web") / "home")
    st = Store(s)
    # a worker that took a flow and died: its lease ran out a minute ago
    expired = _queue(s, "held.xml", timedelta(hours=2))
    assert [c.id for c in st.claim("otherhost:1:w0", limit=1, lease_seconds=-60)] == [expired]
    old = _queue(s, "waiting.xml", timedelta(hours=1))  # queued for an hour
    _queue(s, "fresh.xml", timedelta(seconds=5))  # just arrived: not stuck
    yield s, expired, old
    db.dispose_all()


class _Served:
    """An app on a real socket, in a thread."""

    def __init__(self, app):  # noqa: ANN001
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.srv.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "_Served":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.srv.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.srv.started
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.srv.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def server(filled):
    with _Served(create_app(filled[0])) as srv:
        yield srv.url


def get(url: str, auth: tuple[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """(status, headers, body); `auth`: (operator, password) sent as HTTP Basic."""
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8")


def _assert_safe(page: str) -> None:
    low = page.lower()
    assert "<script" not in low and "<img" not in low
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)


def test_healthz(server, filled):
    _, expired, old = filled
    status, headers, body = get(server + "/healthz")
    # two flows stuck past [web] stuck_minutes: degraded, saying which
    assert status == 503 and headers["content-type"].startswith("application/json")
    h = json.loads(body)
    assert h["status"] == "degraded" and h["stuck"] == 2
    assert [r["check"] for r in h["reasons"]] == ["stuck_flows"]
    assert h["reasons"][0]["count"] == 2 and set(h["reasons"][0]["flows"]) == {expired, old}
    assert h["reason"].startswith("2 flow(s) stuck")
    assert h["flows"] == {"IN_INTEGRE": 2, "IN_INTEGRE_PARTIEL": 1, "IN_REJETE": 5, "IN_RECU": 3}


def test_overview_shows_states_stuck_flows_and_latest_rejections(server, filled):
    _, expired, old = filled
    status, headers, page = get(server + "/")
    assert status == 200 and "default-src 'none'" in headers["content-security-policy"]
    _assert_safe(page)
    states = re.search(r'<table class="states">(.*?)</table>', page, re.S).group(1)
    # each count is a link to the flows in that state
    assert re.search(r'<td>IN_REJETE</td><td class="n"><a href="/flows\?state=IN_REJETE">5</a></td>', states)
    stuck = re.search(r'<table class="stuck">(.*?)</table>', page, re.S).group(1)
    assert expired in stuck and "lease expired" in stuck and "otherhost:1:w0" in stuck
    assert old in stuck and "queued more than 15 min" in stuck and "fresh.xml" not in stuck
    latest = re.search(r'<table class="latest">(.*?)</table>', page, re.S).group(1)
    assert latest.count("<tr>") == 1 + 4  # the last 24 hours: OTHER's, 3 days old, is not there
    assert "OTHER" not in latest and "4 rejection(s) in the last 24 hours" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.xml" in latest


def test_stuck_minutes_is_a_setting(filled):
    settings = filled[0]
    n, flows = stuck_flows(settings, queued_minutes=120)
    assert n == 1 and flows[0].queue == "running"


def test_rejections_page_is_the_report_with_filters(server):
    status, _, page = get(server + "/rejections")
    assert status == 200
    _assert_safe(page)
    assert page.count('<g class="day"') == 4 and "&lt;img src=x onerror=alert(1)&gt;" in page
    status, _, page = get(server + "/rejections?partner=OTHER&since=2020-01-01")
    assert status == 200
    table = re.search(r'<table class="groups">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<tr><td>([^<]*)</td><td><code>([A-Z_]+)</code>.*?<td class=\"n\">(\d+)</td>", table)
    assert sorted(rows) == [("OTHER", "IRR_SYNTAX", "1"), ("OTHER", "IRR_VIDE_F", "1")]
    assert 'value="OTHER"' in page  # the filter form keeps what was asked
    status, _, page = get(server + "/rejections?since=" + quote("<b>soon</b>"))
    assert status == 400 and "invalid since" in page and "<b>" not in page


def test_flow_page_shows_pieces_errors_and_history(server, filled):
    settings = filled[0]
    lot = next(f for f in Store(settings).recent_flows(100, "ACME") if f.file_name == HOSTILE_LOT)
    status, _, page = get(server + "/flows/" + quote(lot.id))
    assert status == 200
    _assert_safe(page)
    assert "IN_INTEGRE_PARTIEL" in page and "&lt;script&gt;alert(1)&lt;/script&gt;.xml" in page
    assert page.count("<h3>Piece ") == 2 and "REJECTED" in page and "IRR_SYNTAX" in page
    history = re.search(r'<table class="history">(.*?)</table>', page, re.S).group(1)
    stages = re.findall(r'<tr data-stage="[a-z_]+"><td>[^<]*</td><td>([a-z_]+)</td>', history)
    assert stages[0] == "reception" and "validation" in stages and stages[-1] == "report"
    # a flow refused whole: its file-level error, with the report's details
    dup = next(f for f in Store(settings).recent_flows(100, "ACME") if f.file_name == "again.xml")
    status, _, page = get(server + "/flows/" + dup.id)
    errors = re.search(r"File-level errors</h2>(.*?)</table>", page, re.S).group(1)
    assert "DOUBLON" in errors and "Same content as flow" in errors
    assert f'href="/flows/{dup.duplicate_of}"' in page
    assert get(server + "/flows/F-nope")[0] == 404
    assert HOSTILE_MEMBER not in page


def test_read_only_and_no_external_docs(server):
    assert get(server + "/docs")[0] == 404 and get(server + "/openapi.json")[0] == 404
    req = urllib.request.Request(server + "/healthz", method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code == 405


def test_gateway_web_command_serves_until_sigterm(filled):
    settings = filled[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, GATEWAY_HOME=str(settings.home))
    p = subprocess.Popen([sys.executable, "-m", "gateway.ops.cli", "web", "--port", str(port)], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, body = time.monotonic() + 30, None
        while time.monotonic() < deadline and p.poll() is None:
            try:
                body = json.loads(get(f"http://127.0.0.1:{port}/healthz")[2])
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        assert body is not None and body["status"] == "degraded"  # the fixture's two stuck flows
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out
    assert f"http://127.0.0.1:{port}/" in out


@pytest.fixture
def fresh(tmp_path):
    from gateway.core import config

    config.init_home(tmp_path / "home")
    yield config.load(tmp_path / "home")
    db.dispose_all()


def test_pages_ask_for_an_operator_login_once_one_exists(fresh):
    from gateway.ops import operators

    with _Served(create_app(fresh)) as s:
        assert get(s.url + "/")[0] == 200  # nobody added, local: open, as documented
        operators.add(fresh, "alice", "correct horse battery")
        status, headers, body = get(s.url + "/")
        assert status == 401 and {k.lower(): v for k, v in headers.items()}["www-authenticate"].startswith(
            "Basic realm=")
        assert "gateway operator add" in body
        assert get(s.url + "/", auth=("alice", "wrong horse battery"))[0] == 401
        assert get(s.url + "/", auth=("mallory", "correct horse battery"))[0] == 401
        assert get(s.url + "/rejections", auth=("alice", "correct horse battery"))[0] == 200
        assert get(s.url + "/healthz")[0] == 200  # monitoring needs no login
        operators.add(fresh, "alice", "a brand new password")  # a new password replaces the old at once
        assert get(s.url + "/", auth=("alice", "correct horse battery"))[0] == 401
        assert get(s.url + "/", auth=("alice", "a brand new password"))[0] == 200


def test_pages_beyond_loopback_refuse_everyone_while_no_operator_exists(fresh):
    from gateway.ops import operators
    from gateway.ops import web

    with _Served(create_app(fresh, require_login=True)) as s:
        assert get(s.url + "/")[0] == 401 and get(s.url + "/healthz")[0] == 200
        operators.add(fresh, "bob", "long enough password")
        assert get(s.url + "/", auth=("bob", "long enough password"))[0] == 200
        operators.remove(fresh, "bob")
        assert get(s.url + "/", auth=("bob", "long enough password"))[0] == 401  # removing the last does not open it
    assert web.is_loopback("127.0.0.1") and web.is_loopback("::1") and not web.is_loopback("0.0.0.0")


def test_operator_commands_keep_only_a_hash_and_web_refuses_to_listen_openly(fresh):
    from conftest import gateway_cli

    out = gateway_cli("operator", "add", "alice", "--password-stdin", home=fresh)
    assert out.returncode != 0  # no password given on stdin: too short
    p = gateway_cli("operator", "add", "alice", "--password-stdin", home=fresh, input="correct horse battery\n")
    assert p.returncode == 0, p.stderr
    f = fresh.keys / "operators"
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    assert "correct horse" not in f.read_text() and f.read_text().startswith("alice:scrypt$")
    assert gateway_cli("operator", "list", home=fresh).stdout.split() == ["alice"]
    assert gateway_cli("operator", "remove", "alice", home=fresh).returncode == 0
    assert gateway_cli("operator", "remove", "alice", home=fresh).returncode == 1
    out = gateway_cli("web", "--host", "0.0.0.0", "--port", "1", home=fresh)
    assert out.returncode == 2 and "add an operator first" in out.stderr


def test_an_unknown_operator_costs_one_scrypt_like_a_known_one(fresh, monkeypatch):
    """How long a refused login takes must not tell which names exist."""
    import hashlib

    from gateway.ops import operators

    operators.add(fresh, "alice", "correct horse battery")
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    checker = operators.Checker(fresh)

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    for user in ("mallory", "alice"):
        calls.clear()
        assert checker.operator(basic(user, "wrong horse battery")) is None
        assert len(calls) == 1, user
    assert checker.operator(basic("alice", "correct horse battery")) == "alice"


def test_operators_file_is_never_readable_by_others_even_when_replaced(fresh, monkeypatch):
    from gateway.ops import operators

    modes = []
    real = os.replace

    def spy(src, dst, *a, **kw):  # noqa: ANN001, ANN002, ANN003
        if str(dst).endswith("operators"):
            modes.append(os.stat(src).st_mode & 0o777)
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", spy)
    operators.add(fresh, "alice", "correct horse battery")
    operators.add(fresh, "bob", "long enough password")  # replaces the file
    operators.remove(fresh, "alice")
    assert modes == [0o600, 0o600, 0o600]  # the new file, before it takes the name
    assert oct(operators.operators_file(fresh).stat().st_mode & 0o777) == "0o600"


def test_operator_lines_of_the_first_format_still_log_in(fresh):
    """The first lines written said name:scrypt:N:r:p:salt:hash."""
    import hashlib
    import secrets

    from gateway.ops import operators

    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(b"correct horse battery", salt=salt, n=2 ** 14, r=8, p=1, dklen=32)
    line = f"alice:scrypt:{2 ** 14}:8:1:{base64.b64encode(salt).decode()}:{base64.b64encode(digest).decode()}\n"
    operators.operators_file(fresh).write_text(line, encoding="utf-8")
    token = "Basic " + base64.b64encode(b"alice:correct horse battery").decode()
    assert operators.Checker(fresh).operator(token) == "alice"

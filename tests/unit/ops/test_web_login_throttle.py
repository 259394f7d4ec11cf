"""Failed operators' logins are throttled per client address and per name
tried (operators.LoginThrottle, used by the web pages' login middleware).
The pages are served by uvicorn for real (test_web._Served); client
addresses come from X-Forwarded-For, which uvicorn trusts from 127.0.0.1."""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import urllib.error
import urllib.request

import pytest

from conftest import home_with
from gateway.ops import operators
from gateway.ops.operators import LoginRules, LoginThrottle, claimed_name
from gateway.ops.web import create_app
from test_web import _Served

PASSWORD = "correct horse battery"
WRONG = "wrong horse battery"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def fail(throttle: LoginThrottle, address: str, name: str | None, times: int = 1) -> float:
    """`times` admitted attempts that fail; returns the wait the last started."""
    lock = 0.0
    for _ in range(times):
        assert throttle.admit(address, name) == 0
        lock = throttle.failed(address, name)
    return lock


# --- the throttle alone -------------------------------------------------------------------------

def test_five_failures_then_a_wait_that_doubles_up_to_the_cap():
    clock = Clock()
    t = LoginThrottle(LoginRules(), clock)
    assert fail(t, "198.51.100.7", "alice", 4) == 0  # four mistakes: no wait yet
    assert fail(t, "198.51.100.7", "alice") == 60  # the fifth starts the first wait
    assert t.admit("198.51.100.7", "alice") == 60  # the sixth try is not checked
    clock.advance(45)
    assert t.admit("198.51.100.7", "alice") == 15
    waits = []
    for _ in range(6):
        clock.advance(t.admit("198.51.100.7", "alice") or 0)
        waits.append(fail(t, "198.51.100.7", "alice"))  # one try after each wait, wrong again
    assert waits == [120, 240, 480, 900, 900, 900]


def test_counters_are_forgotten_after_the_window_without_failures():
    clock = Clock()
    t = LoginThrottle(LoginRules(window_seconds=900), clock)
    fail(t, "198.51.100.7", "alice", 4)
    clock.advance(899)
    assert fail(t, "198.51.100.7", "alice") == 60  # 899 s after the last failure: still counted
    clock.advance(60 + 900)  # the wait, then a whole window without a failure
    assert fail(t, "198.51.100.7", "alice", 4) == 0  # four fresh mistakes allowed again
    assert len(t) == 2


def test_a_good_login_clears_the_counters_of_its_address_and_name():
    t = LoginThrottle(LoginRules(), Clock())
    fail(t, "198.51.100.7", "alice", 4)
    assert t.admit("198.51.100.7", "alice") == 0
    t.passed("198.51.100.7", "alice")
    assert len(t) == 0
    assert fail(t, "198.51.100.7", "bob", 4) == 0  # four more mistakes before a wait, not one
    assert fail(t, "198.51.100.7", "bob") == 60


def test_one_address_does_not_block_another_but_one_name_from_many_addresses_is_blocked():
    t = LoginThrottle(LoginRules(), Clock())
    for i in range(5):
        fail(t, "198.51.100.7", f"guess{i}")  # one address, five names
    assert t.admit("198.51.100.7", "alice") == 60
    assert t.admit("198.51.100.8", "alice") == 0  # another address: its own count
    t.failed("198.51.100.8", "alice")
    for i in range(4):
        fail(t, f"203.0.113.{i}", "carol")  # five addresses, one name
    assert fail(t, "203.0.113.4", "carol") == 60
    assert t.admit("203.0.113.99", "carol") == 60  # a sixth address waits for that name
    assert t.admit("203.0.113.99", "dave") == 0  # but not for another one
    t.failed("203.0.113.99", "dave")


def test_an_address_an_operator_logged_in_from_is_spared_the_wait_of_its_name():
    """Attackers guessing a name from everywhere do not lock its owner out."""
    t = LoginThrottle(LoginRules(), Clock())
    assert t.admit("192.0.2.10", "alice") == 0
    t.passed("192.0.2.10", "alice")
    for i in range(5):
        fail(t, f"203.0.113.{i}", "alice")
    assert t.admit("203.0.113.50", "alice") == 60
    assert t.admit("192.0.2.10", "alice") == 0  # her own address may still try
    t.passed("192.0.2.10", "alice")
    assert t.admit("203.0.113.50", "alice") == 60  # her login does not open the name to the others
    # her address's own mistakes still count
    assert fail(t, "192.0.2.10", "alice", 5) == 60 and t.admit("192.0.2.10", "alice") == 60


def test_attempts_under_way_count_so_a_burst_gets_no_more_guesses():
    t = LoginThrottle(LoginRules(), Clock())
    for _ in range(5):
        assert t.admit("198.51.100.7", "alice") == 0  # five passwords being checked at once
    assert t.admit("198.51.100.7", "alice") == LoginThrottle.BUSY_SECONDS
    assert t.admit("198.51.100.9", "alice") == LoginThrottle.BUSY_SECONDS  # the name is as busy
    for _ in range(5):
        t.failed("198.51.100.7", "alice")
    assert t.admit("198.51.100.7", "alice") == 60


def test_the_table_stays_bounded_and_keeps_its_waits_under_a_flood():
    clock = Clock()
    # no global pause here (it would stop the flood after 50 failures): this is about the tables' bound
    t = LoginThrottle(LoginRules(max_entries=200, global_failures=10**9), clock)
    fail(t, "198.51.100.7", "alice", 5)
    for i in range(20_000):  # a flood from many addresses, each with a new name
        fail(t, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", f"n{i}")
        clock.advance(0.002)  # 40 s in all: within the first wait
        assert len(t) <= 2 * 200
    assert len(t) >= 200  # pruned down to 90%, not emptied
    assert t.admit("198.51.100.7", "bob") > 0 and t.admit("198.51.100.8", "alice") > 0  # waits survive


def test_claimed_name_is_none_for_what_cannot_be_a_name():
    def basic(raw: str) -> str:
        return "Basic " + base64.b64encode(raw.encode()).decode()

    assert claimed_name(basic("alice:x")) == "alice"
    assert claimed_name(basic("my secret pass word:")) is None  # a password typed as the name
    assert claimed_name(basic("alice")) is None and claimed_name("Basic !!") is None
    assert claimed_name("Bearer abc") is None and claimed_name(None) is None


def test_rules_come_from_the_web_section_with_defaults(tmp_path, monkeypatch):
    assert LoginRules.from_settings(home_with(tmp_path / "a", "[intake]\nworkers = 0\n")) == LoginRules()
    s = home_with(tmp_path / "b", "[web]\nlogin_failures = 3\nlogin_window_minutes = 5\n"
                                  "login_lockout_minutes = 0.5\nlogin_lockout_max_minutes = 2\n")
    r = LoginRules.from_settings(s)
    assert (r.failures, r.window_seconds, r.first_lockout_seconds, r.max_lockout_seconds) == (3, 300, 30, 120)
    monkeypatch.setenv("GATEWAY_WEB_LOGIN_FAILURES", "7")
    assert LoginRules.from_settings(home_with(tmp_path / "c", "")).failures == 7
    monkeypatch.delenv("GATEWAY_WEB_LOGIN_FAILURES")
    for bad in ("login_failures = 0", "login_failures = true", 'login_window_minutes = "soon"',
                "login_lockout_max_minutes = -1"):
        with pytest.raises(ValueError, match=r"\[web\] login_"):
            create_app(home_with(tmp_path / "d", f"[web]\n{bad}\n"))


# --- the pages ----------------------------------------------------------------------------------

def request(url: str, auth: tuple[str, str] | None = None, address: str | None = None,
            ) -> tuple[int, dict[str, str], str]:
    """(status, headers with lower-case names, body)."""
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    if address is not None:
        headers["X-Forwarded-For"] = address
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode("utf-8")


@pytest.fixture
def scrypt_calls(monkeypatch):
    """How many times scrypt ran (the real one runs)."""
    calls = []
    real = hashlib.scrypt
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    return calls


@pytest.fixture
def served(home, monkeypatch):
    """(url, clock): the pages of a home with operators alice and carol,
    their throttle on a hand-moved clock."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)  # uvicorn's default: trust 127.0.0.1
    operators.add(home, "alice", PASSWORD)
    operators.add(home, "carol", PASSWORD)
    clock = Clock()
    with _Served(create_app(home, throttle=LoginThrottle(LoginRules.from_settings(home), clock))) as srv:
        yield srv.url, clock


def test_the_sixth_failed_login_gets_429_without_scrypt(served, scrypt_calls, caplog):
    url, clock = served
    caplog.set_level(logging.INFO, logger="gateway.ops.web")
    for _ in range(5):
        assert request(url + "/", ("alice", WRONG))[0] == 401
    assert len(scrypt_calls) == 5
    status, headers, body = request(url + "/", ("alice", WRONG))
    assert status == 429 and headers["retry-after"] == "60"
    assert "Too many failed logins" in body and "Try again in 60 seconds, after 20" in body
    assert re.search(r"after \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", body)
    assert "default-src 'none'" in headers["content-security-policy"]
    assert request(url + "/rejections", ("alice", PASSWORD))[0] == 429  # the right password waits too
    assert len(scrypt_calls) == 5  # neither refusal ran scrypt
    assert request(url + "/healthz")[0] == 200  # monitoring is never throttled
    assert request(url + "/")[0] == 401  # a browser's first ask, without credentials, is not refused
    clock.advance(30)
    assert request(url + "/", ("alice", PASSWORD))[1]["retry-after"] == "30"
    clock.advance(30)  # the wait is over
    assert request(url + "/", ("alice", PASSWORD))[0] == 200
    # that login cleared the counts: four mistakes are 401 again, not 429
    assert [request(url + "/", ("alice", WRONG))[0] for _ in range(4)] == [401] * 4
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "too many failed logins from '127.0.0.1' or as 'alice'" in text
    assert re.search(r"logins locked for 60 s", text) and re.search(r"login refused .* retry in 60 s", text)
    assert "horse" not in caplog.text  # never a password


def test_one_address_does_not_block_another_but_a_name_from_many_is_blocked(served, scrypt_calls):
    url, _ = served
    for i in range(5):
        assert request(url + "/", (f"guess{i}", WRONG), address="198.51.100.7")[0] == 401
    assert request(url + "/", ("alice", PASSWORD), address="198.51.100.7")[0] == 429
    assert request(url + "/", ("alice", PASSWORD), address="198.51.100.8")[0] == 200  # another address
    for i in range(5):
        assert request(url + "/", ("carol", WRONG), address=f"203.0.113.{i}")[0] == 401
    calls = len(scrypt_calls)
    status, headers, _ = request(url + "/", ("carol", PASSWORD), address="203.0.113.99")
    assert status == 429 and headers["retry-after"] == "60" and len(scrypt_calls) == calls


def test_a_remembered_login_keeps_working_while_its_address_waits(served, scrypt_calls):
    url, _ = served
    assert request(url + "/", ("alice", PASSWORD), address="192.0.2.10")[0] == 200
    for i in range(5):
        request(url + "/", (f"guess{i}", WRONG), address="192.0.2.10")
    assert request(url + "/", ("carol", PASSWORD), address="192.0.2.10")[0] == 429  # the address waits
    calls = len(scrypt_calls)
    assert request(url + "/rejections", ("alice", PASSWORD), address="192.0.2.10")[0] == 200  # remembered
    assert len(scrypt_calls) == calls


# --- names and addresses made up: the global limit (issue #14) ----------------------------------

def test_failures_from_everywhere_pause_all_but_known_operators():
    clock = Clock()
    t = LoginThrottle(LoginRules(global_failures=6, global_pause_seconds=300), clock)
    assert t.admit("192.0.2.10", "alice") == 0
    t.passed("192.0.2.10", "alice")
    for i in range(5):
        fail(t, f"203.0.113.{i}", f"guess{i}")  # each address and name once: under their own limits
    assert t.paused() == 0
    assert fail(t, "203.0.113.5", "guess5") == 0 and t.paused() == 300  # the sixth pauses
    assert t.admit("198.51.100.1", "carol") == 300  # a new address waits, unchecked
    assert t.admit("192.0.2.10", "carol") == 300  # a known address with a name it never logged in with too
    assert t.admit("192.0.2.10", "alice") == 0  # alice, where she logged in before, is checked
    t.passed("192.0.2.10", "alice")
    clock.advance(300)
    assert t.paused() == 0
    for i in range(5):  # counted afresh after a pause
        fail(t, f"198.51.100.{i}", f"again{i}")
    assert t.paused() == 0


def test_the_global_limit_counts_within_the_window_and_attempts_under_way():
    clock = Clock()
    t = LoginThrottle(LoginRules(global_failures=3, window_seconds=600), clock)
    fail(t, "203.0.113.1", "a")
    clock.advance(600)  # the first left the window
    fail(t, "203.0.113.2", "b")
    fail(t, "203.0.113.3", "c")
    assert t.paused() == 0
    assert t.admit("203.0.113.4", "d") == 0  # being checked: the last one allowed
    assert t.admit("203.0.113.5", "e") == LoginThrottle.BUSY_SECONDS
    assert t.failed("203.0.113.4", "d") == 0 and t.paused() == 60 * 5


def test_rotating_names_from_one_address_gets_429_after_its_limit(served, scrypt_calls):
    url, _ = served
    statuses = [request(url + "/", (f"name{i}", WRONG), address="198.51.100.7")[0] for i in range(20)]
    assert statuses == [401] * 5 + [429] * 15 and len(scrypt_calls) == 5
    assert request(url + "/", ("alice", PASSWORD), address="198.51.100.7")[0] == 429


@pytest.fixture
def served_global(home, monkeypatch):
    """(url, clock, home): as `served`, with a global limit of 8 failures."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    operators.add(home, "alice", PASSWORD)
    operators.add(home, "carol", PASSWORD)
    clock = Clock()
    rules = LoginRules(global_failures=8, global_pause_seconds=300)
    with _Served(create_app(home, throttle=LoginThrottle(rules, clock))) as srv:
        yield srv.url, clock, home


def test_rotating_forwarded_addresses_hits_the_global_limit_but_known_operators_get_in(
        served_global, scrypt_calls, caplog):
    url, clock, home = served_global
    caplog.set_level(logging.INFO, logger="gateway.ops.web")
    assert request(url + "/", ("alice", PASSWORD), address="192.0.2.10")[0] == 200  # alice's usual address
    # from the loopback, X-Forwarded-For is trusted: a new address and a new name for every guess
    assert [request(url + "/", (f"guess{i}", WRONG), address=f"203.0.113.{i}")[0] for i in range(8)] == [401] * 8
    calls = len(scrypt_calls)
    for i in range(8, 30):
        status, headers, body = request(url + "/", (f"guess{i}", WRONG), address=f"203.0.113.{i}")
        assert status == 429 and headers["retry-after"] == "300" and "from everywhere" in body
    status, headers, _ = request(url + "/", ("carol", PASSWORD), address="198.51.100.99")
    assert status == 429 and headers["retry-after"] == "300"  # unknown there: even the right password waits
    assert request(url + "/", ("carol", PASSWORD), address="192.0.2.10")[0] == 429  # never logged in as carol
    assert len(scrypt_calls) == calls  # no scrypt while paused
    operators.add(home, "alice", PASSWORD)  # a changed operators' file: her login is really checked again
    calls = len(scrypt_calls)  # (adding hashed her password)
    assert request(url + "/", ("alice", PASSWORD), address="192.0.2.10")[0] == 200
    assert len(scrypt_calls) == calls + 1
    paused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("logins paused")]
    assert len(paused) == 1 and "paused for 300 s" in paused[0] and "8 failed logins" in paused[0]
    assert "horse" not in caplog.text
    clock.advance(300)
    assert request(url + "/", ("carol", PASSWORD), address="198.51.100.99")[0] == 200  # the pause is over


def test_the_global_limit_comes_from_the_web_section(tmp_path):
    r = LoginRules.from_settings(home_with(tmp_path / "a", "[web]\nlogin_global_failures = 20\n"
                                                          "login_global_pause_minutes = 0.5\n"))
    assert (r.global_failures, r.global_pause_seconds) == (20, 30)
    for bad in ("login_global_failures = 0", "login_global_failures = 2.5", 'login_global_pause_minutes = "x"',
                "login_global_pause_minutes = -5"):
        with pytest.raises(ValueError, match=r"\[web\] login_global_\w+ must be a positive"):
            create_app(home_with(tmp_path / "d", f"[web]\n{bad}\n"))

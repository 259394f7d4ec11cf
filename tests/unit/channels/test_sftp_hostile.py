"""Hostile or runaway clients cannot lock partners out of the SFTP server
(issue #14): password lockouts never stop a key and are kept per (name,
address), a global pause caps guessing from everywhere, idle logged-in
connections are closed, and one partner's connections in session are capped.
Real servers on the loopback, driven by paramiko and OpenSSH's sftp; another
127.x.y.z source address is another client."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

import paramiko
import pytest

from gateway.channels.sftp.server import SftpServer
from gateway.channels.sftp.throttle import Limits, LoginThrottle
from gateway.core import config
from gateway.ops.operators import LoginRules
from gateway.store import db, partners
from sftp_support import SFTP_BIN, connect, ecdsa_key, ed25519_key, make_home, openssh_sftp, wait_until

PASSWORD = "s3cret-pass-word"
REFUSED_AFTER_LOGIN = (paramiko.SSHException, EOFError, OSError)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    settings = make_home(root / "home", sftp={"login_grace_seconds": 10})
    (root / "keys").mkdir()
    yield settings, root / "keys"
    db.dispose_all()


_n = iter(range(10**6))


def partner(site, kind=ecdsa_key):
    """A new partner with a key and a password: (name, key)."""
    settings, keys = site
    name = f"H{next(_n)}"
    key = kind(keys, name)
    partners.add_partner(settings, name, [key.pub], password=PASSWORD)
    return name, key


def server(site, **sftp) -> SftpServer:
    """A server of its own (its own throttle and counts), with these [sftp] settings."""
    settings = site[0]
    return SftpServer(replace(settings, raw={**settings.raw, "sftp": {"login_grace_seconds": 10, **sftp}}),
                      "127.0.0.1", 0)


def wrong(address, name: str, source: str | None = None) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        connect(address, name, password="guess", source=source)


def messages(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# --- passwords and keys ---------------------------------------------------------------------

def test_wrong_passwords_never_lock_the_key_out(site, tmp_path, caplog):
    name, key = partner(site, kind=ed25519_key)
    with server(site, max_auth_failures=3, lockout_seconds=30) as srv, caplog.at_level(logging.INFO, "gateway.sftp"):
        for _ in range(3):
            wrong(srv.address, name)  # someone sharing the partner's address guesses
        assert messages(caplog, "locked out for 30 s")
        with pytest.raises(paramiko.AuthenticationException):
            connect(srv.address, name, password=PASSWORD)  # passwords wait, even the right one
        t, sftp = connect(srv.address, name, key)  # the key logs in from the same address
        assert sorted(sftp.listdir("/")) == ["inbox", "outbox"]
        t.close()
        if SFTP_BIN:  # and so does OpenSSH's client with it
            r = openssh_sftp(srv.address, name, key, ["ls /"], tmp_path)
            assert r.returncode == 0 and "inbox" in r.stdout, r.stderr
        # a key login does not clear the password count: the lockout holds
        with pytest.raises(paramiko.AuthenticationException):
            connect(srv.address, name, password=PASSWORD)
        # a wrong key is no guess at a password: not counted
        stranger = ecdsa_key(site[1], f"stranger{next(_n)}")
        for _ in range(5):
            with pytest.raises(paramiko.AuthenticationException):
                connect(srv.address, name, stranger, source="127.0.0.3")
        assert srv.throttle.locked("127.0.0.3", name) == 0


def test_a_password_lockout_holds_one_name_at_one_address(site):
    alice, _ = partner(site)
    bob, _ = partner(site)
    with server(site, max_auth_failures=3, lockout_seconds=30) as srv:
        for _ in range(3):
            wrong(srv.address, alice, source="127.0.0.1")
        with pytest.raises(paramiko.AuthenticationException):
            connect(srv.address, alice, password=PASSWORD, source="127.0.0.1")  # locked: (alice, 127.0.0.1)
        connect(srv.address, alice, password=PASSWORD, source="127.0.0.2")[0].close()  # same name, other address
        connect(srv.address, bob, password=PASSWORD, source="127.0.0.1")[0].close()  # other name, same address


def test_too_many_wrong_passwords_from_everywhere_pause_every_password_check(site, caplog):
    names = [partner(site)[0] for _ in range(6)]
    victim, vkey = partner(site)
    with server(site, max_global_failures=4, global_window_seconds=30, global_pause_seconds=4) as srv, \
            caplog.at_level(logging.DEBUG, "gateway.sftp"):
        for i in range(4):  # each name and address under its own limit of 5
            wrong(srv.address, names[i], source=f"127.0.1.{i + 1}")
        assert 3 < srv.throttle.paused() <= 4
        started = time.monotonic()
        with pytest.raises(paramiko.AuthenticationException):
            connect(srv.address, victim, password=PASSWORD, source="127.0.2.1")  # not even checked
        for i in range(4, 6):
            wrong(srv.address, names[i], source=f"127.0.1.{i + 1}")  # refused unchecked: not counted
        connect(srv.address, victim, vkey, source="127.0.2.1")[0].close()  # keys go on
        paused = messages(caplog, "SFTP password checks paused for 4 s")
        assert len(paused) == 1 and "4 wrong passwords from 4 address(es) within 30 s" in paused[0]
        assert len(messages(caplog, "failed (password)")) == 4  # three refusals ran no check
        time.sleep(max(0.0, 4.1 - (time.monotonic() - started)))
        connect(srv.address, victim, password=PASSWORD, source="127.0.2.1")[0].close()  # the pause is over
        for i in range(3):  # counting starts afresh after a pause
            wrong(srv.address, names[i], source=f"127.0.3.{i + 1}")
        assert srv.throttle.paused() == 0 and len(messages(caplog, "SFTP password checks paused")) == 1


def test_the_global_pause_alone():
    now = [0.0]
    th = LoginThrottle(Limits(max_global_failures=3, global_window_seconds=10, global_pause_seconds=5),
                       clock=lambda: now[0])
    assert th.failure("10.0.0.1", "A").pause == 0
    now[0] = 9.5
    assert th.failure("10.0.0.2", "B").pause == 0
    now[0] = 10.5  # the first has left the window
    assert th.failure("10.0.0.3", "C").pause == 0 and th.paused() == 0
    started = th.failure("10.0.0.3", "D")
    assert (started.pause, started.addresses, th.paused()) == (5, 2, 5)
    assert th.locked("10.0.0.1", "A") == 0  # the pause is no lockout of anyone's own
    now[0] = 15.5
    assert th.paused() == 0


# --- sessions -------------------------------------------------------------------------------

def test_an_idle_connection_is_closed_and_a_busy_one_is_not(site, caplog):
    name, key = partner(site)
    with server(site, idle_timeout_seconds=2) as srv, caplog.at_level(logging.INFO, "gateway.sftp"):
        started = time.monotonic()  # before its login: it cannot be closed sooner than the timeout after this
        t_idle, _ = connect(srv.address, name, key)
        t_busy, busy = connect(srv.address, name, key)
        stop = threading.Event()
        errors: list[BaseException] = []

        def work():
            try:
                while not stop.is_set():
                    busy.listdir("/inbox")
                    time.sleep(0.2)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        worker = threading.Thread(target=work)
        worker.start()
        try:
            assert wait_until(lambda: not t_idle.is_active(), timeout=8)
            assert time.monotonic() - started >= 2
            time.sleep(2)  # another whole timeout: the busy one stays
            assert t_busy.is_active() and errors == []
        finally:
            stop.set()
            worker.join(10)
        assert busy.listdir("/") and errors == []
        assert len(messages(caplog, f"partner {name} from 127.0.0.1 disconnected: no SFTP request for 2 s")) == 1
        t_busy.close()
        t_idle.close()


def test_one_partner_has_at_most_its_cap_of_connections_in_session(site, caplog):
    name, key = partner(site)
    other, okey = partner(site)
    with server(site, max_sessions_per_partner=2) as srv, caplog.at_level(logging.INFO, "gateway.sftp"):
        held = [connect(srv.address, name, key) for _ in range(2)]
        with pytest.raises(REFUSED_AFTER_LOGIN):
            connect(srv.address, name, key)  # the third is refused ...
        refusal = messages(caplog, f"SFTP login of partner {name} from 127.0.0.1 refused")
        assert refusal and "2 of its connections already in session (max_sessions_per_partner = 2)" in refusal[0]
        assert all(sorted(sftp.listdir("/")) == ["inbox", "outbox"] for _, sftp in held)  # ... the two work on
        t, _ = connect(srv.address, other, okey)  # another partner is not counted with it
        t.close()
        held.pop()[0].close()
        assert wait_until(lambda: srv.connection_count == 1)
        t, sftp = connect(srv.address, name, key)  # a place again
        assert sftp.listdir("/outbox") == []
        t.close()
        held[0][0].close()
        assert wait_until(lambda: srv.connection_count == 0)


# --- settings ---------------------------------------------------------------------------------

def test_a_new_homes_gateway_toml_has_the_defaults(tmp_path):
    settings = config.load(tmp_path / "fresh")
    text = settings.config_file.read_text(encoding="utf-8")
    for key in ("idle_timeout_seconds = 300", "max_sessions_per_partner = 8", "max_global_failures = 50",
                "login_global_failures = 50", "login_global_pause_minutes = 5"):
        assert key in text
    assert Limits.from_settings(settings) == Limits()
    assert LoginRules.from_settings(settings) == LoginRules()


def test_sftp_settings_are_read_and_malformed_ones_refused(tmp_path):
    limits = Limits.from_settings(make_home(tmp_path / "a", sftp={
        "idle_timeout_seconds": 42, "max_sessions_per_partner": 3, "global_pause_seconds": 0.5, "max_upload_mb": 2}))
    assert (limits.idle_timeout_seconds, limits.max_sessions_per_partner, limits.global_pause_seconds,
            limits.max_upload_bytes) == (42, 3, 0.5, 2 * 1024 * 1024)
    for n, (key, bad) in enumerate([("idle_timeout_seconds", "soon"), ("idle_timeout_seconds", 0),
                                    ("max_sessions_per_partner", 2.5), ("max_sessions_per_partner", True),
                                    ("max_global_failures", -1), ("global_window_seconds", "inf")]):
        settings = make_home(tmp_path / f"b{n}", sftp={key: bad})
        with pytest.raises(ValueError, match=rf"\[sftp\] {key} must be a positive"):
            SftpServer(settings)

"""The service's rule server: one Saxon process its workers share
(rules/saxon_link.RuleServer), with the same verdicts, timeouts and restarts
as an engine's own child."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.core.config import Settings
from gateway.rules import saxon_link
from gateway.rules.rulesets import find_ruleset
from gateway.rules.saxon_link import RuleServer
from gateway.rules.schematron import RuleEngine
from invoice_support import DEFAULT_LINES, ubl_invoice

UBL = ubl_invoice(number="RS-1")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone too
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture
def server(tmp_path: Path):
    settings = Settings(home=tmp_path)
    srv = RuleServer((find_ruleset("ubl", settings).path,))
    srv.start()
    yield srv
    srv.stop()


def _engine(server: RuleServer, tmp_path: Path, **kw) -> RuleEngine:
    return RuleEngine(dataclasses.replace(Settings(home=tmp_path), rule_server=server.name), **kw)


def test_two_workers_share_one_saxon_with_the_same_verdicts(server, tmp_path):
    broken = UBL.replace(b"<cbc:DocumentCurrencyCode>EUR<", b"<cbc:DocumentCurrencyCode>EUX<", 1)
    with _engine(server, tmp_path) as a, _engine(server, tmp_path) as b, RuleEngine(Settings(home=tmp_path)) as own:
        results: dict[str, object] = {}
        threads = [threading.Thread(target=lambda k=k, e=e, x=x: results.__setitem__(k, e.check("ubl", x)))
                   for k, e, x in (("a", a, UBL), ("b", b, broken))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert results["a"].ran and not results["a"].errors
        assert results["b"].ran and results["b"].errors
        assert a.pid == b.pid == server.proc.pid  # one Saxon process for both
        mine = own.check("ubl", broken)  # an engine's own child says the same
        assert own.pid != server.proc.pid
        assert [(f.rule, f.location) for f in results["b"].errors] == [(f.rule, f.location) for f in mine.errors]


def test_time_spent_behind_another_workers_document_is_not_counted(server, tmp_path):
    long_one = ubl_invoice(lines=DEFAULT_LINES[:1] * 15000)  # seconds of rules
    with _engine(server, tmp_path) as a, _engine(server, tmp_path, timeout=1.0) as b:
        assert a.check("ubl", UBL).ran and b.check("ubl", UBL).ran  # both connected, rules compiled
        first = threading.Thread(target=a.check, args=("ubl", long_one))
        first.start()
        time.sleep(0.3)  # the server is on the long document
        started = time.monotonic()
        result = b.check("ubl", UBL)
        waited = time.monotonic() - started
        first.join(120)
        assert result.ran, result.findings  # a 1 s limit, yet it waited longer: behind, not on, its document
        assert waited > 1.0 and server.proc.pid == a.pid  # nobody was killed


def test_a_server_that_died_is_replaced_and_the_document_retried(server, tmp_path, monkeypatch):
    monkeypatch.setattr(saxon_link, "RESTART_SPACING", 0.0)  # it died at once, but of the test's hand
    with _engine(server, tmp_path) as eng:
        assert eng.check("ubl", UBL).ran
        first = server.proc.pid
        server.proc.kill()
        server.proc.wait()
        threading.Timer(0.5, server.ensure).start()  # the service's next turn
        result = eng.check("ubl", UBL)
        assert result.ran and server.proc.pid != first and server.restarts == 1


def test_a_document_that_overruns_kills_the_server_and_only_it_fails(server, tmp_path, monkeypatch):
    monkeypatch.setattr(saxon_link, "RESTART_SPACING", 0.0)
    big = ubl_invoice(lines=DEFAULT_LINES[:1] * 1000)  # about 0.3 s of rules
    with _engine(server, tmp_path) as eng:
        assert eng.check("ubl", UBL).ran  # compiled: the timeout is the document's alone
        victim = server.proc.pid
        eng.timeout = 0.05
        result = eng.check("ubl", big)
        assert not result.ran and [f.code for f in result.findings] == ["ERR_VALIDATEUR"]
        assert "0.05 s" in result.findings[0].message
        server.proc.wait(timeout=10)  # killed: a transform cannot be interrupted
        assert server.ensure() and server.proc.pid != victim
        eng.timeout = 30
        assert eng.check("ubl", UBL).ran


def test_a_server_that_dies_at_once_is_not_restarted_in_a_loop(server, monkeypatch):
    monkeypatch.setattr(saxon_link, "RESTART_SPACING", 1.0)
    server.proc.kill()
    server.proc.wait()
    assert not server.ensure()  # died within a second of its start: a broken set-up, not a document
    time.sleep(1.1)
    assert server.ensure() and server.proc.poll() is None and server.restarts == 1


def test_no_server_is_err_validateur_never_a_pass(tmp_path, monkeypatch):
    monkeypatch.setattr(saxon_link, "CONNECT_WAIT", 0.3)
    eng = RuleEngine(dataclasses.replace(Settings(home=tmp_path), rule_server="gateway-rules-nobody-000000"))
    result = eng.check("ubl", UBL)
    assert not result.ran and result.findings[0].code == "ERR_VALIDATEUR"
    assert "rule server is not running" in result.findings[0].message


def test_saxon_unavailable_in_the_server_is_said_to_every_worker(tmp_path, monkeypatch):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "saxonche.py").write_text("raise ImportError('saxonche switched off by the test')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake))
    srv = RuleServer()
    srv.start()
    try:
        with _engine(srv, tmp_path) as eng:
            result = eng.check("ubl", UBL)
        assert not result.ran and result.findings[0].code == "ERR_VALIDATEUR"
        assert "saxonche switched off" in result.findings[0].message
    finally:
        srv.stop()


def test_the_server_leaves_with_the_service_that_started_it(tmp_path):
    """A service killed outright (no stop()) does not leave its Saxon behind."""
    code = ("import sys, time\nfrom gateway.rules.saxon_link import RuleServer\n"
            "s = RuleServer(); s.start(); print(s.proc.pid, flush=True); time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    assert _pid_alive(pid)
    parent.kill()
    parent.wait()
    end = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < end:
        time.sleep(0.1)
    assert not _pid_alive(pid)


# --- the service's side ----------------------------------------------------------------
@pytest.mark.parametrize(("value", "workers", "servers"), [(0, 2, 2), (1, 2, 1), (3, 2, 2), (2, 4, 2)])
def test_the_service_starts_one_rule_server_per_worker_or_as_configured(tmp_path, value, workers, servers):
    from gateway.runtime.procs import start_helpers

    settings = dataclasses.replace(Settings(home=tmp_path), workers=workers, rule_processes=value)
    started = start_helpers(settings)
    try:
        assert len(started.servers) == servers
        names = [started.for_worker(i) for i in range(workers)]
        assert len(set(names)) == servers and names[:servers] == [s.name for s in started.servers]
        assert all(s.proc.poll() is None for s in started.servers)
    finally:
        started.stop()
    assert all(s.proc is None for s in started.servers)


def test_no_rule_server_without_workers_or_without_rules(tmp_path):
    from gateway.runtime.procs import start_helpers

    assert start_helpers(dataclasses.replace(Settings(home=tmp_path), workers=0)) is None
    assert start_helpers(dataclasses.replace(Settings(home=tmp_path), workers=2, schematron=False)) is None


@pytest.mark.parametrize("bad", [-1, 1.5, "two", True])
def test_rule_processes_must_be_a_count(tmp_path, bad):
    from gateway.core import config

    (tmp_path / "gateway.toml").write_text(f"[validation]\nrule_processes = {bad!r}\n".replace("True", "true")
                                          .replace("'two'", '"two"'))
    with pytest.raises(ValueError, match=r"\[validation\] rule_processes must be 0"):
        config.load(tmp_path, create=False)


def test_workers_sharing_one_rule_server_judge_a_batch_as_before(home):
    from conftest import codes_of, drop, gateway_cli, report_for
    from invoice_support import cii_invoice

    drop(home, "ACME", "ubl.xml", ubl_invoice(number="S-1"))
    drop(home, "ACME", "cii.xml", cii_invoice())
    drop(home, "ACME", "bad.xml", UBL.replace(b"<cbc:DocumentCurrencyCode>EUR<", b"<cbc:DocumentCurrencyCode>EUX<", 1))
    r = gateway_cli("run", "--once", home=home,
                    env={"GATEWAY_INTAKE_WORKERS": "2", "GATEWAY_VALIDATION_RULE_PROCESSES": "1"})
    assert r.returncode == 0, r.stderr
    assert report_for(home, "ACME", "ubl.xml")["state"] == "IN_INTEGRE"
    assert report_for(home, "ACME", "cii.xml")["state"] == "IN_INTEGRE"
    bad = report_for(home, "ACME", "bad.xml")
    assert bad["state"] == "IN_REJETE" and "REJ_SEMAN" in codes_of(bad)

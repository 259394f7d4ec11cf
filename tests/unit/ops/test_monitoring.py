"""/healthz and /metrics over real stores: SQLite, and PostgreSQL when CI
gives one (the metrics' SQL differs by dialect: seconds between two times,
the day of a time)."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PgDatabase, TEST_TOML, drop, home_with
from disk_support import MB, disk  # noqa: F401 - disk is a fixture
from gateway.core import config
from gateway.ops import monitoring
from gateway.ops.web import create_app
from gateway.runtime.beacon import Beacon, beacon_dir, read_beacons
from gateway.runtime.service import Gateway
from gateway.store import db
from gateway.store.repository import NewFlow, Store, new_flow_id
from invoice_support import ubl_invoice
from test_web import _Served, get


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_home(request, tmp_path):
    pg = PgDatabase() if request.param == "postgres" else None
    toml = TEST_TOML + (f'[store]\ndatabase_url = "{pg.url}"\n' if pg else "")
    yield home_with(tmp_path / "home", toml)
    db.dispose_all()
    if pg is not None:
        pg.close()


def _deposit_some(s) -> None:
    drop(s, "ACME", "ok-1.xml", ubl_invoice(number="M-1"))
    drop(s, "ACME", "ok-2.xml", ubl_invoice(number="M-2"))
    drop(s, "ACME", "empty.xml", b"")
    drop(s, "OTHER", "broken.xml", b"<Invoice><x>")
    drop(s, "OTHER", "again-empty.xml", b"")
    Gateway(s, once=True).run()


def _queue(s, name: str, back: timedelta, attempts: int = 0) -> str:
    at = db.utcnow() - back
    fid = new_flow_id(at)
    st = Store(s)
    st.record_received([NewFlow(fid, "ACME", "folder", name, fid * 2, 10, at, f"/nowhere/{fid}.bin")])
    for _ in range(attempts):  # a worker took it and failed, each time
        st.claim("h:1:w0", limit=100)
        st.release([fid], tried=True)
    return fid


def _metrics(text: str) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_read_the_store_at_each_scrape(store_home):
    s = store_home
    _deposit_some(s)
    m = _metrics(monitoring.metrics_text(monitoring.registry_for(s)).decode())
    assert m["gateway_store_up"][()] == 1
    assert m["gateway_flows"] == {(("partner", "ACME"), ("state", "IN_INTEGRE")): 2,
                                  (("partner", "ACME"), ("state", "IN_REJETE")): 1,
                                  (("partner", "OTHER"), ("state", "IN_REJETE")): 2}
    assert m["gateway_rejections_total"] == {(("code", "IRR_VIDE_F"),): 2, (("code", "IRR_SYNTAX"),): 1}
    assert m["gateway_backlog_flows"] == {(("queue", "queued"),): 0, (("queue", "running"),): 0}
    # every flow counted once in the histogram, from its stored times; the buckets are cumulative
    count = m["gateway_flow_processing_seconds_count"][()]
    buckets = m["gateway_flow_processing_seconds_bucket"]
    assert count == 5 and buckets[(("le", "+Inf"),)] == 5
    ordered = [v for _, v in sorted(((float(dict(k)["le"]), v) for k, v in buckets.items()))]
    assert ordered == sorted(ordered) and 0 < m["gateway_flow_processing_seconds_sum"][()] < 5 * 600
    assert set(m["gateway_pieces"]) == {(("status", "MISE_A_DISPOSITION"),)}
    assert {dict(k)["folder"] for k in m["gateway_disk_free_bytes"]} == {"inbox", "archive", "work", "outbox"}
    assert all(v > 0 for v in m["gateway_disk_free_bytes"].values())
    # a new flow shows at the next scrape: nothing is cached
    _queue(s, "late.xml", timedelta(hours=2))
    m = _metrics(monitoring.metrics_text(monitoring.registry_for(s)).decode())
    assert m["gateway_backlog_flows"][(("queue", "queued"),)] == 1
    assert 7000 < m["gateway_backlog_oldest_seconds"][()] < 7300 and m["gateway_stuck_flows"][()] == 1
    assert m["gateway_flows"][(("partner", "ACME"), ("state", "IN_RECU"))] == 1


def test_healthz_is_ok_then_degraded_by_stuck_and_failing_flows(store_home):
    s = store_home
    _deposit_some(s)
    status, body = monitoring.health(s)
    assert (status, body["status"], body["stuck"]) == (200, "ok", 0) and "reasons" not in body
    failing = _queue(s, "poison.xml", timedelta(seconds=1), attempts=3)  # first: its claims take it alone
    stuck = _queue(s, "waiting.xml", timedelta(minutes=20))
    status, body = monitoring.health(s)
    assert status == 503 and body["status"] == "degraded"
    by_check = {r["check"]: r for r in body["reasons"]}
    assert by_check["stuck_flows"]["flows"] == [stuck] and by_check["stuck_flows"]["count"] == 1
    assert by_check["worker_failing"]["flows"] == [failing]
    assert "1 flow(s) tried 3 times or more without an outcome" == by_check["worker_failing"]["message"]


def test_thresholds_are_settings(tmp_path):
    s = home_with(tmp_path / "home", TEST_TOML + "[monitoring]\nstuck_minutes = 60\nstuck_flows_max = 1\n"
                  "flow_attempts = 5\n")
    _queue(s, "b.xml", timedelta(minutes=30), attempts=3)
    _queue(s, "a.xml", timedelta(minutes=90))
    assert monitoring.health(s)[0] == 200  # one stuck allowed, the other not old enough; 3 tries < 5
    _queue(s, "c.xml", timedelta(minutes=61))
    status, body = monitoring.health(s)
    assert status == 503 and [r["check"] for r in body["reasons"]] == ["stuck_flows"]
    bad = home_with(tmp_path / "bad", TEST_TOML + "[monitoring]\nworker_failures = 0\n")
    with pytest.raises(ValueError, match=r"\[monitoring\] worker_failures must be a positive whole number"):
        monitoring.health(bad)


def test_disk_low_warns_before_intake_pauses(home, disk):  # noqa: F811
    disk.fill(home.outbox, free_mb=300)  # under the warning (2 x 200 MB), over the floor
    status, body = monitoring.health(home)
    assert status == 503 and [r["check"] for r in body["reasons"]] == ["disk_low"]
    assert body["reasons"][0]["folder"] == str(home.outbox) and "300 MB free" in body["reason"]
    disk.fill(home.outbox, free_mb=100)  # under the floor: paused, said once
    status, body = monitoring.health(home)
    assert [r["check"] for r in body["reasons"]] == ["intake_paused"]


def test_the_services_processes_tell_healthz_they_are_paused_or_failing(home):
    b = Beacon(home, "host:123:w0")
    b.update()
    assert monitoring.health(home)[0] == 200
    b.update(failures=3, last_error="OperationalError: database is locked")
    status, body = monitoring.health(home)
    assert status == 503 and body["reasons"] == [{
        "check": "worker_failing", "process": "host:123:w0",
        "message": "host:123:w0: 3 batches failed in a row: OperationalError: database is locked"}]
    main = Beacon(home, "host:123:main")
    main.update(paused="claiming failed: OSError: [Errno 5] Input/output error")
    assert {r["check"] for r in monitoring.health(home)[1]["reasons"]} == {"worker_failing", "intake_paused"}
    # a process that stopped takes its file away; one that died leaves a stale file, ignored
    main.remove()
    path = beacon_dir(home) / "host_123_w0.json"
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "updated_at": db.iso(db.utcnow() - timedelta(minutes=5))}))
    assert read_beacons(home) == () and monitoring.health(home)[0] == 200


def test_a_service_run_leaves_no_beacon_and_logs_one_line_per_flow(home, caplog):
    caplog.set_level(logging.INFO, logger="gateway.flow")
    drop(home, "ACME", "ok.xml", ubl_invoice(number="LOG-1"))
    drop(home, "ACME", "x\nflow F1 partner=EVIL.xml", b"")
    Gateway(home, once=True).run()
    lines = sorted(r.getMessage() for r in caplog.records if r.name == "gateway.flow")
    assert len(lines) == 2
    ok = next(x for x in lines if "file='ok.xml'" in x)
    assert " partner=ACME " in ok and "outcome=IN_INTEGRE pieces=1/1 codes=- ms=" in ok
    bad = next(x for x in lines if "IN_REJETE" in x)
    # the partner's file name is quoted: its newline cannot start a line of its own
    assert "\n" not in bad and "file='x\\nflow F1 partner=EVIL.xml'" in bad and "codes=IRR_VIDE_F" in bad
    assert not list(beacon_dir(home).glob("*.json"))


def test_metrics_and_healthz_over_http(tmp_path):
    s = home_with(tmp_path / "home", TEST_TOML)
    _deposit_some(s)
    with _Served(create_app(s)) as srv:
        status, headers, text = get(srv.url + "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=")
        assert 'gateway_flows{partner="ACME",state="IN_INTEGRE"} 2.0' in text
        status, _, body = get(srv.url + "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"


def test_metrics_ask_for_a_login_once_operators_exist_unless_open(tmp_path):
    from gateway.ops import operators

    s = home_with(tmp_path / "home", TEST_TOML)
    operators.add(s, "prometheus", "a long scrape password")
    with _Served(create_app(s)) as srv:
        assert get(srv.url + "/metrics")[0] == 401
        assert get(srv.url + "/metrics", auth=("prometheus", "a long scrape password"))[0] == 200
        assert get(srv.url + "/healthz")[0] == 200
    (s.home / "gateway.toml").write_text(TEST_TOML + "[monitoring]\nopen_metrics = true\n", encoding="utf-8")
    with _Served(create_app(config.load(s.home))) as srv:
        assert get(srv.url + "/metrics")[0] == 200 and get(srv.url + "/")[0] == 401

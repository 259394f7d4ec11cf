"""Monitoring: /healthz (ok, or degraded with its reasons) and /metrics
(the Prometheus text format, read from the store at each scrape).

/healthz answers 503 `degraded` with one reason per problem:
- `stuck_flows`: more than `[monitoring] stuck_flows_max` (0) flows leased
  past their lease or queued longer than `stuck_minutes` (`[web]`'s, 15);
- `intake_paused`: a folder below the free-space floor or read-only (the
  service's own test), or a process of `gateway run` that says it is paused
  (runtime/beacon.py: claims failing, workers waiting for room);
- `disk_low`: a folder with less than `disk_warn_mb` free (twice
  `[intake] min_free_mb` by default): said before intake pauses;
- `worker_failing`: a process whose batches failed `worker_failures` (3)
  times in a row, or flows tried `flow_attempts` (3) times without an outcome.

The metrics come from a custom collector that asks the store (and the file
systems) at scrape time: every worker process writes to the store, so any
process serving /metrics sees them all, and nothing is kept in memory.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.core.config import Settings, positive_number
from gateway.core.space import Floor, home_space, low_space
from gateway.runtime.beacon import read_beacons
from gateway.store import db, monitoring, reporting
from gateway.store.repository import Store

DEFAULT_STUCK_MINUTES = 15


@dataclass(frozen=True)
class HealthRules:
    stuck_minutes: float = DEFAULT_STUCK_MINUTES
    stuck_flows_max: int = 0
    disk_warn_mb: float = 400.0
    worker_failures: int = 3
    flow_attempts: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> "HealthRules":
        m, web = settings.section("monitoring"), settings.section("web")
        stuck = m.get("stuck_minutes", web.get("stuck_minutes", DEFAULT_STUCK_MINUTES))
        flows_max = m.get("stuck_flows_max", 0)
        if isinstance(flows_max, bool) or not isinstance(flows_max, int) or flows_max < 0:
            raise ValueError(f"[monitoring] stuck_flows_max must be a whole number, 0 or more, not {flows_max!r}")
        return cls(positive_number("monitoring", {"stuck_minutes": stuck}, "stuck_minutes", DEFAULT_STUCK_MINUTES),
                   flows_max,
                   positive_number("monitoring", m, "disk_warn_mb", 2 * settings.min_free_mb),
                   positive_number("monitoring", m, "worker_failures", 3, whole=True),
                   positive_number("monitoring", m, "flow_attempts", 3, whole=True))


def _reason(check: str, message: str, **more: Any) -> dict[str, Any]:
    return {"check": check, "message": message, **more}


def health(settings: Settings, *, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 `ok`, or 503 `degraded` with `reasons`
    (`reason`: the first one's message), or 503 `error` when the store does not answer."""
    now = now or db.utcnow()
    rules = HealthRules.from_settings(settings)
    try:
        counts = Store(settings).counts_by_state()
        n_stuck, stuck = reporting.stuck_flows(settings, now=now, queued_minutes=rules.stuck_minutes, limit=5)
        n_failing, failing = monitoring.failing_flows(settings, rules.flow_attempts, limit=5)
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        return 503, {"status": "error", "error": f"store unavailable: {type(exc).__name__}", "time": db.iso(now)}
    reasons = []
    if n_stuck > rules.stuck_flows_max:
        reasons.append(_reason("stuck_flows", f"{n_stuck} flow(s) stuck: leased past their lease, or queued more "
                               f"than {rules.stuck_minutes:g} min", count=n_stuck,
                               flows=[f.flow_id for f in stuck]))
    low = home_space(settings)
    if low is not None:
        reasons.append(_reason("intake_paused", f"paused: {low.reason()}", folder=str(low.folder)))
    beacons = read_beacons(settings, now)
    for b in beacons:
        if b.paused and (low is None or b.paused != low.reason()):
            reasons.append(_reason("intake_paused", f"{b.who} paused: {b.paused}", process=b.who))
    if low is None:
        warn = low_space((settings.archive, settings.work, settings.outbox), Floor(rules.disk_warn_mb))
        if warn is not None:
            reasons.append(_reason("disk_low", f"disk low: {warn.folder} has {warn.free_bytes // 2**20} MB free "
                                   f"(warning below {rules.disk_warn_mb:g} MB, intake pauses below "
                                   f"{settings.min_free_mb:g} MB)", folder=str(warn.folder),
                                   free_bytes=warn.free_bytes))
    for b in beacons:
        if b.failures >= rules.worker_failures:
            reasons.append(_reason("worker_failing", f"{b.who}: {b.failures} batches failed in a row"
                                   + (f": {b.last_error}" if b.last_error else ""), process=b.who))
    if n_failing:
        reasons.append(_reason("worker_failing", f"{n_failing} flow(s) tried {rules.flow_attempts} times or more "
                               "without an outcome", count=n_failing, flows=[f.flow_id for f in failing]))
    body: dict[str, Any] = {"status": "degraded" if reasons else "ok", "time": db.iso(now), "flows": counts,
                            "stuck": n_stuck}
    if reasons:
        body.update(reason=reasons[0]["message"], reasons=reasons)
    return (503 if reasons else 200), body


# --- /metrics ---------------------------------------------------------------------------------

def _folders(settings: Settings) -> dict[str, Path]:
    return {"inbox": settings.inbox, "archive": settings.archive, "work": settings.work, "outbox": settings.outbox}


def _free_bytes(folder: Path) -> int | None:
    while not folder.exists() and folder.parent != folder:  # measured where it will be made
        folder = folder.parent
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


class StoreCollector:
    """Reads the store at each scrape (prometheus_client's custom collector)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                            HistogramMetricFamily)

        s = self.settings
        up = GaugeMetricFamily("gateway_store_up", "1 when the store answered this scrape")
        try:
            flows = monitoring.flows_by_state_and_partner(s)
            codes = monitoring.rejection_codes(s)
            queue = monitoring.backlog(s)
            times = monitoring.durations(s)
            pieces = reporting.pieces_by_status(s)
            n_stuck, _ = reporting.stuck_flows(s, now=db.utcnow(), queued_minutes=HealthRules.from_settings(s)
                                               .stuck_minutes, limit=0)
        except Exception:  # noqa: BLE001 - the scrape still says the store is down, and the disks
            up.add_metric([], 0)
            yield up
        else:
            up.add_metric([], 1)
            yield up
            g = GaugeMetricFamily("gateway_flows", "Flows by state and partner", labels=["state", "partner"])
            for f in flows:
                g.add_metric([f.state, f.partner], f.count)
            yield g
            c = CounterMetricFamily("gateway_rejections", "Times each code refused a piece or a whole flow",
                                    labels=["code"])
            for code, n in sorted(codes.items()):
                c.add_metric([code], n)
            yield c
            b = GaugeMetricFamily("gateway_backlog_flows", "Flows not processed yet, by queue", labels=["queue"])
            b.add_metric(["queued"], queue.queued)
            b.add_metric(["running"], queue.running)
            yield b
            oldest = GaugeMetricFamily("gateway_backlog_oldest_seconds", "Age of the oldest flow still queued")
            age = (db.utcnow() - queue.oldest_queued).total_seconds() if queue.oldest_queued else 0.0
            oldest.add_metric([], max(0.0, age))
            yield oldest
            st = GaugeMetricFamily("gateway_stuck_flows", "Flows leased past their lease or queued too long")
            st.add_metric([], n_stuck)
            yield st
            h = HistogramMetricFamily("gateway_flow_processing_seconds",
                                      "Time from a flow's reception to its outcome recorded")
            h.add_metric([], [(f"{b:g}", n) for b, n in zip(times.bounds, times.cumulative)] + [("+Inf", times.count)],
                         sum_value=times.total_seconds)
            yield h
            p = GaugeMetricFamily("gateway_pieces", "Accepted pieces by status", labels=["status"])
            for status, n in pieces:
                p.add_metric([status], n)
            yield p
        d = GaugeMetricFamily("gateway_disk_free_bytes", "Free space on each folder's file system "
                              "(for an unprivileged writer)", labels=["folder"])
        for name, folder in _folders(s).items():
            free = _free_bytes(folder)
            if free is not None:
                d.add_metric([name], free)
        yield d
        floor = GaugeMetricFamily("gateway_disk_floor_bytes", "Free space below which intake pauses")
        floor.add_metric([], Floor.of(s).bytes_for(0))
        yield floor


def metrics_text(registry: Any) -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(registry)


def registry_for(settings: Settings) -> Any:
    """A registry holding only the store's collector (not the process's defaults)."""
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(settings))
    return reg


def metrics_open(settings: Settings) -> bool:
    """`[monitoring] open_metrics = true`: /metrics without a login (counts
    and partner names only); by default it asks for an operator's, as the pages do."""
    value = settings.section("monitoring").get("open_metrics", False)
    if not isinstance(value, bool):
        raise ValueError(f"[monitoring] open_metrics must be true or false, not {value!r}")
    return value

"""Workers: claim queued flows, evaluate them, write their reports, record
the outcome. Several may run (processes here, or other hosts sharing a
PostgreSQL store and the home); a flow is leased to one at a time.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from typing import Any

from . import codes, config, db, detect, wiring
from .config import Settings
from .pipeline import Evaluation, evaluate_file
from .records import Finding, Format
from .reports import report_dict, write_flow_report
from .store import ClaimedFlow, FlowResult, Store, worker_name

log = logging.getLogger("gateway.worker")

# Steps run after a flow is evaluated and before its report is written, e.g.
# routing valid pieces to recipients. Each gets (settings, claimed flow,
# evaluation, piece rows) and returns events; it may update piece rows' status.
AfterEvaluation = Callable[[Settings, ClaimedFlow, Evaluation, list[dict[str, Any]]], list[dict[str, Any]]]
AFTER_EVALUATION: list[AfterEvaluation] = []


def read_archived(path: str, limit: int) -> tuple[bytes | None, list[Finding]]:
    """The flow's bytes, never following a link a partner may have dropped."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        return None, [codes.finding("IRR_TYPE_F", f"Not a regular file (symbolic links are refused): {exc.strerror}",
                                    "Pas un fichier ordinaire (les liens symboliques sont refusés)", stage="file")]
    with os.fdopen(fd, "rb") as fh:
        if os.fstat(fh.fileno()).st_size > limit:
            return None, []
        return fh.read(limit + 1), []


def evaluate_flow(settings: Settings, c: ClaimedFlow) -> Evaluation:
    data, problems = read_archived(c.archive_path, settings.max_file_bytes)
    if problems:
        return Evaluation(Format.UNKNOWN, (), tuple(problems))
    if c.duplicate_of:
        fmt = detect.detect(data) if data else Format.UNKNOWN
        return Evaluation(fmt, (), (codes.finding(
            "DOUBLON", f"Same content as flow {c.duplicate_of}, already received; not processed again",
            f"Même contenu que le flux {c.duplicate_of}, déjà reçu ; non retraité",
            value=c.sha256, stage="reception"),))
    return evaluate_file(data, c.file_name, settings, size=c.size)


def prepare_flow(settings: Settings, c: ClaimedFlow) -> tuple[FlowResult, Callable[[], None]]:
    """One flow, start to report (the report is written by the returned
    callable). Any crash in a stage becomes a rejection with ERR_INTERNE;
    the file stays in the archive."""
    """One flow, start to report. Any crash in a stage becomes a rejection
    with ERR_INTERNE; the file stays in the archive."""
    try:
        ev = evaluate_flow(settings, c)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the service
        log.exception("flow %s: internal error", c.id)
        ev = Evaluation(Format.UNKNOWN, (), (codes.finding(
            "ERR_INTERNE", f"Internal error while processing ({type(exc).__name__}); the file is kept, "
            "operators are alerted", f"Erreur interne ({type(exc).__name__}) ; le fichier est conservé",
            stage="internal"),))
    state = ev.state
    pieces = [piece_row(c.id, v) for v in ev.verdicts]
    events: list[dict[str, Any]] = [dict(flow_id=c.id, piece_id=None, stage="validation", outcome=state.value,
                                         detail_json=json.dumps({"format": ev.format.value,
                                                                 "errors": [f.code for f in ev.file_findings]}))]
    for p in pieces:
        events.append(dict(flow_id=c.id, piece_id=p["id"], stage="validation",
                           outcome="accepted" if p["valid"] else "rejected",
                           detail_json=json.dumps({"codes": p["error_codes"]})))
    for step in AFTER_EVALUATION:
        try:
            events.extend(step(settings, c, ev, pieces))
        except Exception as exc:  # noqa: BLE001
            log.exception("flow %s: step %s failed", c.id, getattr(step, "__name__", step))
            events.append(dict(flow_id=c.id, piece_id=None, stage=getattr(step, "__name__", "step"),
                               outcome="error", detail_json=json.dumps({"error": repr(exc)})))
    report = report_dict(flow_id=c.id, partner=c.partner, file_name=c.file_name, sha256=c.sha256, size=c.size,
                         received_at=c.received_at, fmt=ev.format.value, state=state, verdicts=ev.verdicts,
                         file_findings=ev.file_findings, duplicate_of=c.duplicate_of, processed_at=db.utcnow())
    report["pieces"] = [dict(r, status=p["status"], piece_id=p["id"]) for r, p in zip(report["pieces"], pieces)]
    events.append(dict(flow_id=c.id, piece_id=None, stage="report", outcome="written",
                       detail_json=json.dumps({"dir": str(settings.reports_dir(c.partner))})))

    def write() -> None:
        write_flow_report(settings.reports_dir(c.partner), report,
                          platform_id=settings.section("platform").get("id", "GTW001"))

    return FlowResult(c.id, state.value, ev.format.value, tuple(pieces), tuple(events), True), write


def piece_row(flow_id: str, v) -> dict[str, Any]:  # noqa: ANN001
    return dict(id=f"{flow_id}-{v.index:03d}", flow_id=flow_id, index=v.index, name=v.name[:1024],
                format=v.format.value, valid=v.valid, status="DEPOSEE" if v.valid else "IRRECEVABLE",
                error_codes=",".join(sorted({f.code for f in v.errors}))[:1024],
                verdict_json=json.dumps(v.as_dict(), ensure_ascii=False, default=str))


def work_once(settings: Settings, store: Store, worker_id: str, stop: threading.Event | None = None,
              batch: int = 20) -> int:
    """Claim one batch and process it. Returns how many flows were done."""
    claimed = store.claim(worker_id, limit=batch)
    results, writes = [], []
    for i, c in enumerate(claimed):
        if stop is not None and stop.is_set():
            store.release([x.id for x in claimed[i:]])
            break
        result, write = prepare_flow(settings, c)
        results.append(result)
        writes.append(write)
    # Creating files costs disk latency, not CPU: write the batch's reports
    # side by side, and record the outcome only once every report is on disk.
    for fut in [_writers().submit(w) for w in writes]:
        fut.result()
    store.complete(results)
    return len(results)


_pool: ThreadPoolExecutor | None = None


def _writers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="report-writer")
    return _pool


def worker_main(home: str, role: str, stop, intake_done, overrides: dict[str, Any] | None = None) -> None:  # noqa: ANN001
    """Entry point of a worker process."""
    # Ctrl-C goes to the whole terminal group: the parent decides; SIGTERM
    # means finish the file in hand, then leave.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    local_stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: local_stop.set())
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = config.load(home, create=False, **(overrides or {}))
    wiring.install(settings)
    worker_id = worker_name(role)  # this process's own pid, so a restart can tell it is gone
    store = Store(settings)

    class _Either:
        def is_set(self) -> bool:
            return stop.is_set() or local_stop.is_set()

    either = _Either()
    while not either.is_set():
        n = work_once(settings, store, worker_id, either)
        if n == 0:
            if intake_done.is_set() and store.queued() == 0:
                break
            stop.wait(0.1)
    db.dispose_all()


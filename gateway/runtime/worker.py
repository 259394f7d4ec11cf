"""Workers: claim queued flows, evaluate them, write their reports, record
the outcome. Several may run (processes here, or other hosts sharing a
PostgreSQL store and the home); a flow is leased to one at a time.
"""
from __future__ import annotations

import gc
import json
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gateway.core import codes
from gateway.store import db
from gateway.pipeline import detect
from gateway.lifecycle import new_pieces, status_in, status_apply
from gateway.lifecycle.machine import Machine
from gateway.routing.addressees import require_addressee
from gateway.routing.checks import duplicate
from gateway.routing.links import resolve_links
from gateway.routing.numbers import enforce_uniqueness, numbers_wanted
from gateway.routing.parties import new_piece
from gateway.routing.rights import check_deposits
from gateway.store.pieces import register_numbers, release_numbers
from gateway.lifecycle.notices import flush_notices
from gateway.core.config import Settings
from gateway.pipeline.evaluate import Evaluation, evaluate_file
from gateway.core.records import Finding, Format
from gateway.outputs.registry import receives
from gateway.outputs.reports import report_dict, write_flow_report
from gateway.store.repository import ClaimedFlow, FlowResult, Store, worker_name
from gateway.store.rows import EventRow, validation_detail
from gateway.core.files import read_archived
from gateway.core.space import resource_fault
from gateway.runtime.space import Backoff, HandedBack, batch_failed, processing_space
from gateway.runtime.heartbeat import Heartbeat
from gateway.runtime.beacon import Beacon
from gateway.runtime.flowlog import log_outcomes

log = logging.getLogger("gateway.worker")

@dataclass(frozen=True)
class _Archived:
    """A claimed flow's bytes, read once for the whole of its evaluation."""

    data: bytes | None
    problems: tuple[Finding, ...]
    is_status_file: bool


def _read(settings: Settings, c: ClaimedFlow) -> _Archived:
    data, problems = read_archived(c.archive_path, settings.max_file_bytes)
    status = not c.duplicate_of and bool(data) and status_in.is_status_file(data)
    return _Archived(data, tuple(problems), status)


def evaluate_flow(settings: Settings, c: ClaimedFlow, store: Store, archived: _Archived) -> Evaluation:
    data, problems = archived.data, archived.problems
    if problems:
        return Evaluation(Format.UNKNOWN, (), tuple(problems))
    if c.duplicate_of:
        fmt = detect.detect(data) if data else Format.UNKNOWN
        return Evaluation(fmt, (), (duplicate(c.duplicate_of, c.sha256),))
    if archived.is_status_file:
        # a party's status changes, not an invoice: applied here, answered in the report
        res = status_apply.evaluate_status_file(settings, store, c, data)
        if isinstance(res, list):
            return Evaluation(Format.STATUS, (), tuple(res))
        return Evaluation(Format.STATUS, res)
    return evaluate_file(data, c.file_name, settings, size=c.size)


@dataclass
class _Flow:
    """One claimed flow between its evaluation and its result."""

    claimed: ClaimedFlow
    ev: Evaluation
    ids: list[str] = field(default_factory=list)
    links: list = field(default_factory=list)
    deposits: dict = field(default_factory=dict)  # piece id -> routing.rights.Deposit
    wanted: dict = field(default_factory=dict)
    failed: bool = False


def _internal_error(c: ClaimedFlow, exc: Exception) -> Evaluation:
    log.exception("flow %s: internal error", c.id)
    return Evaluation(Format.UNKNOWN, (), (codes.finding(
        "ERR_INTERNE", f"Internal error while processing ({type(exc).__name__}); the file is kept, "
        "operators are alerted", f"Erreur interne ({type(exc).__name__}) ; le fichier est conservé",
        stage="internal"),))


def _interrupted(c: ClaimedFlow, limit: int) -> Evaluation:
    """A flow whose processing stopped `limit` times without an outcome (its
    worker killed, out of memory, a crash in a native library, a lease run
    out, a batch that failed for a cause that was neither the disk nor the
    database; after the first, each time while held alone: Store.claim):
    refused without being read again, instead of stopping workers for ever.
    Its file stays in the archive for the operators, who may replay it once
    the cause is found."""
    log.error("flow %s (%s, %s): its processing stopped %d times without an outcome; refused without "
              "being read again (ERR_INTERROMPU)", c.id, c.partner, c.file_name, limit)
    return Evaluation(Format.UNKNOWN, (), (codes.finding(
        "ERR_INTERROMPU",
        f"Processing this file stopped {limit} times without an outcome; it is refused without being read "
        "again. The file is kept and operators are alerted",
        f"Le traitement de ce fichier s'est interrompu {limit} fois ; il est refusé sans être relu. "
        "Le fichier est conservé et les opérateurs sont alertés", stage="internal"),))


def _evaluate(settings: Settings, store: Store, machine, c: ClaimedFlow,  # noqa: ANN001
              archived: _Archived) -> _Flow:
    """Validate, then the checks that read the store: the piece's addressee,
    its depositor's right to deposit it, and the piece it continues. (Its number's uniqueness comes last, for the
    whole batch at once, so a refused piece never holds a number.)"""
    try:
        ev = evaluate_flow(settings, c, store, archived)
        f = _Flow(c, ev)
        if ev.format is not Format.STATUS and ev.verdicts:
            f.ids = [f"{c.id}-{v.index:03d}" for v in ev.verdicts]
            verdicts = require_addressee(ev.verdicts, machine)
            verdicts, f.deposits = check_deposits(settings, store, verdicts, f.ids, c.partner, machine)
            verdicts, f.links = resolve_links(settings, store, verdicts, f.ids, machine, f.deposits)
            f.ev = replace(ev, verdicts=tuple(verdicts))
            f.wanted = numbers_wanted(f.ev.verdicts, f.ids)
        return f
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the service
        return _Flow(c, _internal_error(c, exc), failed=True)


def prepare_flows(settings: Settings, store: Store, claimed: list[ClaimedFlow],
                  stop=None) -> tuple[list[FlowResult], list[Callable[[], None]], list[str]]:  # noqa: ANN001
    """A batch of flows, start to report: evaluate each, register the
    accepted invoice numbers in one transaction, route, and say what to
    write (deliveries, then the report) and what to record. Any crash in a
    stage becomes a rejection with ERR_INTERNE; the file stays in the
    archive. Returns results, writers, and the ids left unprocessed (a stop, or
    a status file that waits for the flows received before it)."""
    machine = Machine.load(settings)
    flows, left, applied = [], [], []
    for i, c in enumerate(claimed):
        if stop is not None and stop.is_set():
            left = [x.id for x in claimed[i:]]
            break
        if c.attempts > settings.max_attempts:
            flows.append(_Flow(c, _interrupted(c, c.attempts - 1), failed=True))
            continue
        try:
            archived = _read(settings, c)
        except OSError as exc:
            flows.append(_Flow(c, _internal_error(c, exc), failed=True))
            continue
        if archived.is_status_file and store.earlier_pending(c, settled=applied):
            # A status file is applied after every flow received before it: an
            # invoice earlier in this batch exists only once the batch is
            # recorded, another worker's once it finishes. The rest of the
            # batch goes back to the queue, in order, for the next lease.
            left = [x.id for x in claimed[i:]]
            break
        f = _evaluate(settings, store, machine, c, archived)
        flows.append(f)
        if f.ev.format is Format.STATUS:
            applied.append(c.id)  # its changes are committed as it goes
    wanted = {pid: key for f in flows for pid, key in f.wanted.items()}
    holders = register_numbers(store, wanted) if wanted else {}
    results, writes = [], []
    for f in flows:
        result, write = _finish(settings, store, machine, f, holders)
        results.append(result)
        writes.append(write)
    return results, writes, left


def _finish(settings: Settings, store: Store, machine, f: _Flow,  # noqa: ANN001
            holders: dict[str, str]) -> tuple[FlowResult, Callable[[], None]]:
    c, ev = f.claimed, f.ev
    routed = new_pieces.Routed()
    described = None  # each verdict as the report shows it, made once for the report and the piece row
    try:
        if f.ids and not f.failed:
            ev = replace(ev, verdicts=tuple(enforce_uniqueness(ev.verdicts, f.ids, f.wanted, holders)))
            described = [v.as_dict() for v in ev.verdicts]
            pieces = [new_piece(c.id, c.partner, pid, v, d,
                                machine.depositor(v.invoice.cadre) if v.invoice is not None else "supplier",
                                f.deposits.get(pid))
                      for pid, v, d in zip(f.ids, ev.verdicts, described)]
            routed = new_pieces.route_new_pieces(settings, c, ev.verdicts, pieces, f.links, machine)
    except Exception as exc:  # noqa: BLE001
        ev, routed, described = _internal_error(c, exc), new_pieces.Routed(), None
        try:  # the flow is refused whole: its numbers must not block a new sending
            release_numbers(store, [pid for pid in f.wanted if holders.get(pid) == pid])
        except Exception:  # noqa: BLE001
            log.exception("flow %s: could not release its invoice numbers", c.id)
    state = ev.state
    pieces = routed.pieces if ev.format is not Format.STATUS else []
    events = [EventRow(c.id, None, "validation", state.value,
                       validation_detail(ev.format.value, (x.code for x in ev.file_findings)))]
    for p in pieces:
        events.append(EventRow(c.id, p.id, "validation", "accepted" if p.valid else "rejected",
                               json.dumps({"codes": p.error_codes})))
    events.extend(routed.events)
    report = report_dict(flow_id=c.id, partner=c.partner, file_name=c.file_name, sha256=c.sha256, size=c.size,
                         received_at=c.received_at, fmt=ev.format.value, state=state, verdicts=ev.verdicts,
                         file_findings=ev.file_findings, duplicate_of=c.duplicate_of, processed_at=db.utcnow(),
                         described=described, replay_of=c.replay_of)
    if pieces:
        report["pieces"] = [dict(r, status=p.status, piece_id=p.id) for r, p in zip(report["pieces"], pieces)]
    events.append(EventRow(c.id, None, "report", "written", json.dumps({"dir": str(settings.reports_dir(c.partner))})))
    deliveries = routed.writes

    def write() -> None:
        for w in deliveries:  # delivered before the report says so
            w()
        write_flow_report(settings.reports_dir(c.partner), report,
                          platform_id=settings.platform_id, cdar=receives(settings, c.partner, "cdar"))

    return FlowResult(c.id, state.value, ev.format.value, tuple(pieces), tuple(events),
                      routed.changes, routed.notices), write


def work_once(settings: Settings, store: Store, worker_id: str, stop: threading.Event | None = None,
              batch: int = 20) -> int:
    """Claim one batch and process it. Returns how many flows were done."""
    claimed = store.claim(worker_id, limit=batch)
    try:
        results, writes, left = prepare_flows(settings, store, claimed, stop)
        if left:
            store.release(left, holder=worker_id)
        # Record the outcome only once every file is on disk. One after the
        # other: a pool of writer threads spent more time passing the GIL
        # around (400 futex calls a flow) than the writes cost.
        for w in writes:
            w()
        recorded = store.complete(results, holder=worker_id)  # a lease taken over meanwhile: its result is dropped
        log_outcomes(claimed, results, recorded)
    except Exception as exc:
        # A write or the store failed (disk full, rights, database gone): the
        # batch goes back to the queue at once, not after its lease; the same
        # files are rewritten under the same names next time. A full or
        # read-only disk, a database that could not serve, are not the flows'
        # fault: no attempt is counted. Anything else is counted, and its flows
        # are then tried one at a time (Store.claim): the one that fails alone
        # ends refused (ERR_INTERROMPU) instead of blocking the queue.
        fault = resource_fault(exc)
        tried = fault is None and not db.unavailable(exc)
        try:  # complete() is the last step: nothing of the batch is recorded as done
            store.release([c.id for c in claimed], tried=tried, holder=worker_id)
        except Exception:  # noqa: BLE001 - the lease will expire
            (log.warning if fault else log.exception)("could not hand the batch back; trying again before the next claim")
        if fault is not None:
            raise HandedBack([c.id for c in claimed], fault) from exc
        raise
    if any(r.format == Format.STATUS.value or r.changes for r in results):
        flush_notices(settings, store)  # status files of the changes just committed
    return len(results)


BATCH = 20  # flows a worker takes at once when the queue is long
IDLE_POLL = 0.05  # s between two looks at an empty queue (a count: no write)


def batch_size(store: Store, workers: int, full: bool) -> int:
    """How many flows to claim next (0: none waits). A long queue (the last
    batch was full): whole batches, the cheapest per flow. A short one: its
    share for each worker, so that a flow's report does not wait for 19 others
    to be evaluated (latency at a steady rate). The count is a read: an idle
    worker looks at the queue without the write a claim makes."""
    if full:
        return BATCH
    queued = store.queued()
    return min(BATCH, -(-queued // max(1, workers))) if queued else 0


def settle_for_work() -> None:
    """After start-up: what is loaded now lives as long as the process, so the
    cyclic collector stops walking it (gc.freeze), and it runs less often (a
    flow makes thousands of short-lived objects that reference counting
    frees anyway): a tenth of the collector's time, measured by bench/."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def worker_main(settings: Settings, role: str, stop, intake_done, faults=None,  # noqa: ANN001
                flow_log: bool = False) -> None:
    """Entry point of a worker process, with its parent's settings. `faults`:
    a queue that tells the parent why a batch failed (a --once run's reason to stop).
    `flow_log`: one INFO line per flow (runtime/flowlog.py), as the parent logs."""
    # Ctrl-C goes to the whole terminal group: the parent decides; SIGTERM
    # means finish the file in hand, then leave.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    local_stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: local_stop.set())
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if flow_log:
        logging.getLogger("gateway.flow").setLevel(logging.INFO)
    worker_id = worker_name(role, settings.host_name)  # this process's own pid, so a restart can tell it is gone
    store = Store(settings)
    beacon = Beacon(settings, worker_id)  # what /healthz reads of this worker
    heartbeat = Heartbeat(store, worker_id).start()  # keeps the leases of the flows in hand
    settle_for_work()

    class _Either:
        def is_set(self) -> bool:
            return stop.is_set() or local_stop.is_set()

    either = _Either()
    backoff = Backoff()
    full = False  # the last batch was a full one: the queue is long
    # after a failed batch: what it held goes back before the next claim, had
    # its hand-back failed too (the heartbeat would keep renewing those leases)
    handback = False
    while not either.is_set():
        low = processing_space(settings)
        if low is not None:
            beacon.update(paused=low.reason())
            if intake_done.is_set() and store.queued() == 0:
                break
            stop.wait(1.0)  # below the floor: the parent says so once; the queue waits
            continue
        try:
            if handback:
                store.release(None, holder=worker_id)
                handback = False
            size = batch_size(store, settings.workers, full)
            n = work_once(settings, store, worker_id, either, batch=size) if size else 0
            full = n == BATCH
        except Exception as exc:  # noqa: BLE001 - a worker that dies leaves the service without hands
            # the cause (a full disk...) may last: do not spin, and say it once per wait
            handback = True
            reason = batch_failed(log, f"worker {worker_id}", exc, backoff)
            if faults is not None:
                faults.put(reason)
            beacon.update(failures=backoff.failures, last_error=reason)
            stop.wait(backoff.delay)
            continue
        backoff.succeeded()
        beacon.update()
        if n == 0:
            if intake_done.is_set() and store.queued() == 0:
                break
            stop.wait(IDLE_POLL)
    heartbeat.stop()
    beacon.remove()
    db.dispose_all()


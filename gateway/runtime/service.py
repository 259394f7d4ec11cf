"""`gateway run`: intake, workers and channels, as a service or as a batch.

The main process watches the inboxes and claims complete files; worker
processes (forked from a fork server, so no thread or connection is inherited) evaluate and
report. SIGTERM or Ctrl-C stops intake; workers finish the file in hand.

A full or read-only disk never stops the service (runtime/space.py): intake
pauses below `[intake] min_free_mb` and resumes by itself, a batch that cannot
be written is handed back and tried again after a growing wait, and a
`--once` run that cannot move for `once_stall_seconds` stops with the reason
(RunSummary.stalled) after handing everything back.
"""
from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.store import db
from gateway.channels import registry
from gateway.channels.base import Channel
from gateway.core.config import Settings
from gateway.core.files import sweep_temps
from gateway.lifecycle.deadlines import apply_deadlines
from gateway.lifecycle.notices import flush_notices
from gateway.channels.folders import (CLAIM_BATCH, Candidate, ClaimFailed, Claimer, FolderWatcher, StabilityTracker,
                                      in_order, scan)
from gateway.core.space import fault_text, resource_fault
from gateway.outputs.registry import check_formats
from gateway.store.repository import Store, worker_name
from gateway.runtime.space import Backoff, IntakeGate, StallWatch, batch_failed, processing_space
from gateway.runtime.flags import SharedFlag
from gateway.runtime.heartbeat import Heartbeat
from gateway.runtime.beacon import Beacon
from gateway.runtime.procs import RuleServers, run_worker, start_helpers, worker_context

log = logging.getLogger("gateway.service")
RESTART_SPACING = 5.0  # s between two starts of a worker that dies at once (a broken set-up, not a flow)



@dataclass
class RunSummary:
    received: int = 0
    processed: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    stalled: str | None = None  # why a --once run stopped before the end ("no progress for 60 s: disk low on ...")


class Gateway:
    def __init__(self, settings: Settings, *, once: bool = False, progress: Callable[[int, int], None] | None = None,
                 rules: RuleServers | None = None):
        check_formats(settings)  # a status-file format no module provides stops the start, not each change
        self.settings = settings
        self.once = once
        self.store = Store(settings)
        self.claimer = Claimer(settings, self.store)
        self.tracker = StabilityTracker(settings)
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.progress = progress
        self.received = 0
        self._backlog = 0
        self._channels: list[Channel] = []
        # built before anything starts: a malformed [sftp] or [[remote]] setting stops the start, not a worker
        self._built: list[Channel] = [] if once else registry.channels_for(settings)
        self.gate = IntakeGate(settings, log)
        self.work_backoff = Backoff()  # processing in this process (workers = 0)
        self.watch = StallWatch(settings.once_stall_seconds)
        self.stalled: str | None = None
        self._recover_due = False  # a claim failed: its manifest is finished before the next one
        self._faults = None  # the worker processes' failures, for the stall watch
        self._inline_holder = worker_name("main", settings.host_name)  # with workers = 0, this process's leases
        self.beacon = Beacon(settings, self._inline_holder)  # what /healthz reads of intake (runtime/beacon.py)
        self._worker_started: dict[int, float] = {}  # when each worker slot was last started
        self.rules = rules  # the workers' Saxon processes (runtime/procs.start_helpers), stopped when run() ends

    # --- signals ---------------------------------------------------------------
    def install_signals(self) -> None:
        def _stop(signum, _frame):  # noqa: ANN001
            log.info("signal %s: stopping intake; finishing the files in hand", signum)
            self.stop.set()
            self.wake.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    # --- intake ----------------------------------------------------------------
    def _claim(self, ready: list[Candidate], *, drain: bool = False) -> int:
        """Claim files in the order they were written, a batch at a time (the
        order flows are received in: a status file comes after the invoices
        written before it, whatever batch they fall in)."""
        n = 0
        ready = in_order(ready)
        for i in range(0, len(ready), CLAIM_BATCH):
            if self.stop.is_set():
                break
            if not self._intake_open():
                self._keep(ready[i:])
                break
            batch = ready[i:i + CLAIM_BATCH]
            try:
                got = len(self.claimer.claim(batch))
            except ClaimFailed as exc:  # what was claimed is recorded; the rest waits in the inbox
                got = len(exc.claimed)
                self._claim_failed(exc)
                self._keep(batch)
            else:
                self.gate.claimed()
                for c in batch:
                    self.tracker.forget(c.path)
            n += got
            self.received += got
            if drain:
                self._drain_inline()
        return n

    def _claim_ready(self) -> int:
        if not self._intake_open():  # checked each turn, so a low disk is said even with nothing waiting
            return 0
        return self._claim(self.tracker.ready())

    def _keep(self, cands: list[Candidate]) -> None:
        """Files not claimed now (intake paused) wait in the inbox, watched."""
        for c in cands:
            self.tracker.observe(c)

    def _intake_open(self) -> bool:
        if not self.gate.open():
            return False
        if self._recover_due:
            return self._recover()
        return True

    def _claim_failed(self, exc: BaseException) -> None:
        self.gate.failed(exc)
        self.watch.failed(self.gate.fault or fault_text(exc))
        self._recover_due = True

    def _recover(self) -> bool:
        """Claims a crash or a failed write interrupted, and flows whose worker
        is gone. A resource fault (at start on a full disk) pauses intake."""
        try:
            recovered = self.claimer.recover()
            reaped = self.store.reap_dead_holders() + self.store.reap_expired()
        except Exception as exc:
            if resource_fault(exc) is None:
                raise
            self._claim_failed(exc)
            return False
        self._recover_due = False
        if recovered or reaped:
            log.warning("recovered %d interrupted claim(s), re-queued %d flow(s)", recovered, reaped)
        return True

    def _initial_scan(self) -> int:
        """Claim at once what is already old enough; the rest waits for stability."""
        old_ns = time.time_ns() - int(self.settings.stability_seconds * 1e9)
        old = []
        for c in scan(self.settings):
            if c.mtime_ns <= old_ns:
                old.append(c)
            else:
                self.tracker.observe(c)
        return self._claim(old, drain=True)

    def _rescan(self) -> None:
        for c in scan(self.settings):
            self.tracker.observe(c)

    # --- workers -----------------------------------------------------------------
    def _drain_inline(self) -> None:
        """With workers = 0, process in this process between intake batches."""
        if self.settings.workers != 0:
            return
        if self.work_backoff.remaining() > 0 or processing_space(self.settings) is not None:
            return  # a wait after a failure, or the disk below its floor: the queue waits
        from gateway.runtime.worker import work_once  # here: with workers > 0 this process never evaluates

        try:
            while not self.stop.is_set() and work_once(self.settings, self.store, self._inline_holder, self.stop):
                self._report_progress()
        except Exception as exc:  # noqa: BLE001 - the batch went back to the queue; intake goes on
            self.watch.failed(batch_failed(log, "processing", exc, self.work_backoff))
        else:
            self.work_backoff.succeeded()

    def _keep_rule_server(self) -> None:
        try:
            if self.rules is not None and self.rules.ensure():
                log.warning("a rule server stopped (a document overran its time, or Saxon failed); started again")
        except OSError as exc:  # no process could be made now (EAGAIN, ENOMEM): the next turn tries again
            log.warning("a rule server could not be started: %s", exc)

    def _start_worker(self, i: int, stop_ev, intake_done) -> mp.Process:  # noqa: ANN001
        # the settings themselves: a worker works with exactly this process's, and its rule server
        settings = self.settings if self.rules is None else dataclasses.replace(
            self.settings, rule_server=self.rules.for_worker(i))
        p = worker_context().Process(target=run_worker, name=f"gateway-worker-{i}", daemon=False,
                                     args=(settings, f"w{i}", stop_ev, intake_done, self._faults,
                                           logging.getLogger("gateway.flow").isEnabledFor(logging.INFO)))
        p.start()
        self._worker_started[i] = time.monotonic()
        return p

    def _keep_workers(self, procs: list[mp.Process], stop_ev, intake_done) -> None:  # noqa: ANN001
        """A worker that died (killed, out of memory, a crash in a native
        library) is replaced, and what it held goes back to the queue at once;
        one that dies within RESTART_SPACING of its start waits that long."""
        for i, p in enumerate(procs):
            if p.is_alive() or p.exitcode == 0 or time.monotonic() - self._worker_started[i] < RESTART_SPACING:
                continue  # working, done (the end of a --once run), or to be started a little later
            log.warning("worker %s stopped (exit status %s); starting another", p.name, p.exitcode)
            self._reap()
            try:
                procs[i] = self._start_worker(i, stop_ev, intake_done)
            except OSError as exc:  # no process could be made now: the next turn tries again
                self._worker_started[i] = time.monotonic()
                log.warning("worker %s could not be started again: %s", p.name, exc)

    def _report_progress(self) -> None:
        if self.progress:  # this run's flows: those waiting at its start and those it received
            total = self._backlog + self.received
            self.progress(max(0, total - self.store.pending()), total)

    def _reap(self) -> int:
        """Leases whose holder is gone go back to the queue: at once those of
        this host's dead workers, any host's once their holder stopped renewing
        them (so a host that died leaves its flows to the others within a lease)."""
        try:
            n = self.store.reap_dead_holders() + self.store.reap_expired()
            n += self.claimer.recover(recent=True)  # a dead host's claim in flight, once it is stale
        except Exception:  # noqa: BLE001 - the intake must go on; the next reap tries again
            log.exception("re-queueing the flows of dead workers failed")
            return 0
        if n:
            log.warning("re-queued %d flow(s) whose worker stopped", n)
        return n

    def _life_cycle(self) -> None:
        """Deadlines run on the gateway's clock; pending status files are written."""
        try:
            done = apply_deadlines(self.settings, self.store)
            if done:
                log.info("applied %d deadline(s)", len(done))
            flush_notices(self.settings, self.store)
        except Exception as exc:  # noqa: BLE001 - the intake must go on
            if resource_fault(exc) is None:
                log.exception("life-cycle housekeeping failed")
            else:  # a full disk: said in one line; done again at the next turn
                log.warning("life-cycle housekeeping postponed: %s", fault_text(exc))

    def _tell_health(self) -> None:
        """Intake paused (and why), batches processed here failing in a row."""
        failures = max(self.gate.backoff.failures, self.work_backoff.failures)
        self.beacon.update(paused=self.gate.reason(), failures=failures, last_error=self.watch.fault)

    # --- a --once run ----------------------------------------------------------------
    def _once_done(self) -> bool:
        """Nothing left to claim, and (processing here) nothing left queued."""
        return len(self.tracker) == 0 and (self.settings.workers > 0 or self.store.queued() == 0)

    def _is_stalled(self) -> bool:
        """A --once run that cannot move: the reason is kept in `stalled`."""
        while self._faults is not None and not self._faults.empty():
            try:
                self.watch.failed(self._faults.get_nowait())
            except queue.Empty:
                break
        self.gate.open()  # the disk as it is now, intake over or not
        self.watch.moved((self.received, self.store.pending()))
        self.stalled = self.watch.stalled(self.gate.reason())
        return self.stalled is not None

    # --- the run -------------------------------------------------------------------
    def run(self) -> RunSummary:
        t0 = time.monotonic()
        if self.rules is None:  # (the CLI starts them before it imports the service)
            self.rules = start_helpers(self.settings)
        try:
            return self._run(t0)
        finally:
            if self.rules is not None:
                self.rules.stop()

    def _run(self, t0: float) -> RunSummary:
        self.settings.inbox.mkdir(parents=True, exist_ok=True)
        swept = sweep_temps([self.settings.outbox, self.settings.work])
        if swept:
            log.warning("removed %d temporary file(s) a stopped writer left", swept)
        self._recover()  # a full disk here pauses intake; it is done again before the first claim
        self._reap()
        self._life_cycle()  # status files a crash left unwritten, delays that ran out while stopped
        before = self.store.counts_by_state()
        self._backlog = self.store.pending()

        ctx = worker_context()
        stop_ev, intake_done = SharedFlag(ctx), SharedFlag(ctx)  # not Events: a killed worker would jam their set()
        self._faults = ctx.Queue() if self.settings.workers > 0 and self.once else None
        procs = [self._start_worker(i, stop_ev, intake_done) for i in range(self.settings.workers)]
        heartbeat = Heartbeat(self.store, self._inline_holder).start() if not procs else None
        watcher = None
        if not self.once:
            watcher = FolderWatcher(self.settings, self.tracker, self.wake)
            watcher.start()  # before the scan, so nothing falls between the two
            for ch in self._built:
                ch.start()
                self._channels.append(ch)
        try:
            self._initial_scan()
            self._drain_inline()
            last_scan = last_reap = last_life = time.monotonic()
            reap_every = self.settings.lease_seconds / 3  # a stopped worker's flows wait a lease at most, and this
            while not self.stop.is_set():
                if self.once and (self._once_done() or self._is_stalled()):
                    break
                self.wake.wait(self.tracker.next_ready_in(0.2 if self.once else 0.5))
                self.wake.clear()
                self._claim_ready()
                self._drain_inline()
                self._report_progress()
                self._tell_health()
                self._keep_rule_server()
                self._keep_workers(procs, stop_ev, intake_done)
                now = time.monotonic()
                if not self.once and now - last_scan >= self.settings.rescan_seconds:
                    self._rescan()
                    last_scan = now
                if not self.once and now - last_reap >= reap_every:
                    self._reap()
                    last_reap = now
                if not self.once and now - last_life >= 60:
                    self._life_cycle()
                    last_life = now
        finally:
            intake_done.set()
            for ch in self._channels:
                try:
                    ch.stop()
                except Exception:  # noqa: BLE001
                    log.exception("stopping channel %s", ch.name)
            if watcher:
                watcher.stop()
            if self.stop.is_set() or self.stalled:
                stop_ev.set()  # the workers hand back what they hold
            while any(p.is_alive() for p in procs):
                self._report_progress()
                self._keep_rule_server()
                if not stop_ev.is_set():  # a worker killed while the queue drains: the run still ends with it empty
                    self._keep_workers(procs, stop_ev, intake_done)
                if self.once and not stop_ev.is_set() and self._is_stalled():
                    stop_ev.set()
                for p in procs:
                    p.join(timeout=0.2)
            if not self.stalled:
                self._drain_inline()
            self._report_progress()
            if heartbeat is not None:
                heartbeat.stop()
            self.beacon.remove()
        after = self.store.counts_by_state()
        # flows still waiting (a stop) are not this run's outcome: IN_RECU is left out
        by_state = {k: after.get(k, 0) - before.get(k, 0) for k in after
                    if k != "IN_RECU" and after.get(k, 0) != before.get(k, 0)}
        processed = sum(by_state.values())
        db.dispose_all()
        return RunSummary(self.received, processed, by_state, time.monotonic() - t0, self.stalled)

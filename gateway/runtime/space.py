"""Living through a full or read-only disk (gateway.core.space says what is
low and which errors are resource faults).

- Intake pauses while the home's folders are below their free-space floor,
  with one line when it pauses and one when it resumes (`IntakeGate`).
- A batch that cannot be written is handed back to the queue (`HandedBack`)
  and tried again after a wait that doubles from 1 s to 60 s (`Backoff`):
  one log line per step, a traceback only for an unexpected error.
- A `--once` run stops when nothing moved for `[intake] once_stall_seconds`
  while something blocks it (`StallWatch`), with that reason.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from gateway.core.config import Settings
from gateway.core.space import LowSpace, fault_text, home_space, resource_fault


class Backoff:
    """Waits that double after each failure, from `first` to `cap` seconds,
    and start again after a success."""

    def __init__(self, first: float = 1.0, cap: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.first, self.cap, self.clock = first, cap, clock
        self.delay = 0.0
        self.until = 0.0
        self.failures = 0  # in a row, for the health beacon

    def failed(self) -> float:
        """One more failure: the wait before the next try."""
        self.failures += 1
        self.delay = self.first if self.delay == 0 else min(self.cap, self.delay * 2)
        self.until = self.clock() + self.delay
        return self.delay

    def succeeded(self) -> None:
        self.delay = self.until = 0.0
        self.failures = 0

    def remaining(self) -> float:
        return max(0.0, self.until - self.clock())


class HandedBack(Exception):
    """A batch given back to the queue because the device is at fault (a full
    disk, a read-only outbox): not a failed attempt of its flows."""

    def __init__(self, flows: Sequence[str], cause: BaseException):
        self.flows = tuple(flows)
        self.reason = fault_text(cause)
        super().__init__(f"{len(self.flows)} flow(s) handed back: {self.reason}")
        self.__cause__ = cause


def _flows_text(flows: Sequence[str]) -> str:
    return ", ".join(flows[:3]) + (f" and {len(flows) - 3} more" if len(flows) > 3 else "")


def batch_failed(log: logging.Logger, who: str, exc: BaseException, backoff: Backoff,
                 unexpected: str = "a batch failed, it is back in the queue") -> str:
    """Log a batch that failed, once per back-off step, and start the wait.
    A resource fault is one line without a traceback; anything else keeps its
    traceback. Returns the reason in one line."""
    delay = backoff.failed()
    reason = fault_text(exc)
    if isinstance(exc, HandedBack):
        log.warning("%s: %d flow(s) handed back (%s): %s; next try in %.0f s",
                    who, len(exc.flows), _flows_text(exc.flows), reason, delay)
    elif resource_fault(exc) is not None:
        log.warning("%s: %s; next try in %.0f s", who, reason, delay)
    else:
        log.error("%s: %s; next try in %.0f s", who, unexpected, delay, exc_info=exc)
    return reason


def processing_space(settings: Settings) -> LowSpace | None:
    """The folders processing writes to (work/, outbox/) below their floor:
    queued flows wait (the intake's alert says why)."""
    return home_space(settings, (settings.work, settings.outbox))


class IntakeGate:
    """Whether intake may claim now: not while the home's folders are below
    their floor, nor while waiting after a claim that failed."""

    def __init__(self, settings: Settings, log: logging.Logger):
        self.settings, self.log = settings, log
        self.backoff = Backoff()
        self.low: LowSpace | None = None
        self.fault: str | None = None

    def open(self) -> bool:
        if self.backoff.remaining() > 0:
            return False
        low = home_space(self.settings)
        if low is not None and self.low is None:
            self.log.error("intake paused: %s; files stay in the inbox until space returns", low.reason())
        elif low is None and self.low is not None:
            self.log.warning("intake resumed: %s has room again", self.low.folder)
        self.low = low
        return low is None

    def failed(self, exc: BaseException) -> None:
        """A claim (or the recovery before one) failed: wait, then try again."""
        self.fault = batch_failed(self.log, "intake paused, claiming failed", exc, self.backoff,
                                  unexpected="an unexpected error")

    def claimed(self) -> None:
        if self.fault is not None:
            self.log.warning("intake resumed: claiming works again")
        self.fault = None
        self.backoff.succeeded()

    def reason(self) -> str | None:
        """Why intake is paused now, if it is."""
        if self.low is not None:
            return self.low.reason()
        return self.fault if self.backoff.remaining() > 0 else None


class StallWatch:
    """A `--once` run's progress (files received, flows finished). It has
    stalled when nothing moved for `seconds` while something blocks it: the
    disk low, or a failure since the last progress. A slow flow alone is no
    stall."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.clock = seconds, clock
        self.mark: object = None
        self.since = clock()
        self.fault: str | None = None
        self.fault_at = float("-inf")

    def moved(self, mark: object) -> None:
        if mark != self.mark:
            self.mark, self.since = mark, self.clock()

    def failed(self, reason: str) -> None:
        self.fault, self.fault_at = reason, self.clock()

    def stalled(self, blocked: str | None = None) -> str | None:
        """The one-line reason to stop, or None to go on."""
        if blocked is None and self.fault_at >= self.since:
            blocked = self.fault
        if blocked is None or self.clock() - self.since < self.seconds:
            return None
        return f"no progress for {self.seconds:.0f} s: {blocked}"

"""A flag the service raises and its worker processes read, that a worker
killed at any moment cannot jam.

multiprocessing.Event is a condition behind a lock: a worker killed (SIGKILL,
the OOM killer) while waiting on it stays counted as a sleeper, and the next
set() waits forever for it to wake, so the service hung at its stop (found
by bench/faults.py: every trial that killed an idle worker). This flag is one
byte of shared memory without a lock; waiting on it is polling it.
"""
from __future__ import annotations

import time
from multiprocessing.context import BaseContext

_POLL = 0.05  # seconds between two looks while waiting


class SharedFlag:
    """Same calls as multiprocessing.Event (set, is_set, wait); passed to a
    worker as an argument of its Process."""

    def __init__(self, ctx: BaseContext):
        self._value = ctx.RawValue("b", 0)

    def set(self) -> None:
        self._value.value = 1

    def is_set(self) -> bool:
        return bool(self._value.value)

    def wait(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while not self._value.value:
            left = _POLL if end is None else end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, _POLL))
        return True

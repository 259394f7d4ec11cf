"""The lease heartbeat: a worker keeps the flows it holds while it works.

A lease is short (`[intake] lease_seconds`, 20 s by default) so that the
flows of a worker that stopped (killed, its host gone) are taken over soon by
any host; a worker that is only slow (a large lot, a long validation) keeps
them by renewing, every third of a lease, from a small thread of its own: one
UPDATE for every flow it holds, whatever the flow in hand is doing.
"""
from __future__ import annotations

import logging
import threading

from gateway.store.repository import Store

log = logging.getLogger("gateway.worker")


class Heartbeat:
    """Renews `holder`'s leases every `every` seconds (a third of the lease
    unless given) until stopped. A renewal that fails (the database away for
    a moment) is tried again at the next beat; two beats remain before the
    lease runs out."""

    def __init__(self, store: Store, holder: str, every: float | None = None):
        self.store = store
        self.holder = holder
        self.every = every if every is not None else store.settings.lease_seconds / 3
        self.beats = 0  # renewals made (the tests read it)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-heartbeat {holder}", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(5.0, self.every))

    def __enter__(self) -> "Heartbeat":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.store.renew(self.holder)
                self.beats += 1
            except Exception:  # noqa: BLE001 - the next beat tries again; the worker goes on
                log.warning("%s: could not renew its leases; trying again in %.0f s", self.holder, self.every,
                            exc_info=True)

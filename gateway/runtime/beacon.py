"""What the running service says of itself, for /healthz: each process of
`gateway run` (the intake and every worker) keeps one small JSON file in
`work/health/` saying whether it is paused and why, and how many batches
failed in a row with the last reason.

A file is rewritten when what it says changes, and at least every
REFRESH_SECONDS so a reader can tell a live process from a dead one (a file
older than STALE_SECONDS is ignored); a process that stops removes its own.
A write that fails (the disk full) is skipped: the beacon is advice, the
disk check in /healthz sees that case anyway.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from gateway.core.clock import as_utc, iso, utcnow
from gateway.core.config import Settings
from gateway.core.files import atomic_write

REFRESH_SECONDS = 30.0
STALE_SECONDS = 3 * REFRESH_SECONDS
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def beacon_dir(settings: Settings) -> Path:
    return settings.work / "health"


@dataclass(frozen=True)
class BeaconState:
    who: str  # host:pid:role, as it holds leases
    updated_at: datetime
    paused: str | None  # why this process claims or processes nothing now
    failures: int  # batches failed in a row
    last_error: str | None


class Beacon:
    """One process's file; `update` is cheap when nothing changed."""

    def __init__(self, settings: Settings, who: str, clock=time.monotonic):  # noqa: ANN001
        self.who = who
        self.path = beacon_dir(settings) / f"{_UNSAFE.sub('_', who)}.json"
        self.clock = clock
        self._said: tuple | None = None
        self._at = float("-inf")

    def update(self, *, paused: str | None = None, failures: int = 0, last_error: str | None = None) -> None:
        said = (paused, failures, last_error if failures else None)
        now = self.clock()
        if said == self._said and now - self._at < REFRESH_SECONDS:
            return
        body = {"who": self.who, "updated_at": iso(utcnow()), "paused": said[0], "failures": said[1],
                "last_error": said[2]}
        try:
            atomic_write(self.path, json.dumps(body).encode("utf-8"))
        except OSError:
            return  # tried again at the next update
        self._said, self._at = said, now

    def remove(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass


def read_beacons(settings: Settings, now: datetime | None = None) -> tuple[BeaconState, ...]:
    """The live processes' states (files refreshed within STALE_SECONDS)."""
    now = now or utcnow()
    out = []
    try:
        files = sorted(beacon_dir(settings).glob("*.json"))
    except OSError:
        return ()
    for path in files:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            at = as_utc(datetime.fromisoformat(str(raw["updated_at"]).replace("Z", "+00:00")))
            state = BeaconState(str(raw["who"]), at, raw.get("paused") or None, int(raw.get("failures") or 0),
                                raw.get("last_error") or None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # half-written by hand, or gone meanwhile
        if now - state.updated_at <= timedelta(seconds=STALE_SECONDS):
            out.append(state)
    return tuple(out)

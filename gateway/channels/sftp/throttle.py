"""The SFTP server's limits (`[sftp]` in gateway.toml) and its guard against
password guessing: failed logins counted per (remote IP, user) and per IP,
and a lockout that doubles with each repeat."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from gateway.core.config import MB, Settings


@dataclass(frozen=True)
class Limits:
    """The `[sftp]` section's limits, with their defaults."""

    max_connections: int = 200
    max_per_ip: int = 64
    login_grace_seconds: float = 30.0  # unauthenticated connections are closed after this
    max_auth_tries: int = 6  # per connection
    max_auth_failures: int = 5  # per (IP, user) within the window before a lockout
    failure_window_seconds: float = 600.0
    lockout_seconds: float = 60.0  # doubles with each lockout ...
    lockout_max_seconds: float = 3600.0  # ... up to this
    max_sessions: int = 4  # SFTP sessions per connection
    max_upload_bytes: int = 1024 * MB
    stale_upload_seconds: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        sec = settings.section("sftp")
        kw = {}
        for name, default in cls.__dataclass_fields__.items():
            key = "max_upload_mb" if name == "max_upload_bytes" else name
            if key in sec:
                val = float(sec[key]) * (MB if key == "max_upload_mb" else 1)
                kw[name] = type(default.default)(val)
        return cls(**kw)


class LoginThrottle:
    """Failed logins per (remote IP, user) and per IP; lockout with back-off."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic):
        self.limits, self.clock = limits, clock
        self._lock = threading.Lock()
        self._state: dict[tuple[str, str], list[float]] = {}  # key -> [count, last, locked_until, lockouts]

    def _keys(self, ip: str, user: str):
        # A whole IP gets a larger allowance, so spraying user names is bounded too.
        return ((ip, "\0user:" + user), self.limits.max_auth_failures), ((ip, "\0ip"), self.limits.max_auth_failures * 4)

    def locked(self, ip: str, user: str) -> float:
        """Seconds of lockout left for this IP and user (0 when free)."""
        now = self.clock()
        with self._lock:
            return max([self._state.get(k, [0, 0, 0, 0])[2] - now for k, _ in self._keys(ip, user)] + [0.0])

    def failed(self, ip: str, user: str) -> float:
        """Count a failure; return the lockout it started (0 if none)."""
        now, lim = self.clock(), self.limits
        started = 0.0
        with self._lock:
            if len(self._state) > 10000:
                self._prune(now)
            for key, allowed in self._keys(ip, user):
                st = self._state.setdefault(key, [0, now, 0.0, 0])
                if now - st[1] > lim.failure_window_seconds:
                    st[0] = 0
                st[0] += 1
                st[1] = now
                if st[0] >= allowed:
                    st[3] += 1
                    wait = min(lim.lockout_seconds * 2 ** (st[3] - 1), lim.lockout_max_seconds)
                    st[0], st[2] = 0, now + wait
                    started = max(started, wait)
        return started

    def succeeded(self, ip: str, user: str) -> None:
        with self._lock:
            self._state.pop((ip, "\0user:" + user), None)

    def _prune(self, now: float) -> None:
        horizon = max(self.limits.failure_window_seconds, self.limits.lockout_max_seconds)
        for key in [k for k, st in self._state.items() if now - st[1] > horizon and st[2] < now]:
            del self._state[key]

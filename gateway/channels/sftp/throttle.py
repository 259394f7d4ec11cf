"""The SFTP server's limits (`[sftp]` in gateway.toml) and its guard against
password guessing.

Only passwords can be guessed: a key login is judged by its key alone and
nothing here ever refuses one, so nobody sharing a partner's address (a NAT,
a shared host) can lock its key out. Wrong passwords are counted per (remote
IP, user tried) and, with a larger allowance, per IP; past them, that pair
(or IP) gets no password checked for a lockout that doubles with each
repeat. Too many wrong passwords from everywhere within a short window
pause every password check for a while: many addresses and names, each
under its own limit, get no further together.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from gateway.core.config import MB, Settings, positive_number


@dataclass(frozen=True)
class Limits:
    """The `[sftp]` section's limits, with their defaults."""

    max_connections: int = 200
    max_per_ip: int = 64
    max_sessions_per_partner: int = 8  # logged-in connections of one partner at once; the next login is refused
    login_grace_seconds: float = 30.0  # unauthenticated connections are closed after this
    idle_timeout_seconds: float = 300.0  # a logged-in connection with no SFTP request this long is closed
    max_auth_tries: int = 6  # per connection
    max_auth_failures: int = 5  # wrong passwords per (IP, user) within the window before a lockout
    failure_window_seconds: float = 600.0
    lockout_seconds: float = 60.0  # doubles with each lockout ...
    lockout_max_seconds: float = 3600.0  # ... up to this
    max_global_failures: int = 50  # wrong passwords from everywhere within global_window_seconds ...
    global_window_seconds: float = 60.0
    global_pause_seconds: float = 60.0  # ... pause every password check this long
    max_sessions: int = 4  # SFTP sessions per connection
    max_upload_bytes: int = 1024 * MB
    stale_upload_seconds: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        """ValueError naming the key for a value that is not a positive number
        (or not a whole one where a count is meant)."""
        sec = settings.section("sftp")
        kw = {}
        for name, f in cls.__dataclass_fields__.items():
            key = "max_upload_mb" if name == "max_upload_bytes" else name
            if key in sec:
                whole = isinstance(f.default, int) and key != "max_upload_mb"
                value = positive_number("sftp", sec, key, f.default, whole=whole)
                kw[name] = max(1, int(value * MB)) if key == "max_upload_mb" else value
        return cls(**kw)


@dataclass(frozen=True)
class Failure:
    """What one wrong password started (seconds; 0: nothing)."""

    lockout: float = 0.0  # of its (IP, user) or its IP
    pause: float = 0.0  # of every password check, started by this failure
    addresses: int = 0  # how many addresses the failures that started the pause came from


class LoginThrottle:
    """Wrong passwords per (remote IP, user), per IP and from everywhere;
    lockouts with back-off, and a global pause. Thread-safe."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic):
        self.limits, self.clock = limits, clock
        self._lock = threading.Lock()
        self._state: dict[tuple[str, str], list[float]] = {}  # key -> [count, last, locked_until, lockouts]
        self._recent: deque[tuple[float, str]] = deque(maxlen=limits.max_global_failures)  # (when, IP)
        self._paused_until = 0.0

    def _keys(self, ip: str, user: str):
        # A whole IP gets a larger allowance, so spraying user names from one address is bounded too.
        return ((ip, "\0user:" + user), self.limits.max_auth_failures), ((ip, "\0ip"), self.limits.max_auth_failures * 4)

    def locked(self, ip: str, user: str) -> float:
        """Seconds of password lockout left for this IP and user (0 when free)."""
        now = self.clock()
        with self._lock:
            return max([self._state.get(k, [0, 0, 0, 0])[2] - now for k, _ in self._keys(ip, user)] + [0.0])

    def paused(self) -> float:
        """Seconds left of the global pause of password checks (0: none)."""
        with self._lock:
            return max(0.0, self._paused_until - self.clock())

    def failed(self, ip: str, user: str) -> float:
        """Count a wrong password; return the lockout it started (0 if none)."""
        return self.failure(ip, user).lockout

    def failure(self, ip: str, user: str) -> Failure:
        """Count a wrong password; what it started."""
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
            while self._recent and now - self._recent[0][0] >= lim.global_window_seconds:
                self._recent.popleft()
            self._recent.append((now, ip))
            if len(self._recent) >= lim.max_global_failures and now >= self._paused_until:
                addresses = len({a for _, a in self._recent})
                self._paused_until = now + lim.global_pause_seconds
                self._recent.clear()  # after the pause, another max_global_failures at most
                return Failure(started, lim.global_pause_seconds, addresses)
        return Failure(started)

    def succeeded(self, ip: str, user: str) -> None:
        """A good password: forget the wrong ones of this IP and user."""
        with self._lock:
            self._state.pop((ip, "\0user:" + user), None)

    def _prune(self, now: float) -> None:
        horizon = max(self.limits.failure_window_seconds, self.limits.lockout_max_seconds)
        for key in [k for k, st in self._state.items() if now - st[1] > horizon and st[2] < now]:
            del self._state[key]

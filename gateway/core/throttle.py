"""Counting failed logins, so that nobody guesses secrets at scrypt's pace.

Used by the operators' web pages (`[web] login_*`, gateway.ops.operators) and
the Flow Service API's token endpoint (`[api] login_*`, same keys and
defaults); the numbers are read from the section the caller names.
"""
from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.core.config import Settings, positive_number


@dataclass(frozen=True)
class LoginRules:
    """How many failed logins buy how long a wait (gateway.toml `[web]`)."""
    failures: int = 5  # failed logins before the first wait
    window_seconds: float = 15 * 60  # counters are forgotten after this long without a failure (or a wait)
    first_lockout_seconds: float = 60  # the first wait; it doubles with each failure after it
    max_lockout_seconds: float = 15 * 60
    # an address an operator logged in from is spared the waits of that name, so
    # that attackers guessing the name from elsewhere do not lock its owner out
    trusted_seconds: float = 30 * 24 * 3600
    max_entries: int = 10_000  # per table (addresses, names): memory stays bounded under attack
    # failed logins from everywhere (any address, any name) within window_seconds; past
    # them, a pause for every address no operator logged in from with the name it tries
    global_failures: int = 50
    global_pause_seconds: float = 5 * 60

    @classmethod
    def from_settings(cls, settings: Settings, section: str = "web") -> "LoginRules":
        """Read `[web] login_failures`, `login_window_minutes`, `login_lockout_minutes`,
        `login_lockout_max_minutes`, `login_global_failures` and `login_global_pause_minutes`;
        ValueError on a value that makes no sense."""
        web = settings.section(section)

        def minutes(key: str, default_seconds: float) -> float:
            return positive_number(section, web, key, default_seconds / 60) * 60

        first = minutes("login_lockout_minutes", cls.first_lockout_seconds)
        return cls(failures=positive_number(section, web, "login_failures", cls.failures, whole=True),
                   window_seconds=minutes("login_window_minutes", cls.window_seconds),
                   first_lockout_seconds=first,
                   max_lockout_seconds=max(first, minutes("login_lockout_max_minutes", cls.max_lockout_seconds)),
                   global_failures=positive_number(section, web, "login_global_failures", cls.global_failures,
                                                   whole=True),
                   global_pause_seconds=minutes("login_global_pause_minutes", cls.global_pause_seconds))


@dataclass(slots=True)
class _Count:
    failures: int = 0
    last: float = 0.0  # the last failure
    locked_until: float = 0.0
    in_flight: int = 0  # attempts admitted whose password is being checked


class LoginThrottle:
    """Failed logins counted per client address, per operator's name tried,
    and from everywhere.

    `admit` before checking a password: 0 means go ahead, anything else is
    how many seconds to wait, and nothing is checked (no scrypt). Then
    `failed` or `passed` with the same address and name. Attempts under way
    count against the limit, so many at once do not each get a guess.
    Past `global_failures` within the window from all addresses and names
    (names and addresses made up as fast as one likes), every attempt waits
    the global pause, except an operator's from an address it logged in from
    before: attackers everywhere do not lock the known operators out.
    Pure bookkeeping, no I/O; `clock` is injectable for tests. Not
    thread-safe: the web app calls it from its event loop only."""

    BUSY_SECONDS = 1.0  # the wait while the allowed attempts are still being checked
    MAX_TRUSTED = 1_000

    def __init__(self, rules: LoginRules | None = None, clock: Callable[[], float] = time.monotonic):
        self.rules = rules or LoginRules()
        self.clock = clock
        self._by_address: OrderedDict[str, _Count] = OrderedDict()
        self._by_name: OrderedDict[str, _Count] = OrderedDict()
        self._trusted: OrderedDict[tuple[str, str], float] = OrderedDict()  # (name, address) -> until
        self._everywhere: deque[float] = deque(maxlen=self.rules.global_failures)  # the latest failures' times
        self._everywhere_in_flight = 0
        self._paused_until = 0.0

    def __len__(self) -> int:
        """Counters held (addresses and names)."""
        return len(self._by_address) + len(self._by_name)

    def paused(self) -> float:
        """Seconds left of the global pause (0: none)."""
        return max(0.0, self._paused_until - self.clock())

    def admit(self, address: str, name: str | None) -> float:
        now = self.clock()
        keys = self._keys(address, name, now)
        everywhere = not self._trusts(address, name, now)
        wait = max([self._wait(table, key, now) for table, key in keys]
                   + [self._global_wait(now) if everywhere else 0.0])
        if wait <= 0:
            for table, key in keys:
                self._entry(table, key).in_flight += 1
            self._everywhere_in_flight += everywhere
        return wait

    def failed(self, address: str, name: str | None) -> float:
        """Count a failed login; returns the wait it starts for its address or
        name (0: none yet; `paused()` tells of the global pause)."""
        now, rules, lock = self.clock(), self.rules, 0.0
        if not self._trusts(address, name, now):
            self._everywhere_in_flight = max(0, self._everywhere_in_flight - 1)
            self._forget_old(now)
            self._everywhere.append(now)
            if len(self._everywhere) >= rules.global_failures and now >= self._paused_until:
                self._paused_until = now + rules.global_pause_seconds
                self._everywhere.clear()  # after the pause, another `global_failures` at most
        for table, key in self._keys(address, name, now):
            c = self._entry(table, key)
            c.in_flight = max(0, c.in_flight - 1)
            c.failures += 1
            c.last = now
            if c.failures >= rules.failures:
                doubled = rules.first_lockout_seconds * 2 ** min(c.failures - rules.failures, 32)
                c.locked_until = max(c.locked_until, now + min(doubled, rules.max_lockout_seconds))
                lock = max(lock, c.locked_until - now)
        return lock

    def passed(self, address: str, name: str) -> None:
        """A good login: forget the counters it was counted in; trust the address for the name."""
        now = self.clock()
        if not self._trusts(address, name, now):
            self._everywhere_in_flight = max(0, self._everywhere_in_flight - 1)
        for table, key in self._keys(address, name, now):
            table.pop(key, None)
        self._trusted.pop((name, address), None)
        self._trusted[(name, address)] = now + self.rules.trusted_seconds
        while len(self._trusted) > self.MAX_TRUSTED:
            self._trusted.popitem(last=False)

    def _trusts(self, address: str, name: str | None, now: float) -> bool:
        """An operator logged in from this address with this name: spared the
        name's waits and the global pause, not its address's."""
        return name is not None and self._trusted.get((name, address), 0.0) > now

    def _keys(self, address: str, name: str | None, now: float) -> list[tuple[OrderedDict[str, _Count], str]]:
        keys = [(self._by_address, address)]
        if name is not None and not self._trusts(address, name, now):
            keys.append((self._by_name, name))
        return keys

    def _forget_old(self, now: float) -> None:
        while self._everywhere and now - self._everywhere[0] >= self.rules.window_seconds:
            self._everywhere.popleft()

    def _global_wait(self, now: float) -> float:
        if now < self._paused_until:
            return self._paused_until - now
        self._forget_old(now)
        allowed = self.rules.global_failures - len(self._everywhere)
        return self.BUSY_SECONDS if self._everywhere_in_flight >= allowed else 0.0

    def _expired(self, c: _Count, now: float) -> bool:
        return c.in_flight == 0 and now >= max(c.last, c.locked_until) + self.rules.window_seconds

    def _wait(self, table: OrderedDict[str, _Count], key: str, now: float) -> float:
        c = table.get(key)
        if c is None:
            return 0.0
        if self._expired(c, now):
            del table[key]
            return 0.0
        if now < c.locked_until:
            return c.locked_until - now
        # below the limit, the rest of it; past it (a wait just over), one attempt at a time
        allowed = self.rules.failures - c.failures if c.failures < self.rules.failures else 1
        return self.BUSY_SECONDS if c.in_flight >= allowed else 0.0

    def _entry(self, table: OrderedDict[str, _Count], key: str) -> _Count:
        c = table.get(key)
        if c is None:
            if len(table) >= self.rules.max_entries:
                self._prune(table)
            c = table[key] = _Count()
        table.move_to_end(key)  # the least recently touched go first
        return c

    def _prune(self, table: OrderedDict[str, _Count]) -> None:
        """Down to 90% of the cap: first what is expired or not waiting (losing
        those gives back a few guesses at most), then the oldest."""
        now, target = self.clock(), max(0, int(self.rules.max_entries * 0.9) - 1)
        for key, c in list(table.items()):
            if len(table) <= target:
                return
            if self._expired(c, now) or now >= c.locked_until:
                del table[key]
        while len(table) > target:
            table.popitem(last=False)

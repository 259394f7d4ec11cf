"""Operators' logins for the web pages (`gateway operator add|remove|list`, ops/cli/operator.py).

Kept in `keys/operators` in the home (mode 0600 from its creation), one line
per operator: `name:` and its scrypt hash, the same as partners' passwords
(store/partners.py), never the password itself. The pages ask for HTTP Basic
credentials as soon as one operator exists, and always when they listen on
anything but the loopback address (web.py). `LoginThrottle` counts failed
logins per client address and per name tried, and all of them together, so
nobody guesses passwords at scrypt's pace, not even by changing names and
addresses: past `[web] login_failures` (or `login_global_failures` from
everywhere) the pages answer 429 for a while, without running scrypt.
"""
from __future__ import annotations

import base64
import hashlib
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.core.config import Settings, positive_number
from gateway.core.files import atomic_write
from gateway.store.partners import hash_password, verify_password

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 12


def operators_file(settings: Settings) -> Path:
    return settings.keys / "operators"


def load(settings: Settings) -> dict[str, str]:
    """name -> stored hash; empty when nobody was added."""
    try:
        text = operators_file(settings).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    out = {}
    for line in text.splitlines():
        name, sep, stored = line.strip().partition(":")
        if sep and NAME_RE.match(name):
            # the first lines written said scrypt:N:r:p:salt:hash; base64 has neither ':' nor '$'
            out[name] = stored.replace(":", "$") if stored.startswith("scrypt:") else stored
    return out


def _save(settings: Settings, users: dict[str, str]) -> None:
    atomic_write(operators_file(settings), "".join(f"{n}:{h}\n" for n, h in sorted(users.items())).encode("utf-8"),
                 fsync=True, mode=0o600)


def add(settings: Settings, name: str, password: str) -> None:
    if not NAME_RE.match(name):
        raise ValueError("an operator's name is 1 to 64 letters, digits or _ . @ -, starting with a letter or digit")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    users = load(settings)
    users[name] = hash_password(password)
    _save(settings, users)


def remove(settings: Settings, name: str) -> bool:
    users = load(settings)
    if users.pop(name, None) is None:
        return False
    _save(settings, users)
    return True


def credentials(header: str | None) -> tuple[str, str | None] | None:
    """(name, password) of an HTTP Basic header, the password None when it has
    no ':'; None when the header is not Basic or not decodable."""
    if not header or not header.startswith("Basic "):
        return None
    try:
        name, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return name, (password if sep else None)


def claimed_name(header: str | None) -> str | None:
    """The operator's name a header claims, unchecked; None when it could not
    be an operator's name (so a password typed in the name field is neither
    counted under its own name nor logged)."""
    cred = credentials(header)
    return cred[0] if cred and cred[1] is not None and NAME_RE.match(cred[0]) else None


class Checker:
    """Checks an HTTP Basic `Authorization` header against the operators'
    file, re-read when it changes. A header that passed is remembered for a
    few minutes (by its SHA-256), so pages do not pay scrypt on every load."""

    def __init__(self, settings: Settings, remember_seconds: float = 300):
        self.settings = settings
        self.remember = remember_seconds
        self._users: dict[str, str] = {}
        self._stamp: tuple[int, int] | None = None
        self._passed: dict[bytes, tuple[str, float, tuple[int, int] | None]] = {}

    def users(self) -> dict[str, str]:
        try:
            st = operators_file(self.settings).stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._users, self._stamp, self._passed = load(self.settings) if stamp else {}, stamp, {}
        return self._users

    def remembered(self, header: str | None) -> str | None:
        """The operator a header proved to be a moment ago (no scrypt), or None."""
        self.users()  # a changed operators' file forgets what passed
        return self._remembered(header)

    def _remembered(self, header: str | None) -> str | None:
        if not header:
            return None
        hit = self._passed.get(hashlib.sha256(header.encode("utf-8", "replace")).digest())
        if hit and hit[1] > time.monotonic() and hit[2] == self._stamp:
            return hit[0]
        return None

    def operator(self, header: str | None) -> str | None:
        """The operator a header proves to be, or None."""
        users = self.users()
        known = self._remembered(header)
        if known is not None:
            return known
        cred = credentials(header)
        if cred is None:
            return None
        name, password = cred
        # an unknown name costs one scrypt too: how long a refusal takes tells no names
        if not verify_password(password or "", users.get(name) if password is not None else None):
            return None
        self._passed[hashlib.sha256(header.encode("utf-8", "replace")).digest()] = (
            name, time.monotonic() + self.remember, self._stamp)
        return name


# --- failed logins ----------------------------------------------------------------------------

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
    def from_settings(cls, settings: Settings) -> "LoginRules":
        """Read `[web] login_failures`, `login_window_minutes`, `login_lockout_minutes`,
        `login_lockout_max_minutes`, `login_global_failures` and `login_global_pause_minutes`;
        ValueError on a value that makes no sense."""
        web = settings.section("web")

        def minutes(key: str, default_seconds: float) -> float:
            return positive_number("web", web, key, default_seconds / 60) * 60

        first = minutes("login_lockout_minutes", cls.first_lockout_seconds)
        return cls(failures=positive_number("web", web, "login_failures", cls.failures, whole=True),
                   window_seconds=minutes("login_window_minutes", cls.window_seconds),
                   first_lockout_seconds=first,
                   max_lockout_seconds=max(first, minutes("login_lockout_max_minutes", cls.max_lockout_seconds)),
                   global_failures=positive_number("web", web, "login_global_failures", cls.global_failures,
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

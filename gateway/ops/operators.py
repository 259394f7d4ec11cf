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
from pathlib import Path

from gateway.core.config import Settings
from gateway.core.files import atomic_write
from gateway.core.throttle import LoginRules, LoginThrottle  # noqa: F401 - moved there, named here too
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

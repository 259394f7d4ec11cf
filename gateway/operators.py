"""Operators' logins for the web pages: `gateway operator add|remove|list`.

Kept in `keys/operators` in the home (mode 0600), one line per operator:
`name:scrypt:N:r:p:salt:hash` (base64), never the password itself. The
pages ask for HTTP Basic credentials as soon as one operator exists, and
always when they listen on anything but the loopback address (web.py).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import config
from .config import Settings
from .files import atomic_write

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 12
# scrypt's cost: about 50 ms a check here, so guessing is slow and a page still loads at once
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1


def operators_file(settings: Settings) -> Path:
    return settings.keys / "operators"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt:{SCRYPT_N}:{SCRYPT_R}:{SCRYPT_P}:{b64(salt).decode()}:{b64(digest).decode()}"


def password_matches(stored: str, password: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split(":")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(base64.b64decode(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


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
            out[name] = stored
    return out


def _save(settings: Settings, users: dict[str, str]) -> None:
    path = operators_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, "".join(f"{n}:{h}\n" for n, h in sorted(users.items())).encode("utf-8"), fsync=True)
    os.chmod(path, 0o600)


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

    def operator(self, header: str | None) -> str | None:
        """The operator a header proves to be, or None."""
        users = self.users()
        if not header or not header.startswith("Basic "):
            return None
        key = hashlib.sha256(header.encode("utf-8", "replace")).digest()
        hit = self._passed.get(key)
        if hit and hit[1] > time.monotonic() and hit[2] == self._stamp:
            return hit[0]
        try:
            name, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        stored = users.get(name) if sep else None
        if stored is None or not password_matches(stored, password):
            return None
        self._passed[key] = (name, time.monotonic() + self.remember, self._stamp)
        return name


# --- command line ---------------------------------------------------------------------------

app = typer.Typer(no_args_is_help=True, add_completion=False)
HomeOpt = Annotated[Optional[Path], typer.Option("--home", help="The gateway's home (default: GATEWAY_HOME, else "
                                                                 "the current folder).")]


@app.command("add")
def add_command(
    name: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input "
                                                                          "(for scripts) instead of asking.")] = False,
    home: HomeOpt = None,
) -> None:
    """Add an operator (or set a new password): the web pages then ask for a login."""
    settings = config.load(home)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        add(settings, name, password)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"operator {name} can log in to the web pages")


@app.command("remove")
def remove_command(name: str, home: HomeOpt = None) -> None:
    """Remove an operator."""
    if not remove(config.load(home), name):
        typer.echo(f"error: no operator {name}", err=True)
        raise typer.Exit(1)
    typer.echo(f"operator {name} removed")


@app.command("list")
def list_command(home: HomeOpt = None) -> None:
    """The operators who can log in."""
    for name in sorted(load(config.load(home))):
        typer.echo(name)

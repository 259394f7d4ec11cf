"""Operators' logins for the web pages: `gateway operator add|remove|list`.

Kept in `keys/operators` in the home (mode 0600 from its creation), one line
per operator: `name:` and its scrypt hash, the same as partners' passwords
(gateway.partners), never the password itself. The pages ask for HTTP Basic
credentials as soon as one operator exists, and always when they listen on
anything but the loopback address (web.py).
"""
from __future__ import annotations

import base64
import hashlib
import re
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from . import config
from .cli import HomeOpt, existing_home
from .config import Settings
from .files import atomic_write
from .partners import hash_password, verify_password

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
        # an unknown name costs one scrypt too: how long a refusal takes tells no names
        if not verify_password(password, users.get(name) if sep else None):
            return None
        self._passed[key] = (name, time.monotonic() + self.remember, self._stamp)
        return name


# --- command line ---------------------------------------------------------------------------

app = typer.Typer(no_args_is_help=True, add_completion=False)


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
    if not remove(existing_home(home), name):
        typer.echo(f"error: no operator {name}", err=True)
        raise typer.Exit(1)
    typer.echo(f"operator {name} removed")


@app.command("list")
def list_command(home: HomeOpt = None) -> None:
    """The operators who can log in."""
    for name in sorted(load(existing_home(home))):
        typer.echo(name)

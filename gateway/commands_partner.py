"""`gateway partner ...`: SFTP partner accounts."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import config, partners

app = typer.Typer(help="SFTP partner accounts (a partner's name is its sender code).", no_args_is_help=True)

PASSWORD_ENV = "GATEWAY_PARTNER_PASSWORD"
Home = Annotated[Optional[Path], typer.Option("--home", help="The gateway's home (default: GATEWAY_HOME, else the current folder).")]


def _settings(home: Optional[Path]) -> config.Settings:
    return config.load(home)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Sender code: letters, digits, '_', '.', '-'.")],
    key: Annotated[Optional[list[Path]], typer.Option("--key", help="OpenSSH public key file (.pub); repeatable.")] = None,
    password: Annotated[bool, typer.Option("--password", help=f"Set a password (prompted, or from {PASSWORD_ENV}).")] = False,
    home: Home = None,
) -> None:
    """Create a partner (or add keys / set the password of an existing one) and its folders."""
    try:
        partners.validate_name(name)
        lines = [ln for path in key or [] for ln in partners.read_key_file(path)]
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    secret = None
    if password:
        secret = os.environ.get(PASSWORD_ENV) or typer.prompt(
            "Password", hide_input=True, confirmation_prompt=True)
    try:
        p = partners.add_partner(_settings(home), name, lines, password=secret)
    except ValueError as exc:
        _fail(str(exc))
    state = "enabled" if p.enabled else "DISABLED (use `gateway partner enable`)"
    typer.echo(f"partner {p.name}: {len(p.keys)} key(s), password {'set' if p.has_password else 'none'}, {state}")
    if not p.keys and not p.has_password:
        typer.echo("note: no key and no password, so this partner cannot log in over SFTP yet")


@app.command("list")
def list_(home: Home = None) -> None:
    """List partners."""
    rows = partners.list_partners(_settings(home))
    if not rows:
        typer.echo("no partners")
        return
    width = max(len(p.name) for p in rows)
    for p in rows:
        typer.echo(f"{p.name:<{width}}  {'enabled ' if p.enabled else 'disabled'}  keys={len(p.keys)}"
                   f"  password={'yes' if p.has_password else 'no '}  created={p.created_at:%Y-%m-%d %H:%M}")


@app.command("disable")
def disable(name: str, home: Home = None) -> None:
    """Stop a partner from logging in (its folders and files are kept)."""
    try:
        partners.disable_partner(_settings(home), name)
    except (LookupError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"partner {name} disabled")


@app.command("enable")
def enable(name: str, home: Home = None) -> None:
    """Allow a disabled partner to log in again."""
    try:
        partners.enable_partner(_settings(home), name)
    except (LookupError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"partner {name} enabled")


@app.command("hostkey")
def hostkey(home: Home = None) -> None:
    """Print the SFTP server's host keys and fingerprints (created on first use), for partners to pin."""
    from .sftp_server import host_keys

    for k in host_keys(_settings(home)):
        typer.echo(f"{k.get_name()} {k.get_base64()}  # {k.fingerprint}")

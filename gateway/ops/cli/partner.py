"""`gateway partner ...`: SFTP partner accounts."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from gateway.core import config
# The store: imported in the commands that use it, not here, as `gateway` imports every command group at
# start (ops/cli/main.py); `gateway --help` stays cheap.

app = typer.Typer(help="SFTP partner accounts (a partner's name is its sender code).", no_args_is_help=True)

PASSWORD_ENV = "GATEWAY_PARTNER_PASSWORD"
Home = Annotated[Optional[Path], typer.Option("--home", help="The gateway's home (default: GATEWAY_HOME, else the current folder).")]


def _settings(home: Optional[Path], *, create: bool = True) -> config.Settings:
    """The home's settings; `create=False` where a mistyped --home must not
    become a new, empty home."""
    s = config.load(home, create=create)
    if not create and not s.config_file.is_file():
        _fail(f"no gateway home at {s.home} (no gateway.toml): check --home or GATEWAY_HOME")
    return s


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
    from gateway.store import partners
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
    from gateway.store import partners
    rows = partners.list_partners(_settings(home, create=False))
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
    _set_enabled(name, home, False)


@app.command("enable")
def enable(name: str, home: Home = None) -> None:
    """Allow a disabled partner to log in again."""
    _set_enabled(name, home, True)


def _set_enabled(name: str, home: Optional[Path], enabled: bool) -> None:
    from gateway.store import partners
    try:
        partners.set_enabled(_settings(home, create=False), name, enabled)
    except (LookupError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"partner {name} {'enabled' if enabled else 'disabled'}")


@app.command("hostkey")
def hostkey(home: Home = None) -> None:
    """Print the SFTP server's host keys and fingerprints (created on first use), for partners to pin."""
    from gateway.channels.sftp.server import host_keys

    for k in host_keys(_settings(home)):
        typer.echo(f"{k.get_name()} {k.get_base64()}  # {k.fingerprint}")


from gateway.ops.cli import api_client  # noqa: E402 - the sub-group registers after this group's commands

app.add_typer(api_client.app, name="api-client")
@app.command("acts-for")
def acts_for(
    name: Annotated[str, typer.Argument(help="The partner (sender code).")],
    siret: Annotated[Optional[str], typer.Argument(help="A structure it acts for; none: list them.")] = None,
    service: Annotated[Optional[list[str]], typer.Option("--service", help="Only in this service; repeatable. "
                                                         "None: every service.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="It no longer acts for that structure.")] = False,
    home: Home = None,
) -> None:
    """Say which structures (SIRET) a partner deposits and receives for, optionally only in some services."""
    from gateway.store import partners
    from gateway.store import structures  # noqa: PLC0415 - only this command needs it
    from gateway.store.repository import Store  # noqa: PLC0415

    try:
        partners.validate_name(name)
    except ValueError as exc:
        _fail(str(exc))
    store = Store(_settings(home, create=False))
    if siret is None:
        rows = structures.acts_for(store, name)
        for a in rows:
            typer.echo(f"{a.siret}  " + (", ".join(a.services) if a.services else "every service"))
        if not rows:
            typer.echo(f"partner {name} acts for no structure (see [parties] in gateway.toml for the simple case)")
        return
    if remove:
        if not structures.drop_acts_for(store, name, siret):
            _fail(f"partner {name} does not act for {siret}")
        typer.echo(f"partner {name} no longer acts for {siret}")
        return
    try:
        a = structures.set_acts_for(store, name, siret, service or ())
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"partner {a.partner} acts for {a.siret}, " + (f"services {', '.join(a.services)}" if a.services
                                                              else "every service"))

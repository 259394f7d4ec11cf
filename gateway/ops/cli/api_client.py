"""`gateway partner api-client add|list|revoke`: the partners' clients of the Flow Service API."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gateway.ops.options import existing_home
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.

app = typer.Typer(help="OAuth2 clients of the Flow Service API (client credentials), one partner each.",
                  no_args_is_help=True)
Home = Annotated[Optional[Path], typer.Option("--home", help="The gateway's home (default: GATEWAY_HOME, else the current folder).")]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command("add")
def add(name: Annotated[str, typer.Argument(help="An existing partner (gateway partner add NAME).")],
        as_json: Annotated[bool, typer.Option("--json", help="Print {\"client_id\": ..., \"client_secret\": ...}.")] = False,
        home: Home = None) -> None:
    """Create a client for a partner; its secret is printed once and kept only as a hash."""
    from gateway.store import api_clients
    try:
        client, secret = api_clients.add_client(existing_home(home), name)
    except LookupError as exc:
        _fail(str(exc.args[0]))
    if as_json:
        typer.echo(json.dumps({"client_id": client.id, "client_secret": secret}))
    else:
        typer.echo(f"client_id:     {client.id}\nclient_secret: {secret}\n"
                   "(the secret is shown only now: keep it; `gateway partner api-client revoke ID` withdraws it)")


@app.command("list")
def list_(home: Home = None) -> None:
    """List the clients: id, partner, created, revoked."""
    from gateway.store import api_clients
    rows = api_clients.list_clients(existing_home(home))
    if not rows:
        typer.echo("no API clients")
    for c in rows:
        state = f"revoked {c.revoked_at:%Y-%m-%d %H:%M}" if c.revoked_at else "active"
        typer.echo(f"{c.id}  {c.partner}  created={c.created_at:%Y-%m-%d %H:%M}  {state}")


@app.command("revoke")
def revoke(client_id: str, home: Home = None) -> None:
    """Revoke a client: its tokens stop working at once."""
    from gateway.store import api_clients
    try:
        c = api_clients.revoke_client(existing_home(home), client_id)
    except LookupError as exc:
        _fail(str(exc.args[0]))
    typer.echo(f"API client {c.id} of {c.partner} revoked")

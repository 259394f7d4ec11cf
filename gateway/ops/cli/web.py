"""`gateway web`: serve the operators' pages (ops/web.py)."""
from __future__ import annotations

import logging
from typing import Annotated

import typer

from gateway.ops.options import HomeOpt, existing_home
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.

app = typer.Typer()


@app.command("web", help="Serve the operators' read-only web pages.")
def web(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; beyond 127.0.0.1 operators must log "
                                                     "in (gateway operator add).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    home: HomeOpt = None,
) -> None:
    """Serve the operators' read-only web pages (overview, flows, a flow, a piece, rejections), /healthz and /metrics."""
    from gateway.ops.operators import load
    from gateway.ops.web import is_loopback, serve
    # refused and locked logins (the pages' log) beside uvicorn's own lines
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = existing_home(home)
    login = "operators log in" if load(settings) or not is_loopback(host) else "no login: local only"
    typer.echo(f"operators' pages on http://{host}:{port}/ ({login}; Ctrl-C to stop)", err=True)
    try:
        serve(settings, host, port)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

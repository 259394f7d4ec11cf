"""`gateway operator add|remove|list`: who logs in to the web pages (ops/operators.py keeps the file)."""
from __future__ import annotations

import sys
from typing import Annotated

import typer

from gateway.core import config
from gateway.ops.options import HomeOpt, existing_home
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("add")
def add_command(
    name: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input "
                                                                          "(for scripts) instead of asking.")] = False,
    home: HomeOpt = None,
) -> None:
    """Add an operator (or set a new password): the web pages then ask for a login."""
    from gateway.ops.operators import add
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
    from gateway.ops.operators import remove
    if not remove(existing_home(home), name):
        typer.echo(f"error: no operator {name}", err=True)
        raise typer.Exit(1)
    typer.echo(f"operator {name} removed")


@app.command("list")
def list_command(home: HomeOpt = None) -> None:
    """The operators who can log in."""
    from gateway.ops.operators import load
    for name in sorted(load(existing_home(home))):
        typer.echo(name)

"""What every command shares: the options repeated across commands, the home
they name, and where output goes."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from gateway.core import config

# every command's --home (gateway piece, operator, web, report... use this one too)
HomeOpt = Annotated[Optional[Path], typer.Option(
    "--home", help="The gateway's home folder (default: $GATEWAY_HOME or the current directory).")]

# a listing's machine-readable form (gateway flows, flow, piece, pieces)
JsonOpt = Annotated[bool, typer.Option("--json")]

# how many rows a listing shows at most (gateway flows, pieces); each gives its default
LimitOpt = Annotated[int, typer.Option("--limit", "-n")]

console = Console()
err_console = Console(stderr=True)


def existing_home(home: Optional[Path]) -> config.Settings:
    """The settings of a home that must exist already (reports, pages,
    operators, pieces): a mistyped --home is an error, not a new empty home."""
    root = config.resolve_home(home)
    if not (root / "gateway.toml").is_file():
        typer.echo(f"error: {root} is not a gateway home (no gateway.toml); give --home or GATEWAY_HOME", err=True)
        raise typer.Exit(2)
    return config.load(root, create=False)

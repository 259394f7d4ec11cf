"""The one place that plugs optional parts into the core: pipeline stages,
steps after evaluation, channels started by `gateway run`, and sub-commands.
"""
from __future__ import annotations

import typer

from .config import Settings

_installed = False


def install(settings: Settings) -> None:
    """Register stages and channels (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True


def register_commands(app: typer.Typer) -> None:
    """Mount the sub-command groups of other modules."""
    from . import conformance

    app.command("conformance", help="Compare `gateway validate` with a corpus's EXPECTED.tsv.")(conformance.main)

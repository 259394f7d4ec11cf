"""`gateway report rejections`: the rejections report as a terminal table, CSV or one HTML page."""
from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gateway.core.files import atomic_write
from gateway.ops.options import HomeOpt, existing_home
from gateway.ops.query_names import DEFAULT_DAYS
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.


class OutputFormat(str, enum.Enum):
    table = "table"
    csv = "csv"
    html = "html"


app = typer.Typer(help="Operators' reports.", no_args_is_help=True, add_completion=False)


@app.callback()
def _group() -> None:
    """Operators' reports."""


@app.command("rejections")
def rejections_command(
    since: Annotated[Optional[str], typer.Option(
        "--since", help=f"From this date (2026-11-01) or datetime (2026-11-01T08:00, UTC unless an offset is "
                        f"given); default {DEFAULT_DAYS} days back.")] = None,
    partner: Annotated[Optional[str], typer.Option("--partner", help="Only this partner.")] = None,
    output_format: Annotated[OutputFormat, typer.Option(
        "--format", case_sensitive=False,
        help="table (terminal), csv (machine-readable) or html (one page).")] = OutputFormat.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file, not stdout.")] = None,
    home: HomeOpt = None,
) -> None:
    """Rejections grouped by partner and code, with counts and the latest examples."""
    from gateway.ops.rejections import parse_since, rejections
    from gateway.ops.rejections_render import render_csv, render_html, render_table
    try:
        start = parse_since(since)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    report = rejections(existing_home(home), start, partner)
    if output_format is OutputFormat.csv:
        text = render_csv(report)
    elif output_format is OutputFormat.html:
        text = render_html(report)
    else:
        text = render_table(report, color=output is None and sys.stdout.isatty())
    if output is not None:
        atomic_write(output, text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    if not report.groups and output_format is not OutputFormat.table:
        typer.echo(report.empty_message(), err=True)  # the CSV/page itself stays valid
    elif output is not None:
        typer.echo(f"{report.total} rejection(s) in {report.flows} flow(s) written to {output}", err=True)

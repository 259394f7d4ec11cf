"""`gateway run`: the service, until stopped or, with --once, until what waits is processed."""
from __future__ import annotations

import logging
import sys
from typing import Optional

import typer

from gateway.core import config
from gateway.ops.cli.rules import require_artefacts
from gateway.ops.options import HomeOpt, console
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.

app = typer.Typer()
STALLED = 3  # exit code of a --once run that could not make progress ([intake] once_stall_seconds)


@app.command()
def run(
    home: HomeOpt = None,
    once: bool = typer.Option(False, "--once", help="Process everything waiting, print a summary and exit."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Validation processes (0 = in this process)."),
    sftp_port: Optional[int] = typer.Option(None, "--sftp-port", help="Serve SFTP on this port (turns the server on)."),
    api_port: Optional[int] = typer.Option(None, "--api-port", help="Serve the Flow Service API on this port."),
    verbose: bool = typer.Option(False, "-v", "--verbose"),
) -> None:
    """Run the gateway: watch the inboxes until SIGTERM/Ctrl-C, or with --once process what waits and exit
    (exit 3 when nothing can move for [intake] once_stall_seconds: a full or read-only disk)."""
    logging.basicConfig(level=logging.INFO if verbose or not once else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    overrides = {"workers": workers}
    if sftp_port is not None:
        overrides.update(sftp_port=sftp_port, sftp_enabled=True)
    if api_port is not None:
        overrides["api_port"] = api_port
    fresh = not (config.resolve_home(home) / "gateway.toml").exists()
    s = config.load(home, **overrides)
    require_artefacts(s)  # a missing or altered schema/rule file: refuse to start, naming it
    from gateway.runtime.procs import start_helpers

    rules = start_helpers(s)  # first: they start while this process imports the store and the service
    try:
        if fresh:
            from gateway.ops.demo import seed_demo

            box = seed_demo(s)
            if box is not None:
                console.print(f"new home {s.home}: demo directory loaded, sample invoices in {box}")
        if s.workers == 0:
            from gateway.runtime.worker import settle_for_work

            settle_for_work()  # this process does the work
        if once and sys.stdout.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(TextColumn("flows"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=console, transient=False) as bar:
                task = bar.add_task("flows", total=None)
                gw = _gateway(s, once=True, rules=rules,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
                gw.install_signals()
                summary = gw.run()
        else:
            gw = _gateway(s, once=once, rules=rules)
            gw.install_signals()
            if not once:
                logging.getLogger("gateway").info("gateway running in %s (Ctrl-C to stop)", s.home)
            summary = gw.run()
    finally:  # whatever stopped the start: the rule server goes with it (run() stops it too)
        if rules is not None:
            rules.stop()
    rate = summary.processed / summary.seconds if summary.seconds else 0.0
    console.print(f"received {summary.received} file(s), processed {summary.processed} flow(s) "
                  f"in {summary.seconds:.1f} s ({rate:.0f} flows/s)")
    for state, n in sorted(summary.by_state.items()):
        console.print(f"  {state}: {n}")
    if summary.stalled:  # a batch job must not hang on a full disk: what waits is still waiting, nothing lost
        print(f"stopped: {summary.stalled}", file=sys.stderr)
        raise typer.Exit(STALLED)


def _gateway(s: config.Settings, **kw):  # noqa: ANN202
    """The service, or a one-line refusal of settings it cannot start with (a status-file format no module
    provides, a malformed [sftp] limit), before any worker or channel has started."""
    from gateway.runtime.service import Gateway  # watchdog, the channels, workers: only for `gateway run`

    try:
        return Gateway(s, **kw)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None

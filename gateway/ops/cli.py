"""Command line: `gateway run | validate | flows | flow | ...`."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from gateway.core import config
from gateway.lifecycle import status_in
from gateway.pipeline.evaluate import Evaluation, evaluate_file
from gateway.core.records import FlowState, Format
from gateway.ops import commands_directory, commands_partner, commands_piece, conformance, operators, rejections, web
from gateway.ops.options import HomeOpt
from gateway.ops.rejections import location_text

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="E-invoicing exchange gateway: intake, validation, routing and status files.")
console = Console()
err_console = Console(stderr=True)

def _settings(home: Optional[Path], **overrides):  # noqa: ANN202
    return config.load(home, **overrides)


@app.command()
def run(
    home: HomeOpt = None,
    once: bool = typer.Option(False, "--once", help="Process everything waiting, print a summary and exit."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Validation processes (0 = in this process)."),
    sftp_port: Optional[int] = typer.Option(None, "--sftp-port", help="Serve SFTP on this port (turns the server on)."),
    verbose: bool = typer.Option(False, "-v", "--verbose"),
) -> None:
    """Run the gateway: watch the inboxes until SIGTERM/Ctrl-C, or with --once process what waits and exit."""
    logging.basicConfig(level=logging.INFO if verbose or not once else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    overrides = {"workers": workers}
    if sftp_port is not None:
        overrides.update(sftp_port=sftp_port, sftp_enabled=True)
    fresh = not (config.resolve_home(home) / "gateway.toml").exists()
    s = _settings(home, **overrides)
    if fresh:
        _seed_demo(s)
    from gateway.runtime.service import Gateway

    if s.workers == 0:
        from gateway.runtime.worker import settle_for_work

        settle_for_work()  # this process does the work
    if once and sys.stdout.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("flows"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=False) as bar:
            task = bar.add_task("flows", total=None)
            gw = Gateway(s, once=True, progress=lambda done, total: bar.update(task, completed=done, total=total))
            gw.install_signals()
            summary = gw.run()
    else:
        gw = Gateway(s, once=once)
        gw.install_signals()
        if not once:
            logging.getLogger("gateway").info("gateway running in %s (Ctrl-C to stop)", s.home)
        summary = gw.run()
    rate = summary.processed / summary.seconds if summary.seconds else 0.0
    console.print(f"received {summary.received} file(s), processed {summary.processed} flow(s) "
                  f"in {summary.seconds:.1f} s ({rate:.0f} flows/s)")
    for state, n in sorted(summary.by_state.items()):
        console.print(f"  {state}: {n}")


def _check_status_file(s: config.Settings, data: bytes) -> Evaluation:
    """A party's status file, read as the gateway reads it, not applied."""
    from gateway.lifecycle.status_requests import evaluate_status_file

    res = evaluate_status_file(s, None, None, data, apply=False)
    return Evaluation(Format.STATUS, (), tuple(res)) if isinstance(res, list) else Evaluation(Format.STATUS, res)


def _seed_demo(s: config.Settings) -> None:
    """A new home gets the demo directory and three sample invoices in
    inbox/demo-fournisseur/, so a first `gateway run` shows routing at work
    ([demo] seed = false in gateway.toml, or GATEWAY_DEMO_SEED=false, turns it off)."""
    import shutil

    from gateway.rules.directory import DEMO_DIR, demo_files, directory_loaded, import_files

    if not s.section("demo").get("seed", True):
        return
    if not directory_loaded(s):
        import_files(s, demo_files())
    box = s.inbox / "demo-fournisseur"
    box.mkdir(parents=True, exist_ok=True)
    for f in sorted((DEMO_DIR / "samples").glob("*.xml")):
        shutil.copyfile(f, box / f.name)
    console.print(f"new home {s.home}: demo directory loaded, sample invoices in {box}")


@app.command()
def validate(
    paths: list[Path] = typer.Argument(..., help="Files (or folders, walked recursively) to validate."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file and line."),
    home: HomeOpt = None,
    at: Optional[str] = typer.Option(None, "--at", help="Validate signatures at this ISO datetime."),
) -> None:
    """Validate files without depositing them. Exit 0 if all are valid, 1 if some are not."""
    # validate creates nothing on disk unless a home is named
    s = config.load(home, create=home is not None, validation_time=at)
    files = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(x for x in p.rglob("*") if x.is_file()))
        elif p.exists():
            files.append(p)
        else:
            err_console.print(f"no such file: {p}")
            raise typer.Exit(2)

    all_valid = True
    for f in files:
        data = f.read_bytes() if f.stat().st_size <= s.max_file_bytes else None
        ev = (_check_status_file(s, data) if data and status_in.is_status_file(data)
              else evaluate_file(data, f.name, s, size=f.stat().st_size))
        valid = ev.state is FlowState.IN_INTEGRE
        all_valid &= valid
        errors = [e.as_dict() for e in ev.file_findings] + [
            dict(e, piece=v.index) if len(ev.verdicts) > 1 else e
            for v in ev.verdicts for e in (x.as_dict() for x in v.errors)]
        out = {"file": str(f), "format": ev.format.value, "valid": valid, "state": ev.state.value,
               "errors": errors,
               "warnings": [dict(w.as_dict(), piece=v.index) for v in ev.verdicts for w in v.warnings],
               "pieces": [v.as_dict() for v in ev.verdicts]}
        if as_json:
            sys.stdout.write(json.dumps(out, ensure_ascii=False, default=str) + "\n")
        else:
            mark = "[green]valid[/]" if valid else "[red]invalid[/]"
            console.print(f"{f}: {ev.format.value} {mark}")
            for e in errors:
                where = location_text(e.get("location"))
                console.print(f"  {e['code']}: {e['message']}" + (f" [{where}]" if where else "")
                              + (f" value={e['value']!r}" if e.get("value") is not None else ""), markup=False)
            for v in ev.verdicts:
                for c in v.checks:
                    console.print(f"  check {c.name}: {c.outcome}" + (f" ({c.used})" if c.used else ""),
                                  markup=False, style="dim")
    raise typer.Exit(0 if all_valid else 1)


@app.command()
def flows(
    home: HomeOpt = None,
    limit: int = typer.Option(30, "--limit", "-n"),
    partner: Optional[str] = typer.Option(None, "--partner"),
    state: Optional[str] = typer.Option(None, "--state"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List recent flows with their state."""
    from gateway.store.repository import Store

    st = Store(_settings(home))
    rows = st.recent_flows(limit, partner, state)
    if as_json:
        for f in rows:
            sys.stdout.write(json.dumps(f.model_dump(mode="json"), default=str) + "\n")
        return
    t = Table("flow", "partner", "file", "received (UTC)", "format", "state", "pieces ok/all", "note")
    for f in rows:
        note = f"duplicate of {f.duplicate_of}" if f.duplicate_of else ("in progress" if f.queue != "done" else "")
        t.add_row(f.id, f.partner, f.file_name, f"{f.received_at:%Y-%m-%d %H:%M:%S}", f.format or "",
                  f.state, f"{f.pieces_valid}/{f.pieces_total}", note)
    console.print(t)


@app.command()
def flow(flow_id: str, home: HomeOpt = None, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one flow: its pieces, their errors and its history."""
    from gateway.store.repository import Store

    st = Store(_settings(home))
    f = st.flow(flow_id)
    if f is None:
        err_console.print(f"no flow {flow_id}")
        raise typer.Exit(1)
    pieces = st.pieces(flow_id)
    history = st.history(flow_id)
    if as_json:
        sys.stdout.write(json.dumps({
            "flow": f.model_dump(mode="json"),
            "pieces": [dict(p.model_dump(mode="json", exclude={"verdict_json"}), verdict=json.loads(p.verdict_json))
                       for p in pieces],
            "history": [dict(e.model_dump(mode="json", exclude={"detail_json"}), detail=json.loads(e.detail_json))
                        for e in history]}, default=str, ensure_ascii=False, indent=2) + "\n")
        return
    console.print(f"[bold]{f.id}[/] {f.partner}/{f.file_name} ({f.size} bytes, sha256 {f.sha256[:16]}…)")
    console.print(f"received {f.received_at:%Y-%m-%d %H:%M:%S} UTC via {f.channel}; format {f.format}; "
                  f"state [bold]{f.state}[/]" + (f"; duplicate of {f.duplicate_of}" if f.duplicate_of else ""))
    for p in pieces:
        v = json.loads(p.verdict_json)
        console.print(f"  piece {p.index} {p.name}: {p.format} {'valid' if p.valid else 'REJECTED'} status {p.status}")
        for e in v.get("errors", []):
            where = location_text(e.get("location"))
            console.print(f"    {e['code']}: {e['message']}" + (f" [{where}]" if where else ""), markup=False)
    console.print("history:")
    for e in history:
        console.print(f"  {e.at:%Y-%m-%d %H:%M:%S} {e.stage:<12} {e.outcome:<12} {e.piece_id or ''} {e.detail_json}",
                      markup=False)


def register_commands(app) -> None:  # noqa: ANN001 - a typer.Typer
    """Mount the sub-command groups of other modules."""
    app.add_typer(commands_directory.app, name="directory", help="Directory of public structures and services.")

    app.add_typer(commands_partner.app, name="partner", help="Partner accounts (SFTP logins, folders).")

    app.add_typer(commands_piece.app, name="piece",
                  help="A piece's history (gateway piece ID) and status changes (gateway piece set-status).")
    app.command("deadlines", help="Apply the delays that ran out (validators, MOE).")(commands_piece.deadlines)
    app.command("pieces", help="Accepted pieces and where they stand (filters: status, recipient, partner, due).")(
        commands_piece.pieces)

    app.command("conformance", help="Compare `gateway validate` with a corpus's EXPECTED.tsv.")(conformance.main)

    app.add_typer(rejections.app, name="report", help="Operators' reports (rejections by partner and code).")
    app.command("web", help="Serve the operators' read-only web pages.")(web.main)
    app.add_typer(operators.app, name="operator", help="Operators who log in to the web pages.")


register_commands(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

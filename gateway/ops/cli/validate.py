"""`gateway validate`: files checked as the gateway would, nothing deposited."""
from __future__ import annotations

import json
from dataclasses import replace
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from gateway.core import config
from gateway.core.records import Check, FlowState, Format
from gateway.ops.cli.rules import require_artefacts
from gateway.ops.options import HomeOpt, console, err_console, existing_home
from gateway.pipeline.selection import DEFAULT_SELECTION
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.
if TYPE_CHECKING:
    from gateway.lifecycle.machine import Machine
    from gateway.pipeline.evaluate import Evaluation
    from gateway.store.repository import Store

app = typer.Typer()


def _check_status_file(s: config.Settings, data: bytes) -> Evaluation:
    """A party's status file, read as the gateway reads it, not applied."""
    from gateway.lifecycle.status_apply import evaluate_status_file
    from gateway.pipeline.evaluate import Evaluation
    res = evaluate_status_file(s, None, None, data, apply=False)
    return Evaluation(Format.STATUS, (), tuple(res)) if isinstance(res, list) else Evaluation(Format.STATUS, res)


# what a deposit checks against the store, beyond the file itself
DEPOSIT_CHECKS = ("addressee", "deposit_right", "link", "uniqueness", "duplicate")


def _deposit_checks(s: config.Settings, store: Store | None, machine: Machine | None, ev: Evaluation,
                    data: bytes | None, partner: str | None) -> tuple[Evaluation, tuple[Check, ...]]:
    from gateway.routing.preview import preview_deposit
    if store is None or machine is None:
        return ev, tuple(Check(name, "skipped", "no --home: no store to ask") for name in DEPOSIT_CHECKS)
    seen = preview_deposit(s, store, machine, ev.verdicts, data, partner)
    return replace(ev, verdicts=seen.verdicts, file_findings=ev.file_findings + seen.file_findings), seen.skipped


@app.command()
def validate(
    paths: list[Path] = typer.Argument(..., help="Files (or folders, walked recursively) to validate."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file and line."),
    home: HomeOpt = None,
    at: Optional[str] = typer.Option(None, "--at", help="Validate signatures at this ISO datetime."),
    partner: Optional[str] = typer.Option(None, "--partner", help="With --home: who deposits: its right to "
                                          "deposit each piece, the billing file it may continue, and the same "
                                          "bytes already received."),
    profile: str = typer.Option(
        DEFAULT_SELECTION, "--profile",
        help="en16931: format, XSD, EN 16931 rules and signatures only; "
             "chorus: also the platform's attachment rules and the French public-sector controls; "
             "fr-ctc: en16931 plus the French reform's BR-FR-Flux2 rules (will a French platform take it?)."),
) -> None:
    """Validate files without depositing them. Exit 0 if all are valid, 1 if some are not.

    With --home, also the checks a deposit runs against that home's store, read-only: first addressee named,
    the piece it continues found, invoice number not taken, and with --partner its right to deposit the piece
    (structures and roles), the billing file it may continue and the same bytes not received."""
    from gateway.lifecycle import status_in
    from gateway.lifecycle.machine import Machine
    from gateway.ops.rejections import location_text
    from gateway.pipeline.evaluate import evaluate_file
    from gateway.pipeline.stages import SELECTIONS
    from gateway.store.repository import Store
    if profile not in SELECTIONS:
        err_console.print(f"unknown --profile {profile!r}; valid: {', '.join(SELECTIONS)}", markup=False)
        raise typer.Exit(2)
    if home is not None:
        existing_home(home)  # a mistyped --home is an error: validate makes no home, and changes nothing in one
    s = config.load(home, create=False, validation_time=at)
    require_artefacts(s)
    store = Store(s) if home is not None else None
    machine = Machine.load(s) if store is not None else None
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
              else evaluate_file(data, f.name, s, size=f.stat().st_size, selection=profile))
        skipped: tuple[Check, ...] = ()
        if ev.format is not Format.STATUS and ev.verdicts:
            ev, skipped = _deposit_checks(s, store, machine, ev, data, partner)
        valid = ev.state is FlowState.IN_INTEGRE
        all_valid &= valid
        errors = [e.as_dict() for e in ev.file_findings] + [
            dict(e, piece=v.index) if len(ev.verdicts) > 1 else e
            for v in ev.verdicts for e in (x.as_dict() for x in v.errors)]
        warnings = [dict(w.as_dict(), piece=v.index) for v in ev.verdicts for w in v.warnings]
        out = {"file": str(f), "format": ev.format.value, "valid": valid, "state": ev.state.value,
               "profile": profile, "errors": errors, "warnings": warnings,
               "pieces": [v.as_dict() for v in ev.verdicts],
               "skipped": [{"check": c.name, "why": c.detail} for c in skipped]}
        if as_json:
            sys.stdout.write(json.dumps(out, ensure_ascii=False, default=str) + "\n")
        else:
            mark = "[green]valid[/]" if valid else "[red]invalid[/]"
            console.print(f"{f}: {ev.format.value} {mark}")
            for label, found in (("", errors), ("warning ", warnings)):
                for e in found:
                    where = location_text(e.get("location"))
                    console.print(f"  {label}{e['code']}: {e['message']}" + (f" [{where}]" if where else "")
                                  + (f" value={e['value']!r}" if e.get("value") is not None else ""),
                                  markup=False, style="yellow" if label else None)
            for v in ev.verdicts:
                for c in v.checks:
                    console.print(f"  check {c.name}: {c.outcome}" + (f": {c.detail}" if c.detail else "")
                                  + (f" ({c.used})" if c.used else ""), markup=False, style="dim")
            for c in skipped:
                console.print(f"  check {c.name}: skipped ({c.detail})", markup=False, style="dim")
    raise typer.Exit(0 if all_valid else 1)

"""`gateway replay`: the flows of the pieces a search finds, evaluated again
(after a fix to the directory, for instance) as new flows linked to them."""
from __future__ import annotations

import getpass
import json
import sys

import typer
from rich import box
from rich.table import Table

from gateway.ops.cli import filters as F
from gateway.ops.options import HomeOpt, JsonOpt, console, err_console, existing_home
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.

app = typer.Typer()


@app.command("replay", help="Replay the flows holding the pieces found (same filters as gateway search), and the "
                            "flows refused whole that --flow, --partner, --file, --since/--until and --code fit: each "
                            "is evaluated again from its archived file as a new flow, reported to its partner. "
                            "A flow is replayed once; --dry-run lists what would be.")
def replay(
    cadre: F.CadreOpt = None, piece_type: F.TypeOpt = None, status: F.StatusOpt = None, since: F.SinceOpt = None,
    until: F.UntilOpt = None, issued_since: F.IssuedSinceOpt = None, issued_until: F.IssuedUntilOpt = None,
    code: F.CodeOpt = None, number: F.NumberOpt = None, billing_file: F.BillingFileOpt = None,
    supplier: F.SupplierOpt = None, recipient: F.RecipientOpt = None, service: F.ServiceOpt = None,
    partner: F.PartnerOpt = None, file: F.FileOpt = None, flow: F.FlowOpt = None,
    accepted: F.AcceptedOpt = False, rejected: F.RejectedOpt = False,
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be replayed; change nothing."),
    as_json: JsonOpt = False, home: HomeOpt = None,
) -> None:
    from gateway.ops.replay import NothingToSelect, replay as replay_flows
    settings = existing_home(home)
    q = F.query_or_exit(settings, dict(
        cadre=cadre, type=piece_type, status=status, since=since, until=until, issued_since=issued_since,
        issued_until=issued_until, code=code, number=number, billing_file=billing_file, supplier=supplier,
        recipient=recipient, service=service, partner=partner, file=file, flow=flow),
        accepted=accepted, rejected=rejected)
    try:
        out = replay_flows(settings, q, dry_run=dry_run, by=f"cli:{getpass.getuser()}")
    except NothingToSelect as exc:
        err_console.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    if as_json:
        for c in out.choices:
            sys.stdout.write(json.dumps({"flow_id": c.flow_id, "partner": c.partner, "file": c.file_name,
                                         "state": c.state, "replay": c.replay, "replayed_by": out.queued.get(
                                             c.flow_id, c.replayed_by), "reason": c.reason or None,
                                         "dry_run": dry_run}, ensure_ascii=False) + "\n")
        return
    width = max([len(c.flow_id) for c in out.choices] + [4])
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    F.id_column(t, "flow", width)
    t.add_column("partner / file / state", overflow="fold")
    F.id_column(t, "replay", width + 2)  # the new flow's id whole, the reasons wrapped around it
    for c in out.choices:
        if c.replay:
            what = "would be replayed" if dry_run else f"→ {out.queued[c.flow_id]}"
        else:
            what = "left: " + c.reason.replace(" F", "\nF").replace(", and", ",\nand")
        t.add_row(c.flow_id, f"{c.partner}\n{c.file_name}\n{c.state}", what)
    if out.choices:
        console.print(t)
    n = len(out.to_replay)
    console.print(f"{n} flow(s) {'would be' if dry_run else ''} replayed".replace("  ", " ")
                  + f", {len(out.left)} left as they are" + ("" if dry_run or not n else
                                                              "; the service processes them (gateway run)"))

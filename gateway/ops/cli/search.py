"""`gateway search`: pieces by cadre, type, dates, status, numbers, SIRETs,
service, partner, file name and error code; as a table, JSON lines or CSV."""
from __future__ import annotations

import typer

from gateway.ops.cli import filters as F
from gateway.ops.options import HomeOpt, JsonOpt, LimitOpt, err_console, existing_home
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.

app = typer.Typer()


@app.command("search", help="Find pieces: every filter narrows (gateway search --cadre A4 --status DEPOSEE "
                            "--since 2026-11-01 --until 2026-11-30); a table, --json lines or --csv. The table "
                            "also lists the flows refused whole (no piece) that the filters fit.")
def search(
    cadre: F.CadreOpt = None, piece_type: F.TypeOpt = None, status: F.StatusOpt = None, since: F.SinceOpt = None,
    until: F.UntilOpt = None, issued_since: F.IssuedSinceOpt = None, issued_until: F.IssuedUntilOpt = None,
    code: F.CodeOpt = None, number: F.NumberOpt = None, billing_file: F.BillingFileOpt = None,
    supplier: F.SupplierOpt = None, recipient: F.RecipientOpt = None, service: F.ServiceOpt = None,
    partner: F.PartnerOpt = None, file: F.FileOpt = None, flow: F.FlowOpt = None,
    accepted: F.AcceptedOpt = False, rejected: F.RejectedOpt = False,
    limit: LimitOpt = 50,
    every: bool = typer.Option(False, "--all", help="With --json or --csv: every piece found, oldest first."),
    as_json: JsonOpt = False, as_csv: F.CsvOpt = False, home: HomeOpt = None,
) -> None:
    from gateway.store.repository import Store
    from gateway.store.search import count_pieces, iter_pieces, refused_flows, search_pieces
    settings = existing_home(home)
    q = F.query_or_exit(settings, dict(
        cadre=cadre, type=piece_type, status=status, since=since, until=until, issued_since=issued_since,
        issued_until=issued_until, code=code, number=number, billing_file=billing_file, supplier=supplier,
        recipient=recipient, service=service, partner=partner, file=file, flow=flow),
        accepted=accepted, rejected=rejected)
    if as_json and as_csv:
        err_console.print("error: --json or --csv, not both")
        raise typer.Exit(2)
    if every and not (as_json or as_csv):
        err_console.print("error: --all exports (with --json or --csv); a table shows --limit rows")
        raise typer.Exit(2)
    store = Store(settings)
    found = iter_pieces(store, q) if every else search_pieces(store, q, limit=limit)
    if as_json:
        F.print_json(found)
    elif as_csv:
        F.print_csv(found)
    else:
        found = list(found)
        total = count_pieces(store, q) if len(found) == limit else None
        F.print_table(found, limit, total=total)
        F.print_refused(refused_flows(store, q, limit=limit), limit)

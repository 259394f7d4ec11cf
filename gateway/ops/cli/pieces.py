"""`gateway piece PIECE_ID`, `gateway piece set-status`, `gateway deadlines`
and `gateway pieces`: the life of pieces, for operators."""
from __future__ import annotations

import json
import mimetypes
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from typer.core import TyperGroup

from gateway.core.records import Document
from gateway.ops.cli import filters as F
from gateway.ops.options import HomeOpt, JsonOpt, LimitOpt, console, err_console, existing_home
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.


class _PieceGroup(TyperGroup):
    """`gateway piece ID` is `gateway piece show ID`."""

    def parse_args(self, ctx, args):  # noqa: ANN001, ANN201
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


piece_app = typer.Typer(cls=_PieceGroup, no_args_is_help=True)  # gateway piece ...
app = typer.Typer()  # gateway deadlines, gateway pieces


@piece_app.command("show")
def show(piece_id: str, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """A piece: where it stands, its parties, its full history and its billing file."""
    from gateway.store import db
    from gateway.store.pieces import piece_history
    from gateway.store.repository import Store
    s = existing_home(home)
    h = piece_history(Store(s), piece_id)
    if h is None:
        err_console.print(f"no piece {piece_id}")
        raise typer.Exit(1)
    p = h.piece
    parties = json.loads(p.parties_json or "{}")
    if as_json:
        out = {"piece": p.model_dump(mode="json", exclude={"verdict_json", "parties_json", "summary_json"}),
               "parties": parties, "summary": json.loads(p.summary_json or "{}"),
               "history": [dict(e.model_dump(mode="json", exclude={"detail_json"}), detail=json.loads(e.detail_json))
                           for e in h.events],
               "dossier": [{"id": d.id, "cadre": d.cadre, "invoice_number": d.invoice_number, "status": d.status,
                            "link_id": d.link_id} for d in h.dossier]}
        typer.echo(json.dumps(out, ensure_ascii=False, indent=1))
        return
    console.print(f"[bold]{p.id}[/] {p.piece_type or p.format} {p.invoice_number or ''} cadre {p.cadre or '-'}: "
                  f"[bold]{p.status}[/]" + (f" (due {db.iso(p.due_at)})" if p.due_at else ""))
    console.print(f"flow {p.flow_id} from {p.partner} ({h.flow.file_name if h.flow else '?'})", markup=False)
    if p.deposited_for:
        console.print(f"deposited by {p.partner} ({p.deposited_as}) for the {p.deposited_for}"
                      + (f" of contract {p.contract_number}" if p.contract_number else ""), markup=False)
    for role, party in parties.items():
        console.print(f"  {role}: " + ", ".join(f"{k}={v}" for k, v in party.items()), markup=False)
    t = Table("when (UTC)", "stage", "outcome", "detail")
    for e in h.events:
        d = json.loads(e.detail_json or "{}")
        t.add_row(db.iso(e.at), e.stage, e.outcome,
                  ", ".join(f"{k}={v}" for k, v in d.items() if v not in (None, "", [], {})))
    console.print(t)
    if h.dossier:
        console.print("billing file (dossier de facturation):")
        for d in h.dossier:
            console.print(f"  {d.id} {d.cadre} {d.invoice_number or ''} {d.status}"
                          + (f" (continues {d.link_id})" if d.link_id else ""), markup=False)


@piece_app.command("set-status")
def set_status(
    piece_id: str,
    status: str,
    role: str = typer.Option(..., "--as", help="The party acting: recipient, supplier, validator1, validator2, "
                                                "moe, moa, platform."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Motif (mandatory to reject, suspend, refuse)."),
    comment: Optional[str] = typer.Option(None, "--comment"),
    siret: Optional[str] = typer.Option(None, "--siret", help="Recycling: the corrected recipient SIRET."),
    service: Optional[str] = typer.Option(None, "--service", help="Recycling: the corrected service code."),
    engagement: Optional[str] = typer.Option(None, "--engagement", help="Recycling: the corrected engagement."),
    attach: list[Path] = typer.Option([], "--attach", help="Completing: a file to add (repeatable)."),
    home: HomeOpt = None,
) -> None:
    """Set a piece's status as a party would by sending a status file; the
    same rules apply (who may, from which status, with which reason)."""
    from gateway.lifecycle import changes as lifecycle
    from gateway.lifecycle.machine import Machine
    from gateway.lifecycle.notices import flush_notices
    from gateway.store.repository import Store
    s = existing_home(home)
    store = Store(s)
    correction = tuple((k, v) for k, v in (("recipient_siret", siret), ("service_code", service),
                                           ("engagement_number", engagement)) if v is not None)
    docs = []
    for f in attach:
        if not f.is_file():
            err_console.print(f"no such file: {f}")
            raise typer.Exit(2)
        docs.append(Document(f.name, mimetypes.guess_type(f.name)[0] or "application/octet-stream", f.read_bytes()))
    machine = Machine.load(s)
    out = lifecycle.change_status(s, store, machine, piece_id, lifecycle.Request(
        status.upper(), reason, comment, correction, tuple(docs)), roles=[role])
    flush_notices(s, store)
    if not out.ok:
        for f in out.findings:
            err_console.print(f"{f.code}: {f.message}", markup=False)
        raise typer.Exit(1)
    console.print(f"{piece_id}: {' -> '.join(out.applied)}", markup=False)


@app.command("deadlines", help="Apply the delays that ran out (validators, MOE).")
def deadlines(
    at: Optional[str] = typer.Option(None, "--at", help="Apply what is due at this ISO datetime (default: now)."),
    home: HomeOpt = None,
) -> None:
    """Apply every delay that has run out (validators' 15 days, the MOE's 7 days...)."""
    from gateway.lifecycle.deadlines import apply_deadlines
    from gateway.store import db
    from gateway.store.repository import Store
    s = existing_home(home)
    when = None
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            err_console.print(f"--at: not an ISO datetime: {at!r}")
            raise typer.Exit(2) from None
        when = db.as_utc(when)
    outcomes = apply_deadlines(s, Store(s), when)
    for o in outcomes:
        console.print(f"{o.piece_id}: {' -> '.join(o.applied) if o.ok else o.findings[0].message}", markup=False)
    console.print(f"{sum(1 for o in outcomes if o.ok)} deadline(s) applied")


@app.command("pieces", help="Accepted pieces and where they stand, newest first (or by deadline with --due); the "
                            "filters of gateway search (--cadre, --status, --since, --recipient...).")
def pieces(
    cadre: F.CadreOpt = None, piece_type: F.TypeOpt = None, status: F.StatusOpt = None, since: F.SinceOpt = None,
    until: F.UntilOpt = None, issued_since: F.IssuedSinceOpt = None, issued_until: F.IssuedUntilOpt = None,
    number: F.NumberOpt = None, billing_file: F.BillingFileOpt = None, supplier: F.SupplierOpt = None,
    recipient: F.RecipientOpt = None, service: F.ServiceOpt = None, partner: F.PartnerOpt = None,
    file: F.FileOpt = None, flow: F.FlowOpt = None,
    due: bool = typer.Option(False, "--due", help="Only pieces waiting on a delay, soonest first."),
    limit: LimitOpt = 50,
    as_json: JsonOpt = False, as_csv: F.CsvOpt = False,
    home: HomeOpt = None,
) -> None:
    """Accepted pieces and where they stand (newest first, or by deadline with --due)."""
    from gateway.store.repository import Store
    from gateway.store.search import search_pieces
    settings = existing_home(home)
    q = F.query_or_exit(settings, dict(
        cadre=cadre, type=piece_type, status=status, since=since, until=until, issued_since=issued_since,
        issued_until=issued_until, number=number, billing_file=billing_file, supplier=supplier,
        recipient=recipient, service=service, partner=partner, file=file, flow=flow), accepted=True, due=due)
    rows = search_pieces(Store(settings), q, limit=limit)
    if as_json:
        F.print_json(rows)
    elif as_csv:
        F.print_csv(rows)
    else:
        F.print_table(rows, limit, due=due)

"""The search filters as command-line options, the same on `gateway search`,
`gateway pieces` and `gateway replay` (the names of ops/search_query.py's
FILTERS), and the one table every one of them prints pieces in."""
from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich import box
from rich.table import Table

from gateway.core.config import Settings
from gateway.ops.options import console, err_console
from gateway.ops.query_names import FILTERS
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.
if TYPE_CHECKING:
    from gateway.store.search import FoundPiece, PieceQuery, RefusedFlow

_HELP = {f.name: f.help for f in FILTERS}


def _opt(name: str) -> typer.models.OptionInfo:
    return typer.Option(f"--{name.replace('_', '-')}", help=_HELP[name], rich_help_panel="Filters")


CadreOpt = Annotated[Optional[str], _opt("cadre")]
TypeOpt = Annotated[Optional[str], _opt("type")]
StatusOpt = Annotated[Optional[str], _opt("status")]
SinceOpt = Annotated[Optional[str], _opt("since")]
UntilOpt = Annotated[Optional[str], _opt("until")]
IssuedSinceOpt = Annotated[Optional[str], _opt("issued_since")]
IssuedUntilOpt = Annotated[Optional[str], _opt("issued_until")]
CodeOpt = Annotated[Optional[str], _opt("code")]
NumberOpt = Annotated[Optional[str], _opt("number")]
BillingFileOpt = Annotated[Optional[str], _opt("billing_file")]
SupplierOpt = Annotated[Optional[str], _opt("supplier")]
RecipientOpt = Annotated[Optional[str], _opt("recipient")]
ServiceOpt = Annotated[Optional[str], _opt("service")]
PartnerOpt = Annotated[Optional[str], _opt("partner")]
FileOpt = Annotated[Optional[str], _opt("file")]
FlowOpt = Annotated[Optional[str], _opt("flow")]
AcceptedOpt = Annotated[bool, typer.Option("--accepted", help="Only accepted pieces.", rich_help_panel="Filters")]
RejectedOpt = Annotated[bool, typer.Option("--rejected", help="Only refused pieces.", rich_help_panel="Filters")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="CSV on standard output (one header line, then one row a piece).")]


def query_or_exit(settings: Settings, values: dict[str, Optional[str]], **flags: bool) -> PieceQuery:
    """The query, or exit 2 with the reason (an unknown value: the valid ones)."""
    from gateway.ops.search_query import QueryError, build_query
    try:
        return build_query(settings, values, **flags)
    except QueryError as exc:
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


def print_json(pieces: Iterable[FoundPiece]) -> None:
    from gateway.ops.search_query import export_row
    for p in pieces:
        sys.stdout.write(json.dumps(export_row(p), ensure_ascii=False) + "\n")


def print_csv(pieces: Iterable[FoundPiece]) -> None:
    from gateway.ops.search_query import EXPORT_COLUMNS, csv_cells
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(EXPORT_COLUMNS)
    for p in pieces:
        out.writerow(csv_cells(p))


def id_column(t: Table, header: str, width: int) -> None:
    """A column that is never wrapped nor cut: ids and SIRETs are copied from it."""
    t.add_column(header, min_width=width, overflow="fold")


def pieces_table(pieces: list[FoundPiece], *, due: bool = False) -> Table:
    """Ids and SIRETs whole, never cut (the other columns wrap around them):
    they are what an operator copies into the next command."""
    from gateway.store import db
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    id_column(t, "piece", max([len(p.id) for p in pieces] + [5]))
    id_column(t, "supplier → recipient", max([max(len(p.supplier_id or ""), len(p.recipient_siret or "") + 2)
                                                for p in pieces] + [20]))
    t.add_column("number, cadre, type, " + ("due (UTC)" if due else "deposited"), overflow="fold")
    t.add_column("status / codes", overflow="fold")
    for p in pieces:
        parties = f"{p.supplier_id or '-'}\n→ {p.recipient_siret or '-'}" + (f"\n  {p.service_code}"
                                                                           if p.service_code else "")
        when = (db.iso(p.due_at) if p.due_at else "") if due else f"{p.received_at:%Y-%m-%d}"
        what = f"{p.invoice_number or '-'}\n{p.cadre or '-'} {p.piece_type}\n{when}"
        t.add_row(p.id, parties, what, "\n".join((p.status, *p.error_codes)))
    return t


def print_table(pieces: list[FoundPiece], limit: int, *, due: bool = False, total: int | None = None) -> None:
    if pieces:
        console.print(pieces_table(pieces, due=due))
    shown = f"{len(pieces)} piece(s)"
    if total is not None and total > len(pieces):
        shown += f" of {total} (--limit, or --json/--csv --all for every one)"
    elif len(pieces) == limit:
        shown += " (limit reached: --limit)"
    console.print(shown)


def print_refused(flows: list[RefusedFlow], limit: int) -> None:
    """The flows refused whole, without a piece, that the filters fit: no piece
    shows them (`gateway report rejections` counts them, `gateway replay` reaches them)."""
    if not flows:
        return
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    id_column(t, "flow refused whole", max(len(f.id) for f in flows))
    t.add_column("partner / file, deposited", overflow="fold")
    t.add_column("codes", overflow="fold")
    for f in flows:
        t.add_row(f.id, f"{f.partner}\n{f.file_name}\n{f.received_at:%Y-%m-%d %H:%M}", "\n".join(f.codes) or "-")
    console.print(t)
    console.print(f"{len(flows)} flow(s) refused whole, without a piece" + (" (limit reached: --limit)"
                                                                          if len(flows) == limit else ""))

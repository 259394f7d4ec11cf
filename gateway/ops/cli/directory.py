"""`gateway directory ...`: import the directory of public structures, show one."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from gateway.core import config
from gateway.ops.options import existing_home
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.

app = typer.Typer(help="Directory of public structures (annuaire des destinataires).", no_args_is_help=True)

Home = Annotated[Optional[Path], typer.Option("--home", help="Gateway home (default: $GATEWAY_HOME, else the current folder).")]


def _yes(flag: bool) -> str:
    return "oui" if flag else "non"


@app.command("import")
def import_cmd(
    files: Annotated[Optional[list[Path]], typer.Argument(help="Structures export and/or services files (;-separated).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Also import the packaged demo directory.")] = False,
    home: Home = None,
) -> None:
    """Import (or update) structures and services; bad rows are listed with their line number."""
    from gateway.rules import directory
    paths = list(files or []) + (list(directory.demo_files()) if demo else [])
    if not paths:
        raise typer.BadParameter("give at least one FILE, or --demo")
    settings = config.load(home)
    console = Console()
    reports = directory.import_files(settings, paths)
    table = Table(title="Directory import")
    for col in ("File", "Kind", "Created", "Updated", "Rejected rows"):
        table.add_column(col)
    for rep in reports:
        table.add_row(Path(rep.path).name, rep.kind, str(rep.created), str(rep.updated), str(len(rep.errors)))
    console.print(table)
    for rep in reports:
        for line, message in rep.errors:
            console.print(f"[red]{Path(rep.path).name}:{line}[/red] {message}", highlight=False)
    if any(rep.errors for rep in reports):
        raise typer.Exit(1)


@app.command("show")
def show(siret: Annotated[str, typer.Argument(help="SIRET of the structure.")], home: Home = None) -> None:
    """Show a structure, its routing obligations and its services."""
    from gateway.rules import directory
    settings = existing_home(home)  # read-only: never makes a home
    console = Console()
    s = directory.find_structure(settings, siret.strip())
    if s is None:
        console.print(f"Structure {siret} is not in the directory.")
        raise typer.Exit(1)
    info = Table(title=f"{s.raison_sociale} ({s.identifiant})", show_header=False)
    info.add_column("Field")
    info.add_column("Value")
    address = ", ".join(p for p in (s.address, s.address2, s.address3, f"{s.postal_code} {s.city}".strip(),
                                    s.country_name or s.country_code) if p)
    for label, value in (
        ("Identifiant", f"{s.identifiant} ({s.type_identifiant})"),
        ("Active", _yes(s.active)),
        ("Code service obligatoire", _yes(s.service_required)),
        ("Engagement obligatoire", _yes(s.engagement_required)),
        ("Code service ou engagement", _yes(s.service_or_engagement)),
        ("MOA", _yes(s.is_moa)),
        ("MOA uniquement", _yes(s.moa_only)),
        ("Émetteur / récepteur EDI", f"{_yes(s.edi_emitter)} / {_yes(s.edi_receiver)}"),
        ("Statut de mise en paiement", _yes(s.manages_payment_status)),
        ("Adresse", address),
        ("Courriel", s.email),
        ("Téléphone", s.phone),
    ):
        info.add_row(label, value)
    console.print(info)
    if not s.services:
        console.print("No services listed for this structure.")
        return
    services = Table(title="Services")
    for col in ("Code", "Nom", "Actif", "Engagement obligatoire"):
        services.add_column(col)
    for svc in s.services:
        services.add_row(svc.code, svc.name, _yes(svc.active), _yes(svc.engagement_required))
    console.print(services)

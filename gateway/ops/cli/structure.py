"""`gateway structure ...`: structures, their roles in contracts, the deposits
their actors agreed one makes for another, and declaration files."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gateway.core.roles import CONTRACT_ROLES, role_fr
from gateway.ops.options import HomeOpt, JsonOpt, existing_home
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.
if TYPE_CHECKING:
    from gateway.store.repository import Store

app = typer.Typer(no_args_is_help=True)
actor_app = typer.Typer(no_args_is_help=True, help="The structures taking part in a contract, with their role.")
app.add_typer(actor_app, name="actor")
ROLES_HELP = f"One of {', '.join(CONTRACT_ROLES)} (or moe, moa)."


def _store(home: Optional[Path]) -> Store:
    from gateway.store.repository import Store
    return Store(existing_home(home))


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command("add")
def add(siret: str, name: Annotated[str, typer.Option("--name", help="Its name (raison sociale).")] = "",
        home: HomeOpt = None) -> None:
    """Declare a structure (or rename one)."""
    from gateway.store import structures as st
    try:
        s = st.add_structure(_store(home), siret, name)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"structure {s.siret} {s.name}".rstrip())


@app.command("list")
def list_(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Structures, with the partners acting for them."""
    from gateway.store import structures as st
    store = _store(home)
    acting = st.partners_by_siret_now(store)
    rows = st.structures(store)
    for s in rows:
        partners = [a.partner + (f" ({','.join(a.services)})" if a.services else "") for a in acting.get(s.siret, ())]
        if as_json:
            typer.echo(json.dumps({"siret": s.siret, "name": s.name, "partners": partners}, ensure_ascii=False))
        else:
            typer.echo(f"{s.siret}  {s.name or '-'}  partners: {', '.join(partners) or '-'}")
    if not rows and not as_json:
        typer.echo("no structures")


@app.command("show")
def show(siret: str, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """A structure: the partners acting for it and its roles in contracts."""
    from gateway.store import structures as st
    store = _store(home)
    s = st.structure(store, siret)
    if s is None:
        _fail(f"no structure {siret}", 1)
    acting = st.acts_for(store, siret=siret)
    roles = st.actors(store, siret=siret)
    if as_json:
        typer.echo(json.dumps({"siret": s.siret, "name": s.name,
                               "partners": [{"partner": a.partner, "services": list(a.services)} for a in acting],
                               "contracts": [{"contract": a.contract, "role": a.role, "service": a.service}
                                             for a in roles]}, ensure_ascii=False, indent=1))
        return
    typer.echo(f"structure {s.siret} {s.name}".rstrip())
    for a in acting:
        typer.echo(f"  acted for by partner {a.partner}" + (f" in services {', '.join(a.services)}" if a.services
                                                            else " (every service)"))
    for a in roles:
        typer.echo(f"  {role_fr(a.role)} ({a.role}) of contract {a.contract}" + (f", service {a.service}"
                                                                                  if a.service else ""))


@app.command("remove")
def remove(siret: str, home: HomeOpt = None) -> None:
    """Remove a structure, the partners' right to act for it and its roles in contracts."""
    from gateway.store import structures as st
    if not st.remove_structure(_store(home), siret):
        _fail(f"no structure {siret}", 1)
    typer.echo(f"structure {siret} removed")


@actor_app.command("add")
def actor_add(contract: Annotated[str, typer.Argument(help="Numéro de marché (BT-12).")], siret: str,
              role: Annotated[str, typer.Argument(help=ROLES_HELP)],
              service: Annotated[str, typer.Option("--service", help="Its service in this contract.")] = "",
              home: HomeOpt = None) -> None:
    """A structure takes part in a contract with a role."""
    from gateway.store import structures as st
    try:
        a = st.add_actor(_store(home), contract, siret, role, service)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"contract {a.contract}: {a.siret} is {a.role}" + (f" (service {a.service})" if a.service else ""))


@actor_app.command("remove")
def actor_remove(contract: str, siret: str, role: str, home: HomeOpt = None) -> None:
    """A structure no longer holds that role in the contract."""
    from gateway.store import structures as st
    try:
        gone = st.remove_actor(_store(home), contract, siret, role)
    except ValueError as exc:
        _fail(str(exc))
    if not gone:
        _fail(f"contract {contract}: {siret} is not {role}", 1)
    typer.echo(f"contract {contract}: {siret} is no longer {role}")


@actor_app.command("list")
def actor_list(contract: Annotated[Optional[str], typer.Argument(help="Only this contract.")] = None,
               home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The actors of contracts, and the agreements to deposit for another."""
    from gateway.store import structures as st
    store = _store(home)
    rows = st.actors(store, contract)
    agreed = st.agreements(store, contract)
    if as_json:
        for a in rows:
            typer.echo(json.dumps({"contract": a.contract, "siret": a.siret, "role": a.role, "service": a.service}))
        for g in agreed:
            typer.echo(json.dumps({"contract": g.contract, "agreement": {"by": g.by_role, "for": g.for_role}}))
        return
    for a in rows:
        typer.echo(f"{a.contract}  {a.role:<17}  {a.siret}" + (f"  service {a.service}" if a.service else ""))
    for g in agreed:
        where = "every contract" if g.contract == st.EVERY_CONTRACT else g.contract
        typer.echo(f"{where}: the {g.by_role} may deposit for the {g.for_role}")
    if not rows and not agreed:
        typer.echo("no actors")


@app.command("agree")
def agree(contract: Annotated[str, typer.Argument(help="Numéro de marché, or * for every contract.")],
          by: Annotated[str, typer.Option("--by", help=f"The role that deposits. {ROLES_HELP}")],
          for_: Annotated[str, typer.Option("--for", help="The role it deposits for.")],
          home: HomeOpt = None) -> None:
    """Record that the actors of a contract agreed one role deposits for another
    (the titulaire deposits the état d'acompte when the MOE has no account)."""
    from gateway.store import structures as st
    try:
        g = st.add_agreement(_store(home), contract, by, for_)
    except ValueError as exc:
        _fail(str(exc))
    where = "every contract" if g.contract == st.EVERY_CONTRACT else f"contract {g.contract}"
    typer.echo(f"{where}: the {g.by_role} may deposit for the {g.for_role}")


@app.command("import")
def import_(file: Annotated[Path, typer.Argument(help="A TOML declaration file (docs/examples/structures.toml).")],
            home: HomeOpt = None) -> None:
    """Add or update what a declaration file gives: structures, the partners acting for them, the actors of
    contracts and their agreements. Checked whole first: one mistake and nothing is written."""
    from gateway.ops import declarations
    from gateway.store import structures as st
    try:
        d = declarations.read(file)
    except declarations.DeclarationError as exc:
        _fail(str(exc))
    n = st.import_rows(_store(home), d.structures, d.acts_for, d.actors, d.agreements)
    typer.echo(f"imported {n['structures']} structure(s), {n['acts_for']} partner right(s), "
               f"{n['actors']} contract actor(s), {n['agreements']} agreement(s)")

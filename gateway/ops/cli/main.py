"""The `gateway` command line: one app, each command group registered in one line.

Registration order is the order `gateway --help` lists them in.
"""
from __future__ import annotations

import typer

from gateway.ops.cli import conformance, directory, flows, operator, partner, pieces, report, rules, run, validate, web
from gateway.ops.cli import housekeeping, replay, search
from gateway.ops.cli import structure

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="E-invoicing exchange gateway: intake, validation, routing and status files.")

app.add_typer(run.app)  # run
app.add_typer(validate.app)  # validate
app.add_typer(flows.app)  # flows, flow
app.add_typer(pieces.app)  # deadlines, pieces
app.add_typer(conformance.app)  # conformance
app.add_typer(web.app)  # web
app.add_typer(directory.app, name="directory", help="Directory of public structures and services.")
app.add_typer(partner.app, name="partner", help="Partner accounts (SFTP logins, folders).")
app.add_typer(pieces.piece_app, name="piece",
              help="A piece's history (gateway piece ID) and status changes (gateway piece set-status).")
app.add_typer(report.app, name="report", help="Operators' reports (rejections by partner and code).")
app.add_typer(operator.app, name="operator", help="Operators who log in to the web pages.")
app.add_typer(rules.app, name="rules", help="The artefacts (XSD, EN 16931 rules) that judge each syntax and profile.")
app.add_typer(search.app)  # search
app.add_typer(replay.app)  # replay
app.add_typer(housekeeping.app)  # purge
app.add_typer(structure.app, name="structure",
              help="Structures, their roles in contracts (marchés) and who may deposit for whom.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

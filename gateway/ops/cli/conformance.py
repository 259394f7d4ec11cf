"""`gateway conformance CORPUS`: the comparison (ops/conformance.py), printed."""
from __future__ import annotations

from pathlib import Path

import typer
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.


app = typer.Typer()


@app.command("conformance", help="Compare `gateway validate` with a corpus's EXPECTED.tsv.")
def conformance(corpus: Path = typer.Argument(..., help="The corpus folder holding EXPECTED.tsv"),
                verbose: bool = typer.Option(False, "-v")) -> None:
    from gateway.ops.conformance import check_corpus
    expected = corpus / "EXPECTED.tsv"
    if not corpus.is_dir():
        typer.echo(f"error: {corpus} is not a folder; give a corpus folder holding EXPECTED.tsv", err=True)
        raise typer.Exit(2)
    if not expected.is_file():
        typer.echo(f"error: {corpus} has no EXPECTED.tsv: conformance compares `gateway validate` with the "
                   "verdicts a corpus expects, one row per file (file, kind, expected, source_says, observed, "
                   "tab-separated). To validate files without expectations: gateway validate FILE...", err=True)
        raise typer.Exit(2)
    run = check_corpus(corpus)
    t = run.tally
    typer.echo(f"conformance over {run.files} files of {run.corpus}")
    for level in sorted(t.total):
        typer.echo(f"  {level:<10} {t.ok[level]:>4} / {t.total[level]:<4} matched")
    typer.echo(f"  known disagreements between sources and reference tools: {len(t.notes)}")
    if verbose:
        for n in t.notes:
            typer.echo(f"    note: {n}")
    for fl in t.failures:
        typer.echo(f"  MISMATCH {fl}")
    matched = sum(t.ok.values())
    total = sum(t.total.values())
    typer.echo(f"conformance: {matched} passed, {total - matched} failed")
    raise typer.Exit(0 if not t.failures else 1)

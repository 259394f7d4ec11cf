"""`gateway purge`: archived files and sent return files past the retention."""
from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from gateway.ops.options import HomeOpt, JsonOpt, console, err_console, existing_home
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.

app = typer.Typer()


@app.command("purge", help="Delete archived files and return files already sent to a partner's server, older than "
                           "--older-than DAYS (default: [housekeeping] retention_days), never one a piece still "
                           "needs (a piece not in a final status, a billing file still open). --dry-run lists them.")
def purge(
    older_than: Optional[float] = typer.Option(None, "--older-than", metavar="DAYS",
                                               help="Files of flows received more than DAYS days ago."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be deleted; delete nothing."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also list the files kept, and why."),
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    from gateway.ops.housekeeping import purge as purge_files, retention_days
    from gateway.store import db
    settings = existing_home(home)
    try:
        days = older_than if older_than is not None else retention_days(settings)
    except ValueError as exc:
        err_console.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    if not days > 0:
        err_console.print("error: give --older-than DAYS, or set [housekeeping] retention_days in gateway.toml "
                          "(0 keeps everything)")
        raise typer.Exit(2)
    rep = purge_files(settings, days, dry_run=dry_run)
    if as_json:
        sys.stdout.write(json.dumps({
            "before": db.iso(rep.before), "dry_run": rep.dry_run, "bytes": rep.bytes,
            "purged": [{"kind": p.kind, "path": str(p.path), "size": p.size, "flows": list(p.flows)}
                       for p in rep.purged],
            "kept": [{"path": k.path, "flows": list(k.flows), "reason": k.reason} for k in rep.kept],
            "failed": [{"path": str(p), "error": e} for p, e in rep.failed]}, ensure_ascii=False, indent=1) + "\n")
        raise typer.Exit(1 if rep.failed else 0)
    verb = "would be deleted" if dry_run else "deleted"
    for p in rep.purged:
        console.print(f"{'would delete' if dry_run else 'deleted'} {p.kind} {p.path} ({p.size} bytes)" + (f" [flows {', '.join(p.flows)}]"
                                                                      if p.flows else ""), markup=False)
    if verbose:
        for k in rep.kept:
            console.print(f"kept {k.path}: {k.reason}", markup=False)
    for path, error in rep.failed:
        err_console.print(f"could not delete {path}: {error}", markup=False)
    console.print(f"{len(rep.purged)} file(s), {rep.bytes} bytes {verb} (received before {db.iso(rep.before)}); "
                  f"{len(rep.kept)} archived file(s) kept because a piece still needs them" +
                  ("" if verbose or not rep.kept else " (-v: which and why)"), markup=False)
    raise typer.Exit(1 if rep.failed else 0)

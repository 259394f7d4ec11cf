"""`gateway flows` and `gateway flow ID`: what was received and what became of it."""
from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich import box
from rich.table import Table

from gateway.ops.cli.filters import id_column
from gateway.ops.options import HomeOpt, JsonOpt, LimitOpt, console, err_console, existing_home
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.

app = typer.Typer()


@app.command()
def flows(
    home: HomeOpt = None,
    limit: LimitOpt = 30,
    partner: Optional[str] = typer.Option(None, "--partner"),
    state: Optional[str] = typer.Option(None, "--state"),
    as_json: JsonOpt = False,
) -> None:
    """List recent flows with their state."""
    from gateway.ops.flow_json import flow_json
    from gateway.ops.web import STATES
    from gateway.store.repository import Store
    st = Store(existing_home(home))
    if state and state.upper() not in STATES:
        err_console.print(f"error: unknown --state {state!r}; valid: {', '.join(STATES)}", markup=False)
        raise typer.Exit(2)
    rows = st.recent_flows(limit, partner, state.upper() if state else None)
    if as_json:
        for f in rows:
            sys.stdout.write(json.dumps(flow_json(f), ensure_ascii=False) + "\n")
        return
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    id_column(t, "flow", max([len(f.id) for f in rows] + [4]))
    for header in ("partner / file", "received (UTC)", "state, format", "ok/all"):
        t.add_column(header, overflow="fold")
    for f in rows:
        # which flow it duplicates or replays: gateway flow ID
        note = ("\n(a duplicate)" if f.duplicate_of else "\n(a replay)" if f.replay_of else
                "\nin progress" if f.queue != "done" else "")
        t.add_row(f.id, f"{f.partner}\n{f.file_name}", f"{f.received_at:%Y-%m-%d %H:%M:%S}",
                  f"{f.state}\n{f.format or ''}{note}", f"{f.pieces_valid}/{f.pieces_total}")
    console.print(t)


@app.command()
def flow(flow_id: str, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Show one flow: its pieces, their errors and its history."""
    from gateway.ops.flow_json import flow_detail_json
    from gateway.ops.rejections import location_text
    from gateway.store.replays import replay_of_flow
    from gateway.store.repository import Store
    st = Store(existing_home(home))
    f = st.flow(flow_id)
    if f is None:
        err_console.print(f"no flow {flow_id}")
        raise typer.Exit(1)
    pieces = st.pieces(flow_id)
    history = st.history(flow_id)
    replayed_by = replay_of_flow(st, flow_id)
    if as_json:
        sys.stdout.write(json.dumps(flow_detail_json(f, pieces, history, replayed_by=replayed_by),
                                    ensure_ascii=False, indent=2) + "\n")
        return
    console.print(f"[bold]{f.id}[/] {f.partner}/{f.file_name} ({f.size} bytes, sha256 {f.sha256[:16]}…)")
    console.print(f"received {f.received_at:%Y-%m-%d %H:%M:%S} UTC via {f.channel}; format {f.format}; "
                  f"state [bold]{f.state}[/]" + (f"; duplicate of {f.duplicate_of}" if f.duplicate_of else "")
                  + (f"; replay of {f.replay_of}" if f.replay_of else "")
                  + (f"; replayed by {replayed_by}" if replayed_by else ""))
    for p in pieces:
        v = json.loads(p.verdict_json)
        console.print(f"  piece {p.index} {p.name}: {p.format} {'valid' if p.valid else 'REJECTED'} status {p.status}")
        for e in v.get("errors", []):
            where = location_text(e.get("location"))
            console.print(f"    {e['code']}: {e['message']}" + (f" [{where}]" if where else ""), markup=False)
    console.print("history:")
    for e in history:
        console.print(f"  {e.at:%Y-%m-%d %H:%M:%S} {e.stage:<12} {e.outcome:<12} {e.piece_id or ''} {e.detail_json}",
                      markup=False)

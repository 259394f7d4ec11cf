"""`gateway flows` and `gateway flow ID`: what was received and what became of it."""
from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.table import Table

from gateway.core import config
from gateway.ops.options import HomeOpt, JsonOpt, LimitOpt, console, err_console
from gateway.ops.rejections import location_text
from gateway.store.repository import Store

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
    st = Store(config.load(home))
    rows = st.recent_flows(limit, partner, state)
    if as_json:
        for f in rows:
            sys.stdout.write(json.dumps(f.model_dump(mode="json"), default=str) + "\n")
        return
    t = Table("flow", "partner", "file", "received (UTC)", "format", "state", "pieces ok/all", "note")
    for f in rows:
        note = f"duplicate of {f.duplicate_of}" if f.duplicate_of else ("in progress" if f.queue != "done" else "")
        t.add_row(f.id, f.partner, f.file_name, f"{f.received_at:%Y-%m-%d %H:%M:%S}", f.format or "",
                  f.state, f"{f.pieces_valid}/{f.pieces_total}", note)
    console.print(t)


@app.command()
def flow(flow_id: str, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Show one flow: its pieces, their errors and its history."""
    st = Store(config.load(home))
    f = st.flow(flow_id)
    if f is None:
        err_console.print(f"no flow {flow_id}")
        raise typer.Exit(1)
    pieces = st.pieces(flow_id)
    history = st.history(flow_id)
    if as_json:
        sys.stdout.write(json.dumps({
            "flow": f.model_dump(mode="json"),
            "pieces": [dict(p.model_dump(mode="json", exclude={"verdict_json"}), verdict=json.loads(p.verdict_json))
                       for p in pieces],
            "history": [dict(e.model_dump(mode="json", exclude={"detail_json"}), detail=json.loads(e.detail_json))
                        for e in history]}, default=str, ensure_ascii=False, indent=2) + "\n")
        return
    console.print(f"[bold]{f.id}[/] {f.partner}/{f.file_name} ({f.size} bytes, sha256 {f.sha256[:16]}…)")
    console.print(f"received {f.received_at:%Y-%m-%d %H:%M:%S} UTC via {f.channel}; format {f.format}; "
                  f"state [bold]{f.state}[/]" + (f"; duplicate of {f.duplicate_of}" if f.duplicate_of else ""))
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

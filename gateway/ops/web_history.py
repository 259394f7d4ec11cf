"""A flow's or a piece's event log in words: one readable row per event
("received lot.zip, 18234 bytes, by sftp"; "A_VALIDER_1 → MISE_A_DISPOSITION
by the validator"), never the stored JSON.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.ops.chrome import esc
from gateway.ops.rejections import fmt_time, json_object
from gateway.ops.web_links import flow_link, piece_link



def _value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(_value(x) for x in v) or "none"
    if isinstance(v, dict):
        return "; ".join(f"{k} {_value(x)}" for k, x in v.items() if x not in (None, "", [], {}))
    if v is True:
        return "yes"
    if v is False:
        return "no"
    return str(v)


def _codes(v: Any) -> str:
    if isinstance(v, str):
        v = [c for c in v.split(",") if c]
    return _value(v) if v else "none"


def event_text(stage: str, outcome: str, d: dict[str, Any]) -> str:
    """What happened, in a sentence (plain text, escaped by the caller)."""
    if stage == "reception":
        said = f"received {d.get('file') or '?'}"
        if d.get("size") is not None:
            said += f", {d['size']} bytes"
        if d.get("channel"):
            said += f", by {d['channel']}"
        if d.get("duplicate_of"):
            said += f"; same bytes as flow {d['duplicate_of']} (a duplicate)"
        return said
    if stage == "validation":
        if "errors" in d or "format" in d:
            return f"file read as {d.get('format') or '?'}: {outcome}; file errors: {_codes(d.get('errors'))}"
        return f"piece {outcome}; codes: {_codes(d.get('codes'))}"
    if stage == "status":
        if outcome == "conflict":
            return f"status change from {d.get('from') or '?'} lost: the piece had moved meanwhile"
        said = f"{d.get('from') or '(new)'} → {outcome}"
        if d.get("role"):
            said += f" by the {d['role']}"
        for key, label in (("reason", "reason"), ("comment", "comment"), ("linked", "with piece")):
            if d.get(key):
                said += f"; {label} {_value(d[key])}"
        return said
    if stage == "delivery":
        return f"delivered to the {outcome} in {d.get('dir') or '?'}"
    if stage == "report":
        return f"report {outcome} in {d.get('dir') or '?'}"
    rest = "; ".join(f"{k} {_value(v)}" for k, v in d.items() if v not in (None, "", [], {}))
    return f"{outcome}" + (f"; {rest}" if rest else "")


def history_table(events: list[Any], *, show_piece: bool = True,
                  piece_label: Callable[[str], str] | None = None) -> str:
    """Rows: when, stage, what happened, and the piece (a link) when asked."""
    rows = []
    for e in events:
        d = json_object(e.detail_json)
        piece = ""
        if show_piece and e.piece_id:
            label = piece_label(e.piece_id) if piece_label else e.piece_id
            piece = f'<a href="{esc(piece_link(e.piece_id))}">{esc(label)}</a>'
        text = esc(event_text(e.stage, e.outcome, d))
        if e.stage == "status" and d.get("linked"):
            text += f' (<a href="{esc(piece_link(str(d["linked"])))}">{esc(d["linked"])}</a>)'
        if e.stage == "reception" and d.get("duplicate_of"):
            text += f' (<a href="{esc(flow_link(str(d["duplicate_of"])))}">original</a>)'
        rows.append(f'<tr data-stage="{esc(e.stage)}"><td>{esc(fmt_time(e.at))}</td><td>{esc(e.stage)}</td>'
                    f"<td>{esc(e.outcome)}</td>" + (f"<td>{piece}</td>" if show_piece else "")
                    + f'<td class="msg">{text}</td></tr>')
    head = "<th>piece</th>" if show_piece else ""
    return ('<table class="history"><thead><tr><th>when (UTC)</th><th>stage</th><th>outcome</th>'
            f"{head}<th>what happened</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")

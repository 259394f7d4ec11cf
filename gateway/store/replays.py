"""Replays: a flow's archived bytes evaluated again as a new flow.

After a fix outside the gateway (a service added to the directory, a
structure activated), the flows refused for it are replayed: each becomes a
new flow (channel "replay", `replay_of` naming the old one) queued like any
other, read from the same archived file, reported to its partner as usual.
A flow is replayed once (a unique index on `replay_of`): replaying the same
selection again adds nothing. A replay is itself replayed only when the
directory changed after it was processed, since otherwise it would only
give the same answer.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.store import db
from gateway.store.repository import Store, new_flow_id
from gateway.store.tables import DirectoryService, DirectoryStructure, Event, Flow

_CHUNK = 500


@dataclass(frozen=True)
class ReplayChoice:
    """One flow a replay selection holds, and what a replay does with it."""

    flow_id: str
    partner: str
    file_name: str
    received_at: datetime
    state: str
    replay: bool  # False: left as it is, for `reason`
    reason: str = ""  # why not: "already replayed by F...", "in progress", "archive purged", ...
    replayed_by: str | None = None


def directory_changed_at(store: Store) -> datetime | None:
    """The last change to the directory of structures and services."""
    with store.session() as s:
        times = [s.execute(select(func.max(t.updated_at))).scalar() for t in (DirectoryStructure, DirectoryService)]
    known = [db.as_utc(t) for t in times if t is not None]
    return max(known) if known else None


def plan_replays(store: Store, flow_ids: Sequence[str]) -> list[ReplayChoice]:
    """What replaying these flows would do, flow by flow, in the order given."""
    changed = directory_changed_at(store)
    rows: dict[str, Flow] = {}
    replayed: dict[str, str] = {}
    with store.session() as s:
        for i in range(0, len(flow_ids), _CHUNK):
            chunk = list(flow_ids[i:i + _CHUNK])
            rows.update((f.id, f) for f in s.execute(select(Flow).where(Flow.id.in_(chunk))).scalars())
            replayed.update(s.execute(select(Flow.replay_of, Flow.id).where(Flow.replay_of.in_(chunk))).all())
    out = []
    for fid in flow_ids:
        f = rows.get(fid)
        if f is None:
            continue
        why = ""
        if fid in replayed:
            why = f"already replayed by {replayed[fid]}"
        elif f.queue != "done":
            why = "in progress"
        elif not f.archive_path:
            why = "its archived file was purged"
        elif f.duplicate_of:
            why = f"a duplicate of {f.duplicate_of}"
        elif f.replay_of and (changed is None or (f.updated_at and db.as_utc(f.updated_at) >= changed)):
            why = f"a replay of {f.replay_of}, and the directory has not changed since"
        out.append(ReplayChoice(fid, f.partner, f.file_name, db.as_utc(f.received_at), f.state, not why, why,
                                replayed.get(fid)))
    return out


def record_replays(store: Store, flow_ids: Sequence[str], *, by: str = "", query: str = "") -> dict[str, str]:
    """Queue a replay of each flow: old flow id -> new flow id, for those
    queued now (one replayed meanwhile by someone else is left out)."""
    if not flow_ids:
        return {}
    now = db.utcnow()
    ins = pg_insert if store.engine.dialect.name == "postgresql" else sqlite_insert
    with store.session() as s:
        olds = list(s.execute(select(Flow).where(Flow.id.in_(list(flow_ids)))).scalars())
        rows = [dict(id=new_flow_id(now), partner=f.partner, channel="replay", file_name=f.file_name,
                     sha256=f.sha256, size=f.size, received_at=now, archive_path=f.archive_path, duplicate_of=None,
                     replay_of=f.id, queue="queued", state="IN_RECU", attempts=0, pieces_total=0, pieces_valid=0,
                     updated_at=now) for f in olds]
        if not rows:
            return {}
        s.execute(ins(Flow.__table__).on_conflict_do_nothing(index_elements=["replay_of"]), rows)
        mine = {r["id"] for r in rows}
        made = {old: new for old, new in s.execute(select(Flow.replay_of, Flow.id).where(
            Flow.replay_of.in_([f.id for f in olds]))).all() if new in mine}
        by_id = {f.id: f for f in olds}
        events = []
        for old, new in made.items():
            f = by_id[old]
            detail = {"file": f.file_name, "sha256": f.sha256, "size": f.size, "channel": "replay",
                      "replay_of": old, "by": by, "query": query}
            events.append(dict(flow_id=new, piece_id=None, stage="reception", outcome="replay", at=now,
                               detail_json=json.dumps(detail, ensure_ascii=False)))
            events.append(dict(flow_id=old, piece_id=None, stage="replay", outcome="replayed", at=now,
                               detail_json=json.dumps({"flow": new, "by": by, "query": query}, ensure_ascii=False)))
        if events:
            s.execute(Event.__table__.insert(), events)
        s.commit()
    return made


def replay_of_flow(store: Store, flow_id: str) -> str | None:
    """The flow that replays this one, if any."""
    with store.session() as s:
        return s.execute(select(Flow.id).where(Flow.replay_of == flow_id)).scalar()

"""Replay by query: the flows holding the pieces a search finds are
evaluated again from their archived bytes, each as a new flow linked to the
old one (store/replays.py), processed by the workers and reported to its
partner as any flow. Used by `gateway replay` and the web's /search page."""
from __future__ import annotations

from dataclasses import dataclass, field

from gateway.core.config import Settings
from gateway.store.replays import ReplayChoice, plan_replays, record_replays
from gateway.store.repository import Store
from gateway.store.search import PieceQuery, matching_flows


class NothingToSelect(ValueError):
    """A replay of everything is never what an operator means: a filter is required."""


@dataclass(frozen=True)
class ReplayOutcome:
    choices: tuple[ReplayChoice, ...]  # every flow the query selects, in the order received
    queued: dict[str, str] = field(default_factory=dict)  # old flow id -> its replay (empty on a dry run)

    @property
    def to_replay(self) -> tuple[ReplayChoice, ...]:
        return tuple(c for c in self.choices if c.replay)

    @property
    def left(self) -> tuple[ReplayChoice, ...]:
        return tuple(c for c in self.choices if not c.replay)


def replay(settings: Settings, q: PieceQuery, *, dry_run: bool = False, by: str = "") -> ReplayOutcome:
    """Replay the flows `q` selects (NothingToSelect for an empty query)."""
    if q.is_empty():
        raise NothingToSelect("give at least one filter (e.g. --code DEST_INC --since 2026-11-01)")
    store = Store(settings)
    choices = tuple(plan_replays(store, matching_flows(store, q)))
    if dry_run:
        return ReplayOutcome(choices)
    queued = record_replays(store, [c.flow_id for c in choices if c.replay], by=by, query=q.described())
    # one replayed meanwhile by someone else is no longer to replay
    return ReplayOutcome(tuple(c if c.flow_id in queued or not c.replay else
                               ReplayChoice(c.flow_id, c.partner, c.file_name, c.received_at, c.state, False,
                                            "replayed meanwhile by another operator") for c in choices), queued)

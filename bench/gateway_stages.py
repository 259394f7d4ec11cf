"""Where a gateway's time goes, stage by stage: the real `gateway run --once`
code, in one process (workers = 0), with a clock around its stage functions.
Each stage's time is its own (a stage called inside another is not counted
twice); "other" is what the clock did not name (loops, events, state)."""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import link_into_inbox

from gateway.core import config
from gateway.core import files
from gateway.channels import folders as intake
from gateway.lifecycle import new_pieces, notices
from gateway.pipeline import stages
from gateway.outputs import reports
from gateway.routing import delivery
from gateway.runtime import service
from gateway.store import repository as store
from gateway.runtime import worker


class StageClock:
    """Exclusive wall time and calls per stage, with a stack so nested stages pause their caller."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock  # wall time by default; time.process_time for CPU
        self.spent: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._stack: list[list[Any]] = []  # [name, started]

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            now = self.clock()
            self.calls[name] += 1
            if self._stack:
                outer = self._stack[-1]
                self.spent[outer[0]] += now - outer[1]
            self._stack.append([name, now])
            try:
                return fn(*args, **kwargs)
            finally:
                end = self.clock()
                self.spent[name] += end - self._stack.pop()[1]
                if self._stack:
                    self._stack[-1][1] = end
        return timed


WRITES = "files written (atomic)"
OTHER = "other (loops, events, state, start-up)"

# (stage name, module or class, attribute): every place the run looks the function up
STAGES: Sequence[tuple[str, Any, str]] = (
    ("intake: claim, archive, hash, record", intake.Claimer, "claim"),
    ("queue: lease a batch", store.Store, "claim"),
    ("read, detect, parse, XSD", worker, "evaluate_file"),
    # looked up where the stages call them
    ("mapping to the canonical piece", stages, "map_piece"),
    ("French controls", stages, "run_controls"),
    ("invoice numbers (REJ_UNI)", worker, "register_numbers"),
    ("routing: pivot and status files built", new_pieces, "route_new_pieces"),
    ("flow report built", worker, "write_flow_report"),
    (WRITES, reports, "atomic_write"),
    (WRITES, delivery, "atomic_write"),
    (WRITES, notices, "atomic_write"),
    ("store: outcome, pieces, events", store.Store, "complete"),
)


@dataclass(frozen=True)
class StageCosts:
    costs: dict[str, float]  # ms per flow, per stage, in STAGES order, then OTHER
    whole_ms: float  # the whole run, ms per flow
    files_per_flow: float  # atomic_write calls per flow: the files a flow writes


def gateway_stage_costs(paths: Sequence[Path], home: Path) -> StageCosts:
    """Each stage's cost per file, in a fresh home with the EN 16931 rules
    off (their cost is measured on its own)."""
    settings = config.load(home, workers=0, schematron=False, sftp_enabled=False, open_partners=True)
    worker.settle_for_work()  # as a worker process does once started
    link_into_inbox(paths, home)
    clock = StageClock()
    saved = []
    for name, owner, attr in STAGES:
        fn = getattr(owner, attr)
        saved.append((owner, attr, fn))
        setattr(owner, attr, clock.wrap(name, fn))
    try:
        t0 = time.perf_counter()
        summary = service.Gateway(settings, once=True).run()
        total = time.perf_counter() - t0
    finally:
        for owner, attr, fn in reversed(saved):
            setattr(owner, attr, fn)
    n = summary.processed or 1
    costs = {name: clock.spent[name] * 1000 / n for name in dict.fromkeys(name for name, _, _ in STAGES)}
    costs[OTHER] = max(0.0, total * 1000 / n - sum(costs.values()))
    return StageCosts(costs, total * 1000 / n, clock.calls[WRITES] / n)


def files_written_cost(folder: Path, n: int = 2000, size: int = 3000) -> float:
    """Microseconds to create one small file (temporary name, then rename) in
    `folder`: what this disk charges for each of the files a flow writes."""
    folder.mkdir(parents=True, exist_ok=True)
    data = b"x" * size
    t0 = time.perf_counter()
    for i in range(n):
        files.atomic_write(folder / f"probe-{i}.xml", data)
    return (time.perf_counter() - t0) * 1e6 / n

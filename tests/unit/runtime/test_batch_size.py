"""How many flows a worker claims: its share of a short queue (a report does
not wait for 19 other flows to be evaluated), whole batches of a long one,
and nothing claimed (a count, not a write) when none waits."""
from __future__ import annotations

from gateway.core import config
from gateway.store import db
from gateway.store.repository import NewFlow, Store
from gateway.runtime.worker import BATCH, batch_size


def _store(tmp_path, waiting: int) -> Store:
    config.init_home(tmp_path)
    store = Store(config.load(tmp_path))
    now = db.utcnow()
    store.record_received([NewFlow(f"F{i:03}", "ACME", "folder", f"{i}.xml", f"{i:064}", 10, now, f"/nowhere/{i}")
                           for i in range(waiting)])
    return store


def test_an_empty_queue_is_looked_at_without_a_claim(tmp_path):
    store = _store(tmp_path, 0)
    assert batch_size(store, 2, full=False) == 0


def test_a_short_queue_is_shared_between_the_workers(tmp_path):
    store = _store(tmp_path, 3)
    assert batch_size(store, 2, full=False) == 2  # 3 waiting, 2 workers: 2 then the other takes 1
    assert batch_size(store, 1, full=False) == 3
    assert batch_size(store, 4, full=False) == 1  # never 0 while one waits
    store.claim("w1", limit=2)
    assert batch_size(store, 2, full=False) == 1


def test_a_long_queue_is_taken_in_whole_batches(tmp_path):
    store = _store(tmp_path, 3 * BATCH)
    assert batch_size(store, 2, full=False) == BATCH
    assert batch_size(_store(tmp_path / "b", 0), 2, full=True) == BATCH  # the last batch was full: no count
    db.dispose_all()

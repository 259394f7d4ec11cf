"""How the service starts its workers and how long its loop sleeps: workers
forked from a fork server that imported their modules once, and a loop that
wakes when the first watched file has been stable for the delay."""
from __future__ import annotations

import os
import time
from pathlib import Path

from gateway.channels.folders import Candidate, StabilityTracker
from gateway.core.config import Settings
from gateway.runtime.procs import PRELOAD, worker_context


def _modules_loaded(names, out) -> None:  # noqa: ANN001 - runs in the forked worker
    import sys

    out.put((os.getppid(), [n in sys.modules for n in names]))


def test_workers_come_from_a_fork_server_that_imported_them():
    ctx = worker_context()
    assert ctx.get_start_method() == "forkserver"
    out = ctx.Queue()
    p = ctx.Process(target=_modules_loaded, args=(PRELOAD, out))
    p.start()
    parent, loaded = out.get(timeout=60)
    p.join(10)
    assert p.exitcode == 0
    assert loaded == [True] * len(PRELOAD)  # imported before the fork, not by the worker
    assert parent != os.getpid()  # the fork server's child: nothing of this process (threads, connections) inherited


def _tracker(tmp_path: Path, delay: float) -> StabilityTracker:
    return StabilityTracker(Settings(home=tmp_path, stability_seconds=delay))


def test_loop_sleeps_until_the_first_file_is_stable(tmp_path):
    tracker = _tracker(tmp_path, 0.3)
    assert tracker.next_ready_in(0.5) == 0.5  # nothing watched: the usual turn
    f = tmp_path / "a.xml"
    f.write_bytes(b"<x/>")
    st = f.stat()
    tracker.observe(Candidate("P", f, st.st_size, st.st_mtime_ns))
    wait = tracker.next_ready_in(0.5)
    assert 0.2 < wait <= 0.3  # woken when it is ready, not up to half a second later
    time.sleep(wait)
    assert [c.path for c in tracker.ready()] == [f]


def test_a_file_ready_but_kept_does_not_make_the_loop_spin(tmp_path):
    tracker = _tracker(tmp_path, 0.05)
    f = tmp_path / "a.xml"
    f.write_bytes(b"<x/>")
    st = f.stat()
    tracker.observe(Candidate("P", f, st.st_size, st.st_mtime_ns))
    time.sleep(0.1)
    assert tracker.ready()  # ready, but kept (the intake is paused, say)
    assert tracker.next_ready_in(0.5) == 0.5

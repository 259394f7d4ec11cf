"""How the service starts its worker processes.

From a fork server (multiprocessing's "forkserver" start method): a fresh
interpreter, started once, imports the worker's modules, then forks a worker
per request. A worker still inherits no thread and no connection of the
service (the fork server has none), as with "spawn", but it no longer imports
the whole gateway again (about a second of CPU per worker, most of a small
batch's fixed cost), and the workers share those pages (less memory).
"""
from __future__ import annotations

import multiprocessing as mp
from multiprocessing.context import BaseContext

PRELOAD = ["gateway.runtime.worker", "gateway.runtime.forkready"]  # imports done once, in the fork server


def worker_context() -> BaseContext:
    """The context to make the workers' processes, flags and queues with."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def run_worker(*args, **kwargs) -> None:  # noqa: ANN002, ANN003 - worker.worker_main's
    """A worker's entry point, named by module and name to the fork server,
    which has gateway.runtime.worker loaded already: the service's main process
    does not import the worker and the pipeline it never runs (workers > 0)."""
    from gateway.runtime.worker import worker_main

    worker_main(*args, **kwargs)

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
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

from gateway.core.config import Settings
from gateway.rules.rulesets import RuleSetNotFound, find_ruleset
from gateway.rules.saxon_link import RuleServer

PRELOAD = ["gateway.runtime.worker", "gateway.runtime.forkready"]  # imports done once, in the fork server


def worker_context() -> BaseContext:
    """The context to make the workers' processes, flags and queues with."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def start_helpers(settings: Settings) -> RuleServers | None:
    """Start, before anything else of the service, what its workers need:
    the fork server (importing the workers' modules, about 0.9 s of CPU) and
    the rule server (starting Saxon and compiling the CEN rules, about 0.8 s),
    so that their start-up overlaps the service's own instead of following it.
    Returns the rule servers (None: no workers, or the rules are off)."""
    if settings.workers == 0:
        return None
    worker_context()
    forkserver.ensure_running()  # returns at once; a fork waits for its imports
    if not settings.schematron:
        return None
    warm = []
    for kind in ("ubl", "cii"):
        try:
            warm.append(find_ruleset(kind, settings).path)
        except RuleSetNotFound:
            continue  # said to each document that needs them
    count = min(settings.rule_processes or settings.workers, settings.workers)
    servers = RuleServers([RuleServer(tuple(warm)) for _ in range(count)])
    servers.start()
    return servers


class RuleServers:
    """The service's rule servers; worker i uses server i modulo their number."""

    def __init__(self, servers: list[RuleServer]) -> None:
        self.servers = servers

    def for_worker(self, i: int) -> str:
        return self.servers[i % len(self.servers)].name

    def start(self) -> None:
        for s in self.servers:
            s.start()

    def ensure(self) -> int:
        """Start again those that stopped; how many had to."""
        return sum(s.ensure() for s in self.servers)

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


def run_worker(*args, **kwargs) -> None:  # noqa: ANN002, ANN003 - worker.worker_main's
    """A worker's entry point, named by module and name to the fork server,
    which has gateway.runtime.worker loaded already: the service's main process
    does not import the worker and the pipeline it never runs (workers > 0)."""
    from gateway.runtime.worker import worker_main

    worker_main(*args, **kwargs)

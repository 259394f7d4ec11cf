"""Imported last by the fork server (runtime/procs.py PRELOAD), once the
worker's modules are loaded: what they made is moved out of the cyclic
collector's reach before any worker is forked, so a worker's first
collection (worker.settle_for_work) does not touch, and so copy, every page
it shares with the fork server and the other workers."""
from __future__ import annotations

import gc

gc.collect()
gc.freeze()

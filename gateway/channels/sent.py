"""Return files a poller has sent to its partner's own server
(`<home>/work/pollers/<partner>.json`, poller.py): the outbox files the
housekeeping may delete once old enough, as the partner has them. A file
changed since it was sent (another size or time) is not counted as sent."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.core.config import Settings


@dataclass(frozen=True)
class SentFile:
    partner: str
    relative: str  # below outbox/<partner>/
    path: Path
    size: int
    mtime: float


def sent_files(settings: Settings) -> Iterator[SentFile]:
    states = settings.work / "pollers"
    if not states.is_dir():
        return
    for state in sorted(states.glob("*.json")):
        try:
            uploaded = json.loads(state.read_text("utf-8")).get("uploaded", {})
        except (OSError, ValueError, AttributeError):
            continue
        root = (settings.outbox / state.stem).resolve()
        for rel, sig in sorted(uploaded.items()):
            path = (root / rel)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not path.resolve().is_relative_to(root) or [st.st_size, st.st_mtime_ns] != list(sig):
                continue
            yield SentFile(state.stem, rel, path, st.st_size, st.st_mtime)

"""`gateway purge`: archived files and sent return files older than the
retention, never what a piece still needs (store/housekeeping.py says
which archived files may go; channels/sent.py which outbox files the
partner's own server has). A file is deleted after its flows record it, so
a crash in between leaves a file no flow names, never a flow naming a file
that is gone without a trace. `[housekeeping] retention_days` in
gateway.toml is the default age; 0 keeps everything.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from gateway.channels.sent import sent_files
from gateway.core.config import Settings
from gateway.lifecycle.machine import Machine
from gateway.ops.search_query import REFUSED
from gateway.store import db
from gateway.store.housekeeping import KeptFile, forget_archives, purgeable_archives
from gateway.store.repository import Store


@dataclass(frozen=True)
class PurgedFile:
    kind: str  # "archive" | "outbox"
    path: Path
    size: int
    flows: tuple[str, ...] = ()


@dataclass(frozen=True)
class PurgeReport:
    before: datetime
    dry_run: bool
    purged: tuple[PurgedFile, ...]
    kept: tuple[KeptFile, ...]
    failed: tuple[tuple[Path, str], ...] = ()

    @property
    def bytes(self) -> int:
        return sum(p.size for p in self.purged)


def retention_days(settings: Settings) -> float:
    """`[housekeeping] retention_days` (0 when absent: nothing is purged without --older-than)."""
    value = settings.section("housekeeping").get("retention_days", 0)
    try:
        days = float(value)
    except (TypeError, ValueError):
        days = -1
    if isinstance(value, bool) or not days >= 0:
        raise ValueError(f"[housekeeping] retention_days: a number of days (0 = keep everything), not {value!r}")
    return days


def final_statuses(settings: Settings) -> frozenset[str]:
    return frozenset({*(s.name for s in Machine.load(settings).statuses() if s.final), REFUSED})


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve()) and not path.is_symlink()
    except OSError:
        return False


def purge(settings: Settings, older_than_days: float, *, dry_run: bool = False,
          now: datetime | None = None) -> PurgeReport:
    if not older_than_days > 0:
        raise ValueError("--older-than: a number of days above 0")
    before = (now or db.utcnow()) - timedelta(days=older_than_days)
    store = Store(settings)
    gone, kept = purgeable_archives(store, before, final_statuses(settings))
    # only files of this home's archive: a path elsewhere is never ours to delete
    outside = [a for a in gone if not _inside(Path(a.path), settings.archive)]
    gone = [a for a in gone if a not in outside]
    kept = [*kept, *(KeptFile(a.path, a.flows, "not inside this home's archive/") for a in outside)]
    purged = [PurgedFile("archive", Path(a.path), _size(Path(a.path)), a.flows) for a in gone]
    cutoff = before.timestamp()
    purged += [PurgedFile("outbox", f.path, f.size) for f in sent_files(settings) if f.mtime < cutoff]
    if dry_run:
        return PurgeReport(before, True, tuple(purged), tuple(kept))
    failed = []
    forget_archives(store, gone, older_than_days=older_than_days)
    for p in purged:
        try:
            p.path.unlink(missing_ok=True)
        except OSError as exc:
            failed.append((p.path, exc.strerror or str(exc)))
    _prune_empty(settings.archive, {p.path.parent for p in purged if p.kind == "archive"})
    done = tuple(p for p in purged if p.path not in {f for f, _ in failed})
    return PurgeReport(before, False, done, tuple(kept), tuple(failed))


def _prune_empty(root: Path, folders: set[Path]) -> None:
    """The archive's day folders left empty (archive/2026/11/03), up to archive/."""
    root = root.resolve()
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        d = folder.resolve()
        while d != root and d.is_relative_to(root):
            try:
                d.rmdir()
            except OSError:
                break
            d = d.parent

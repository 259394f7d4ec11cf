"""The folder channel: files dropped in `inbox/<partner>/` become flows.

A file is complete only when signals agree: a close or rename event (or a
scan, since events get lost) and then the same size and mtime across the
stability delay. It is then claimed by an atomic rename into the archive,
next to a small `.claim` note (partner, name, time) written first, so a
crash or a write failure at any point either leaves the file in the inbox or
finds it in the archive with its note: `recover()` finishes the job at
start-up, or before the next claim after a failure.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from watchdog.events import FileClosedEvent, FileCreatedEvent, FileMovedEvent, FileSystemEventHandler
from watchdog.observers import Observer

from gateway.store import db
from gateway.core.config import Settings
from gateway.core.files import atomic_write, stale_temp, take, taking_name
from gateway.core.hosts import host_slug
from gateway.channels.quarantine import folder_refusal, set_aside
from gateway.store.repository import NewFlow, Store, new_flow_id

log = logging.getLogger("gateway.intake")

CLAIM_BATCH = 200


def ignored(name: str) -> bool:
    """Names a sender uses while still writing, or hidden files."""
    low = name.lower()
    return name.startswith((".", "~")) or low.endswith((".part", ".tmp", ".partial", ".filepart", ".crdownload"))


@dataclass(frozen=True)
class Candidate:
    partner: str
    path: Path
    size: int
    mtime_ns: int


def in_order(cands: Iterable[Candidate]) -> list[Candidate]:
    """The order flows are received in: as their files were written."""
    return sorted(cands, key=lambda c: (c.mtime_ns, c.partner, c.path.name))


def _takeable(st: os.stat_result) -> bool:
    # a file, or a link the pipeline refuses with a reason; never a FIFO or a
    # device, which would block the reader or never end
    return stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)


def scan(settings: Settings) -> Iterator[Candidate]:
    """Every file waiting in a partner folder, lazily (a few hundred bytes
    held per waiting file at most, by whoever sorts them)."""
    try:
        partners = list(os.scandir(settings.inbox))
    except FileNotFoundError:
        return
    for pdir in partners:
        if not pdir.is_dir(follow_symlinks=False):
            if not ignored(pdir.name):
                log.warning("file %s lies directly in inbox/; put it in inbox/<partner>/", pdir.name)
            continue
        # a folder no partner may have still yields its files: claim() sets them aside with a reason
        try:
            it = os.scandir(pdir.path)
        except OSError:
            continue
        with it:
            for e in it:
                if ignored(e.name):
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not _takeable(st):
                    if not stat.S_ISDIR(st.st_mode):
                        log.warning("%s/%s is not a file (FIFO, socket or device); left where it is",
                                    pdir.name, e.name)
                    continue
                yield Candidate(pdir.name, Path(e.path), st.st_size, st.st_mtime_ns)


def candidate_for(settings: Settings, path: Path) -> Candidate | None:
    """A path from an event, if it is a file in a partner folder."""
    try:
        rel = path.relative_to(settings.inbox)
    except ValueError:
        return None
    if len(rel.parts) != 2 or ignored(rel.parts[1]) or ignored(rel.parts[0]):
        return None
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if not _takeable(st):
        return None
    return Candidate(rel.parts[0], path, st.st_size, st.st_mtime_ns)


class ClaimFailed(Exception):
    """A claim stopped by an error (a full disk...): `claimed` are the flows
    recorded before it; the rest of the files are still in the inbox, or in
    the archive with their manifest for `recover()`."""

    def __init__(self, claimed: list[str], cause: BaseException):
        super().__init__(f"claim stopped after {len(claimed)} file(s): {cause}")
        self.claimed = claimed
        self.__cause__ = cause


class Claimer:
    """Claims complete files and records them as flows, in batches."""

    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self.host = host_slug(settings.host_name)  # names its manifests: each host finishes its own

    def _partners_only(self, cands: list[Candidate]) -> list[Candidate]:
        """The candidates of partners' folders; the others go to quarantine/ with their reason."""
        keep, why = [], {}
        for c in cands:
            if c.partner not in why:
                why[c.partner] = folder_refusal(self.settings, c.partner)
            if why[c.partner] is None:
                keep.append(c)
            else:
                set_aside(self.settings, c.partner, c.path, why[c.partner])
        return keep

    def _archive_path(self, now: datetime) -> Path:
        return self.settings.archive / f"{now:%Y}" / f"{now:%m}" / f"{now:%d}"

    def _archive_dir(self, now: datetime) -> Path:
        d = self._archive_path(now)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def claim(self, cands: list[Candidate], channel: str = "folder") -> list[str]:
        """Move each file into the archive and record it. Returns new flow ids.

        One manifest per batch is written before any rename, so a crash in
        between is finished by `recover()` (one small write per batch, not per file).
        A write that fails raises ClaimFailed: no manifest is left half written
        (atomic_write), and one whose renames began stays for `recover()`."""
        cands = self._partners_only(cands)
        if not cands:
            return []
        now = db.utcnow()
        # Flows are received in the order their files were finished (mtime),
        # one microsecond apart: a status file is applied after the invoices
        # received before it (worker.py), so the order must exist and be strict.
        # Callers hand batches in that order too (service.py).
        planned = [(new_flow_id(now), c, now + timedelta(microseconds=i)) for i, c in enumerate(in_order(cands))]
        try:
            adir = self._archive_dir(now)
            manifest = adir / f"{planned[0][0]}@{self.host}.claim"
            atomic_write(manifest, json.dumps([
                {"flow_id": fid, "partner": c.partner, "name": c.path.name, "channel": channel,
                 "received_at": at.isoformat()} for fid, c, at in planned]).encode("utf-8"))
        except OSError as exc:
            raise ClaimFailed([], exc) from exc
        flows: list[NewFlow] = []
        failure: OSError | None = None
        for fid, c, at in planned:
            dest = adir / f"{fid}.bin"
            try:
                take(c.path, dest, via=taking_name(c.path.parent, fid))
            except FileNotFoundError:  # another claimer took it
                continue
            except OSError as exc:  # the folder cannot grow (full disk): this file and the rest wait
                failure = exc
                break
            try:
                sha, size = _hash(dest)
            except OSError as exc:  # claimed but unread: recover() records it
                failure = exc
                break
            flows.append(NewFlow(fid, c.partner, channel, c.path.name, sha, size, at, str(dest)))
        try:
            self.store.record_received(flows)
        except Exception as exc:  # the files are in the archive with their manifest: recover() records them
            raise ClaimFailed([], exc) from exc
        for f in flows:
            log.info("flow %s: %s/%s (%d bytes) received", f.id, f.partner, f.file_name, f.size)
        if failure is not None:
            raise ClaimFailed([f.id for f in flows], failure) from failure
        manifest.unlink(missing_ok=True)
        return [f.id for f in flows]

    def recover(self, *, now: float | None = None, recent: bool = False) -> int:
        """Finish claims interrupted by a crash or a write failure: a manifest
        entry's file left under its hidden name goes to the archive, one in the
        archive without a flow row is recorded; an entry without either was never
        claimed (the file is in the inbox). A manifest's temporary file goes.

        Hosts sharing the archive each finish their own manifests at once;
        another host's only once it is older than any claim takes
        (`stale_claim_seconds`): that host died in the middle of it, and a live
        host's claim in flight is never touched. `recent` looks only in the
        folders of today and yesterday (the periodic pass, which finds a dead
        host's manifests without walking the whole archive)."""
        now = time.time() if now is None else now
        done = 0
        for manifest in self._manifests(recent):
            name = manifest.name
            if name.startswith(".") and name.endswith(".tmp"):
                if stale_temp(manifest, now):
                    manifest.unlink(missing_ok=True)
                continue
            if not name.endswith(".claim") or not self._ours_or_stale(manifest, now):
                continue
            try:
                entries = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                entries = []
            unfinished = False
            for meta in entries if isinstance(entries, list) else [entries]:
                fid = meta.get("flow_id") or manifest.stem.split("@", 1)[0]  # a note for one file names it by the note's name
                data_path = manifest.with_name(f"{fid}.bin")
                try:
                    self._archive_taken(meta, fid, data_path)
                except OSError:  # (still no room) this entry waits for the next pass, with its manifest
                    unfinished = True
                    continue
                if (data_path.exists() or data_path.is_symlink()) and self.store.flow(fid) is None:
                    sha, size = _hash(data_path)
                    self.store.record_received([NewFlow(
                        fid, meta["partner"], meta.get("channel", "folder"), meta["name"], sha, size,
                        datetime.fromisoformat(meta["received_at"]), str(data_path))])
                    done += 1
                    log.warning("flow %s recovered after an interrupted claim", fid)
            if not unfinished:
                manifest.unlink(missing_ok=True)
        return done

    def _archive_taken(self, meta: dict, fid: str, archived: Path) -> None:
        """Finish take() for one entry of a claim a crash or a full disk
        interrupted: a file left under its hidden name goes into the archive
        (or, once it is there, the hidden name goes). The partner's own name is
        never touched: a file there now is a new one."""
        partner = str(meta.get("partner", ""))
        if not partner or "/" in partner or partner in (".", ".."):
            return
        hidden = taking_name(self.settings.inbox / partner, fid)
        try:
            st = os.lstat(hidden)
        except FileNotFoundError:
            return
        try:
            if os.path.samestat(st, os.lstat(archived)):
                os.unlink(hidden)
                return
        except FileNotFoundError:
            pass
        os.rename(hidden, archived)

    def _manifests(self, recent: bool) -> Iterator[Path]:
        if not recent:
            yield from self.settings.archive.rglob("*.claim*")  # one walk of the archive for both kinds
            return
        today = db.utcnow()
        for day in (today, today - timedelta(days=1)):
            yield from self._archive_path(day).glob("*.claim*")

    def _ours_or_stale(self, manifest: Path, now: float) -> bool:
        owner = manifest.name[:-len(".claim")].partition("@")[2]
        if owner in ("", self.host):  # ours, or written before manifests named their host
            return True
        try:
            return now - manifest.stat().st_mtime > self.settings.stale_claim_seconds
        except OSError:
            return False


def _hash(path: Path) -> tuple[str, int]:
    """SHA-256 and size, reading without following links."""
    h = hashlib.sha256()
    size = 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # a symlink: its bytes are not the partner's; the pipeline refuses it
        # hashed as a link, so a real empty file from the partner is no "duplicate" of it
        try:
            target = os.fsencode(os.readlink(path))
        except OSError:  # not a link after all (unreadable): its own name
            target = os.fsencode(str(path))
        return hashlib.sha256(b"\0symlink\0" + target).hexdigest(), 0
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class StabilityTracker:
    """Files become ready when their (size, mtime) stays the same for the
    stability delay. Events and scans only feed it."""

    def __init__(self, settings: Settings):
        self.delay = settings.stability_seconds
        self._seen: dict[Path, tuple[int, int, float, str]] = {}
        self._lock = threading.Lock()

    def observe(self, c: Candidate) -> None:
        with self._lock:
            prev = self._seen.get(c.path)
            if prev is None or prev[:2] != (c.size, c.mtime_ns):
                self._seen[c.path] = (c.size, c.mtime_ns, time.monotonic(), c.partner)

    def ready(self) -> list[Candidate]:
        now = time.monotonic()
        out = []
        with self._lock:
            items = list(self._seen.items())
        for path, (size, mtime, since, partner) in items:
            if now - since < self.delay:
                continue
            try:
                st = path.lstat()
            except FileNotFoundError:
                self.forget(path)
                continue
            if (st.st_size, st.st_mtime_ns) != (size, mtime):
                self.observe(Candidate(partner, path, st.st_size, st.st_mtime_ns))
                continue
            out.append(Candidate(partner, path, size, mtime))
        return out

    def forget(self, path: Path) -> None:
        with self._lock:
            self._seen.pop(path, None)

    def next_ready_in(self, default: float) -> float:
        """Seconds until the first file watched has been stable for the delay
        (`default` if none is watched): the service sleeps no longer, so a
        file is claimed as soon as it is ready, not up to a loop turn later."""
        now = time.monotonic()
        with self._lock:  # files already ready but kept (intake paused) do not make it spin
            first = min((since for _, _, since, _ in self._seen.values() if since + self.delay > now), default=None)
        if first is None:
            return default
        return min(default, max(0.01, first + self.delay - now))

    def __len__(self) -> int:
        return len(self._seen)


class _Handler(FileSystemEventHandler):
    def __init__(self, settings: Settings, tracker: StabilityTracker, wake: threading.Event):
        self.settings, self.tracker, self.wake = settings, tracker, wake

    def _hint(self, path: str) -> None:
        c = candidate_for(self.settings, Path(path))
        if c:
            self.tracker.observe(c)
            self.wake.set()

    def on_closed(self, event):  # noqa: ANN001
        self._hint(event.src_path)

    def on_moved(self, event):  # noqa: ANN001
        self._hint(event.dest_path)

    def on_created(self, event):  # noqa: ANN001
        self._hint(event.src_path)


class FolderWatcher:
    """Watches every partner folder; events are hints, scans are the truth."""

    def __init__(self, settings: Settings, tracker: StabilityTracker, wake: threading.Event):
        self.settings, self.tracker, self.wake = settings, tracker, wake
        self.observer = Observer()

    def start(self) -> None:
        self.observer.schedule(_Handler(self.settings, self.tracker, self.wake), str(self.settings.inbox),
                               recursive=True, event_filter=[FileClosedEvent, FileMovedEvent, FileCreatedEvent])
        self.observer.daemon = True
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)

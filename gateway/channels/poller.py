"""Polling partners' own SFTP servers, each configured by a `[[remote]]`
entry of gateway.toml (remote.py).

Each poll downloads complete files into `<home>/inbox/<partner>/` (a
`deposit`: hidden temp, fsync, rename to a free name) and only then deletes
or moves them remotely, and uploads the partner's return files from
`<home>/outbox/<partner>/` (`outbox.return_files`; temp name, then rename).
What was done is kept in `<home>/work/pollers/<partner>.json` so no file is
fetched or sent twice. A server that is down only delays its
own partner: retries back off exponentially (`RemotePoller.status`).
"""
from __future__ import annotations

import base64
import json
import logging
import os
import posixpath
import stat
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import paramiko

from gateway.channels import folders as intake
from gateway.channels.base import valid_name
from gateway.channels.deposit import TempNames, deposit, sweep_temps
from gateway.channels.outbox import return_files
from gateway.channels.remote import PollerStatus, PollSummary, RemoteConfig
from gateway.channels.sftp.throttle import Limits
from gateway.core.config import Settings
from gateway.core.files import atomic_write
from gateway.store import db, partners

log = logging.getLogger("gateway.sftp.poller")

DOWNLOAD_TEMPS = TempNames(".poll-", ".part")  # hidden temp files of downloads in progress
DONE_SUFFIX = ".done"  # completion = "done-marker": X is complete when X.done exists


class _State:
    """What was seen, fetched and sent, in a small JSON file."""

    def __init__(self, path: Path):
        self.path = path
        data = json.loads(path.read_text("utf-8")) if path.exists() else {}
        self.seen: dict[str, list] = data.get("seen", {})  # remote name -> [size, mtime] at the last poll
        self.downloaded: dict[str, list] = data.get("downloaded", {})  # remote name -> [size, mtime] stored
        self.uploaded: dict[str, list] = data.get("uploaded", {})  # local relative path -> [size, mtime_ns]

    def save(self) -> None:
        data = {"seen": self.seen, "downloaded": self.downloaded, "uploaded": self.uploaded}
        atomic_write(self.path, json.dumps(data).encode("utf-8"), fsync=True)


class RemotePoller:
    """One partner's remote SFTP location."""

    def __init__(self, settings: Settings, remote_config: dict[str, Any] | RemoteConfig):
        self.settings = settings
        self.cfg = (remote_config if isinstance(remote_config, RemoteConfig)
                    else RemoteConfig.parse(remote_config, settings.home))
        self.inbox, self.outbox = partners.ensure_folders(settings, self.cfg.partner)
        self.state = _State(settings.work / "pollers" / f"{self.cfg.partner}.json")
        self._lock = threading.Lock()
        # replaced whole (frozen), so a reader in another thread sees one consistent state
        self.status = PollerStatus(partner=self.cfg.partner, host=self.cfg.host, port=self.cfg.port,
                                   next_attempt=db.utcnow())
        # partial downloads left by a crash
        sweep_temps(self.inbox, DOWNLOAD_TEMPS, Limits.from_settings(settings).stale_upload_seconds)

    # -- status and back-off --
    def next_delay(self) -> float:
        """Seconds until the next poll is due."""
        nxt = self.status.next_attempt
        return max(0.0, (nxt - db.utcnow()).total_seconds()) if nxt else 0.0

    def _succeeded(self, summary: PollSummary) -> None:
        now, st = db.utcnow(), self.status
        self.status = replace(st, last_success=now, failures=0,
                              next_attempt=now + timedelta(seconds=self.cfg.poll_seconds),
                              downloaded=st.downloaded + summary.downloaded,
                              uploaded=st.uploaded + summary.uploaded)

    def _failed(self, error: str, summary: PollSummary) -> None:
        now, st = db.utcnow(), self.status
        failures = st.failures + 1
        delay = min(self.cfg.retry_seconds * 2 ** (failures - 1), self.cfg.max_backoff_seconds)
        self.status = replace(st, last_error=error, last_error_at=now, failures=failures,
                              next_attempt=now + timedelta(seconds=delay),
                              downloaded=st.downloaded + summary.downloaded,
                              uploaded=st.uploaded + summary.uploaded)
        log.warning("remote %s: connection problem (attempt %d, next in %.0f s): %s",
                    self.cfg.label, failures, delay, error)

    # -- one poll --
    def poll_once(self) -> PollSummary:
        """Fetch complete files, then send return files; never raises."""
        with self._lock:
            counts = {"downloaded": 0, "skipped": 0, "errors": 0, "uploaded": 0}
            client = None
            try:
                client, sftp = self._connect()
                self._fetch(sftp, counts)
                if self.cfg.remote_outbox:
                    self._send(sftp, counts)
            except Exception as exc:  # the server, the network or the key: retry later
                if not isinstance(exc, (OSError, EOFError, paramiko.SSHException)):
                    log.exception("remote %s: poll failed", self.cfg.label)
                error = f"{type(exc).__name__}: {exc}"
                counts["errors"] += 1
                summary = PollSummary(**counts, error=error)
                self._failed(error, summary)
                return summary
            finally:
                if client is not None:
                    client.close()
            summary = PollSummary(**counts)
            self._succeeded(summary)
            if summary.downloaded or summary.uploaded or summary.errors:
                log.info("remote %s: %d downloaded, %d uploaded, %d skipped, %d errors", self.cfg.label,
                         summary.downloaded, summary.uploaded, summary.skipped, summary.errors)
            return summary

    def _connect(self) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
        cfg = self.cfg
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())  # only the configured key
        self._trust_host_key(client)
        passphrase = os.environ.get(cfg.key_passphrase_env) if cfg.key_passphrase_env else None
        pkey = paramiko.PKey.from_path(cfg.key, password=passphrase)
        try:
            client.connect(cfg.host, cfg.port, username=cfg.user, pkey=pkey, look_for_keys=False,
                           allow_agent=False, timeout=cfg.timeout_seconds, banner_timeout=cfg.timeout_seconds,
                           auth_timeout=cfg.timeout_seconds, channel_timeout=cfg.timeout_seconds)
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(cfg.timeout_seconds)
        except BaseException:
            client.close()
            raise
        return client, sftp

    def _trust_host_key(self, client: paramiko.SSHClient) -> None:
        value = self.cfg.known_host_key.strip()
        if value.split(None, 1)[0] in partners.KEY_TYPES:
            entry = self.cfg.host if self.cfg.port == 22 else f"[{self.cfg.host}]:{self.cfg.port}"
            for line in value.splitlines():
                kind, blob = line.split()[:2]
                key = paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
                client.get_host_keys().add(entry, key.get_name(), key)
        else:
            path = Path(value)
            client.load_host_keys(str(path if path.is_absolute() else self.settings.home / path))

    # -- inbound: the partner's files for us --
    def _fetch(self, sftp: paramiko.SFTPClient, counts: dict[str, int]) -> None:
        cfg, state = self.cfg, self.state
        listing = {a.filename: a for a in sftp.listdir_attr(cfg.remote_inbox) if stat.S_ISREG(a.st_mode or 0)}
        changed = False
        for name in sorted(listing):
            attr = listing[name]
            if intake.ignored(name) or name.endswith(DONE_SUFFIX):
                continue  # still being written (the inbox would ignore it too), or a marker
            if not valid_name(name):
                log.warning("remote %s: file name %r not accepted, left on the server", cfg.label, name)
                counts["errors"] += 1
                continue
            sig = [attr.st_size, attr.st_mtime]
            if state.downloaded.get(name) == sig:  # stored earlier; only the clean-up is left
                counts["skipped"] += 1
                self._after(sftp, name, listing, counts)
                continue
            if cfg.completion == "done-marker":
                complete = name + DONE_SUFFIX in listing
            else:
                complete = state.seen.get(name) == sig
                if not complete:
                    state.seen[name], changed = sig, True
            if not complete:
                counts["skipped"] += 1
                continue
            try:
                local = self._download(sftp, name, attr)
            except (OSError, ValueError) as exc:
                if not sftp.get_channel().get_transport().is_active():
                    raise
                log.warning("remote %s: download of %s failed: %s", cfg.label, name, exc)
                counts["errors"] += 1
                continue
            state.downloaded[name] = sig
            state.seen.pop(name, None)
            state.save()
            changed = False
            counts["downloaded"] += 1
            log.info("remote %s: fetched %s -> %s", cfg.label, name, local)
            self._after(sftp, name, listing, counts)
        for table in (state.seen, state.downloaded):  # forget files no longer on the server
            for gone in [n for n in table if n not in listing]:
                del table[gone]
                changed = True
        if changed:
            state.save()

    def _download(self, sftp: paramiko.SFTPClient, name: str, attr: paramiko.SFTPAttributes) -> Path:
        remote = posixpath.join(self.cfg.remote_inbox, name)
        with deposit(self.inbox, DOWNLOAD_TEMPS, mode=0o666) as download:  # 0o666: as open() made them
            size = sftp.getfo(remote, download)
            if attr.st_size is not None and size != attr.st_size:
                raise ValueError(f"{name} changed while downloading ({attr.st_size} -> {size} bytes)")
            return download.commit(name)

    def _after(self, sftp: paramiko.SFTPClient, name: str, listing: dict, counts: dict[str, int]) -> None:
        """Delete or move a fetched file (and its done-marker) on the server."""
        cfg = self.cfg
        marker = name + DONE_SUFFIX
        names = [name] + ([marker] if cfg.completion == "done-marker" and marker in listing else [])
        for n in names:
            src = posixpath.join(cfg.remote_inbox, n)
            try:
                if cfg.after == "delete":
                    sftp.remove(src)
                else:
                    dest = posixpath.join(cfg.remote_inbox, cfg.after[5:], n)
                    _rename(sftp, src, dest)
            except OSError as exc:
                if not sftp.get_channel().get_transport().is_active():
                    raise
                log.warning("remote %s: could not %s %s (will retry): %s", cfg.label, cfg.after, n, exc)
                counts["errors"] += 1

    # -- outbound: return files for the partner --
    def _send(self, sftp: paramiko.SFTPClient, counts: dict[str, int]) -> None:
        state = self.state
        present = set()
        for rel, path in return_files(self.outbox):
            present.add(rel)
            st = path.lstat()
            sig = [st.st_size, st.st_mtime_ns]
            if state.uploaded.get(rel) == sig or st.st_mtime > time.time() - self.settings.stability_seconds:
                continue  # sent already, or possibly still being written
            final = posixpath.join(self.cfg.remote_outbox, path.name)
            tmp = final + ".part"
            try:
                with open(path, "rb") as fh:
                    sftp.putfo(fh, tmp, file_size=st.st_size, confirm=True)
                _rename(sftp, tmp, final)
            except OSError as exc:
                if not sftp.get_channel().get_transport().is_active():
                    raise
                log.warning("remote %s: upload of %s failed: %s", self.cfg.label, rel, exc)
                counts["errors"] += 1
                continue
            state.uploaded[rel] = sig
            state.save()
            counts["uploaded"] += 1
            log.info("remote %s: sent %s -> %s", self.cfg.label, rel, final)
        gone = [r for r in state.uploaded if r not in present]
        for r in gone:
            del state.uploaded[r]
        if gone:
            state.save()


class PollerService:
    """All [[remote]] pollers of a home, each in its own thread: a `Channel`."""

    name = "sftp-poller"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.pollers: list[RemotePoller] = []
        seen: set[str] = set()
        for i, raw in enumerate(settings.raw.get("remote", []), start=1):
            try:
                poller = RemotePoller(settings, raw)
            except (ValueError, TypeError, OSError) as exc:
                log.error("[[remote]] entry %d ignored: %s", i, exc)
                continue
            if poller.cfg.partner in seen:
                log.error("[[remote]] entry %d ignored: partner %s is configured twice", i, poller.cfg.partner)
                continue
            seen.add(poller.cfg.partner)
            self.pollers.append(poller)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        for p in self.pollers:
            t = threading.Thread(target=self._run, args=(p,), name=f"poller-{p.cfg.partner}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.pollers:
            log.info("polling %d remote SFTP servers: %s", len(self.pollers),
                     ", ".join(p.cfg.label for p in self.pollers))

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self._join_timeout())
        self._threads.clear()

    def _join_timeout(self) -> float:
        return max([p.cfg.timeout_seconds for p in self.pollers] + [1.0]) + 5

    def _run(self, poller: RemotePoller) -> None:
        while not self._stop.is_set():
            poller.poll_once()
            self._stop.wait(poller.next_delay())

    def __enter__(self) -> "PollerService":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _rename(sftp: paramiko.SFTPClient, src: str, dest: str) -> None:
    """Atomic replace where the server offers it, else plain SFTP rename."""
    try:
        sftp.posix_rename(src, dest)
        return
    except OSError:
        pass
    try:
        sftp.rename(src, dest)
        return
    except OSError as exc:
        try:
            sftp.stat(dest)  # plain rename refuses to replace: only then remove the old copy
        except OSError:
            raise exc from None
    sftp.remove(dest)
    sftp.rename(src, dest)

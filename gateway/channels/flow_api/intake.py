"""A deposit through the API: the same file in `inbox/<partner>/` as a folder drop.

The bytes are streamed into a hidden temporary file of the partner's inbox
(channels.deposit, fsynced), recorded in the store under their flowId (one per
partner and bytes: the same bytes again get the same flowId and are not
deposited twice), and only then renamed into the inbox, where the folder
watcher claims them as any dropped file. A crash after the record and before
the rename leaves the temporary file, which `recover` renames at the next
start; a crash after the rename is recognised by the temporary file being gone.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import BinaryIO

from gateway.channels.deposit import TempNames, deposit, rename_into, sweep_temps
from gateway.channels.flow_api.errors import too_large, unprocessable
from gateway.channels.base import valid_name
from gateway.channels.folders import ignored
from gateway.core.clock import utcnow
from gateway.core.config import Settings
from gateway.store import api_clients
from gateway.store.api_clients import Deposit

log = logging.getLogger("gateway.api")

TEMPS = TempNames(".api-", ".upload")
CHUNK = 1 << 20
STALE_TEMP_SECONDS = 3600.0


@dataclass(frozen=True)
class FlowInfo:
    """The `flowInfo` part of a deposit, checked."""

    name: str
    flow_syntax: str
    flow_profile: str | None = None
    processing_rule: str | None = None
    tracking_id: str | None = None
    sha256: str | None = None


def check_name(name: str) -> str:
    """A file name the inbox takes as it is: one the folder watcher does not skip."""
    if not valid_name(name) or "/" in name or ignored(name) or name in (".", ".."):
        raise unprocessable("Invalid flow name", "flowInfo.name: a file name (no '/', no control character, "
                            "not hidden, not ending in .part/.tmp/.partial/.filepart/.crdownload, at most 255 bytes)")
    return name


def deposit_flow(settings: Settings, partner: str, client_id: str, info: FlowInfo, file: BinaryIO,
                 organization_id: str | None) -> Deposit:
    """Bring a deposit's file into the partner's inbox (or find the same bytes deposited before)."""
    folder = settings.inbox / partner
    folder.mkdir(parents=True, exist_ok=True)
    with deposit(folder, TEMPS) as d:
        h, size = hashlib.sha256(), 0
        while chunk := file.read(CHUNK):
            size += len(chunk)
            if size > settings.max_file_bytes:
                raise too_large(settings.max_file_bytes)
            h.update(chunk)
            d.write(chunk)
        sha = h.hexdigest()
        if info.sha256 and info.sha256 != sha:
            raise unprocessable("ChecksumMismatch", f"flowInfo.sha256 {info.sha256} differs from the file's {sha}")
        d.seal()
        new = Deposit(id=str(uuid.uuid4()), partner=partner, sha256=sha, size=size, name=info.name,
                      flow_syntax=info.flow_syntax, flow_profile=info.flow_profile,
                      processing_rule=info.processing_rule, tracking_id=info.tracking_id,
                      organization_id=organization_id, client_id=client_id, temp_name=d.tmp.name,
                      inbox_name=None, created_at=utcnow(), deposited_at=None, flow_id=None, failed=None)
        row, created = api_clients.record_deposit(settings, new)
        if not created:
            # the same bytes again: the same flow, nothing deposited twice; a first attempt not yet
            # marked deposited is finished from its own file (gone: it was renamed already)
            d.discard()
            return row if row.deposited_at is not None else _finish(settings, row)
        final = d.commit(info.name)
        api_clients.mark_deposited(settings, row.id, final.name, temp_name=d.tmp.name)
        log.info("api deposit %s: %s/%s (%d bytes) in the inbox", row.id, partner, final.name, size)
    return api_clients.get_deposit(settings, row.id) or row


def _finish(settings: Settings, row: Deposit) -> Deposit:
    """Rename a recorded deposit's temporary file into the inbox; if it is gone,
    the rename happened before a crash (nothing else removes it before this runs)."""
    folder = settings.inbox / row.partner
    tmp = folder / row.temp_name
    if tmp.exists():
        final = rename_into(folder, tmp, row.name)
        api_clients.mark_deposited(settings, row.id, final.name)
    else:
        api_clients.mark_deposited(settings, row.id, None)
    return api_clients.get_deposit(settings, row.id) or row


def recover(settings: Settings) -> int:
    """At start: finish the deposits a crash interrupted, then sweep stale temporary files."""
    done = 0
    for row in api_clients.undeposited(settings):
        _finish(settings, row)
        done += 1
        log.warning("api deposit %s finished after an interrupted deposit", row.id)
    if settings.inbox.is_dir():
        for folder in settings.inbox.iterdir():
            if folder.is_dir() and not folder.is_symlink():
                sweep_temps(folder, TEMPS, STALE_TEMP_SECONDS)
    return done

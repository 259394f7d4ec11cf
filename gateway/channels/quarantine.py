"""Files dropped where no partner can have them: set aside, with a reason.

A folder of `inbox/` is a partner's when its name is a partner code and a
partner owns it: an account (`gateway partner add`, which makes its outbox),
a `[parties]` entry, or an outbox the gateway already delivers to (a party
named by its SIRET sending statuses back). `[intake] open_partners = true`
takes any well-named folder as a new partner's, as earlier versions did.
Any other folder's files, once complete, are moved to
`quarantine/<folder>/` beside a JSON note (code, message, folder, file,
size, SHA-256, time) and one warning line: nothing is lost, nothing is
processed, and an operator decides (add the partner, move the file back).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.files import atomic_write, fit_name
from gateway.store.partners import NAME_RE

log = logging.getLogger("gateway.intake")


@dataclass(frozen=True)
class Refusal:
    code: str  # IRR_PARTENAIRE or IRR_NOM_DOSSIER
    message: str


def folder_refusal(settings: Settings, folder: str) -> Refusal | None:
    """Why files of `inbox/<folder>/` are no partner's, or None when they are."""
    if not NAME_RE.match(folder):
        return Refusal("IRR_NOM_DOSSIER", f"the folder name {folder!r} is not a partner code (letters, digits, "
                       "'.', '_', '-'; it must start with a letter or a digit): files dropped there are not processed")
    if settings.open_partners or folder in settings.section("parties") or (settings.outbox / folder).is_dir():
        return None
    return Refusal("IRR_PARTENAIRE", f"no partner owns the folder {folder!r}: declare it (`gateway partner add "
                   f"{folder}`, or [parties] in gateway.toml) and move the file back into inbox/{folder}/")


def _safe(name: str) -> str:
    """A name an operator's shell and any file system take."""
    return fit_name(re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_", 120)


def set_aside(settings: Settings, folder: str, path: Path, why: Refusal) -> Path | None:
    """Move a complete file to quarantine/ with its note; the moved path, or
    None when it went meanwhile (its sender took it back)."""
    now = datetime.now(timezone.utc)
    box = settings.quarantine / _safe(folder)
    box.mkdir(parents=True, exist_ok=True)
    dest = box / f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}-{_safe(path.name)}"
    try:
        os.rename(path, dest)  # atomic: whoever renames first owns the file
    except FileNotFoundError:
        return None
    sha = hashlib.sha256()
    size = 0
    if not dest.is_symlink():
        with dest.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                sha.update(chunk)
                size += len(chunk)
    note = {"code": why.code, "message": why.message, "message_fr": codes.CODES[why.code].fr,
            "folder": folder, "file": path.name, "size": size, "sha256": sha.hexdigest(),
            "received_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "kept_as": dest.name}
    atomic_write(dest.with_name(dest.name + ".json"), json.dumps(note, ensure_ascii=False, indent=2).encode())
    log.warning("%s: inbox/%s/%s set aside in quarantine/%s/%s: %s", why.code, folder, path.name, box.name,
                dest.name, why.message)
    return dest

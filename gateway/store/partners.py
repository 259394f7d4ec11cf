"""Partner accounts for the SFTP channel.

A partner is a sender code; it names the partner's folders
(`inbox/<name>/`, `outbox/<name>/`) and is its SFTP user name, so names are
held to a strict pattern. A partner logs in with an OpenSSH public key
(ed25519, ECDSA, RSA >= 2048 bits) and, optionally, a password kept only as
an scrypt hash.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from gateway.store import db
from gateway.core.config import Settings
from gateway.store.tables import PartnerAccount

if TYPE_CHECKING:  # paramiko is loaded where keys are read: `gateway run --once` never needs it
    import paramiko

# \Z, not $: `$` also matches before a final newline, and "ACME\n" is no name.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
MIN_RSA_BITS = 2048
# scrypt cost: about 50 ms and 16 MB per check on a small server.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True)
class Partner:
    name: str
    enabled: bool
    keys: tuple[str, ...]
    has_password: bool
    created_at: datetime
    updated_at: datetime


def is_valid_name(name: object) -> bool:
    """A safe sender code: it names folders and is an SFTP user name."""
    return isinstance(name, str) and NAME_RE.match(name) is not None and ".." not in name


def validate_name(name: str) -> str:
    """Return `name` if it is a safe sender code, else raise ValueError."""
    if not is_valid_name(name):
        raise ValueError(
            f"invalid partner name {name!r}: use 1-64 letters, digits, '_', '.', '-', "
            "starting with a letter or digit, without '..'"
        )
    return name


def parse_public_key(line: str) -> str:
    """Check one OpenSSH public key line and return it as `type base64 [comment]`."""
    fields = line.strip().split(None, 2)
    if len(fields) < 2 or fields[0] not in KEY_TYPES:
        raise ValueError(
            f"not an OpenSSH public key line of a supported type ({', '.join(KEY_TYPES)}): "
            f"{line.strip()[:40]!r}"
        )
    kind, blob = fields[0], fields[1]
    import paramiko  # noqa: PLC0415

    try:
        key = paramiko.PKey.from_type_string(kind, base64.b64decode(blob, validate=True))
    except (binascii.Error, ValueError, paramiko.SSHException) as exc:
        raise ValueError(f"unreadable {kind} public key: {exc}") from None
    if kind == "ssh-rsa" and key.get_bits() < MIN_RSA_BITS:
        raise ValueError(f"RSA key of {key.get_bits()} bits: at least {MIN_RSA_BITS} are required")
    return " ".join(fields)


def read_key_file(path: str | os.PathLike) -> list[str]:
    """The key lines of a .pub or authorized_keys-style file (comments skipped)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [parse_public_key(ln) for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "scrypt${}${}${}${}${}".format(
        _SCRYPT_N, _SCRYPT_R, _SCRYPT_P,
        base64.b64encode(salt).decode(), base64.b64encode(digest).decode(),
    )


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check; an absent hash still costs one scrypt, so timing
    does not tell which accounts have a password."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        expected = base64.b64decode(digest)
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        _scrypt(password, b"\0" * 16, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
        return False
    return hmac.compare_digest(got, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * 1024 * 1024, dklen=32)


def ensure_folders(settings: Settings, name: str) -> tuple[Path, Path]:
    """Create (if missing) and return the partner's inbox and outbox folders."""
    validate_name(name)
    inbox, outbox = settings.inbox / name, settings.outbox / name
    inbox.mkdir(parents=True, exist_ok=True)
    outbox.mkdir(parents=True, exist_ok=True)
    return inbox, outbox


def add_partner(settings: Settings, name: str, pubkey_lines=(), password: str | None = None) -> Partner:
    """Create a partner, or add keys (and set the password) of an existing one.

    Creates the partner's inbox/ and outbox/ folders. Does not re-enable a
    disabled partner (that is `set_enabled`).
    """
    validate_name(name)
    keys = [parse_public_key(ln) for ln in pubkey_lines]
    if password is not None and not password:
        raise ValueError("empty password")
    pw_hash = hash_password(password) if password is not None else None
    with Session(db.engine(settings)) as s:
        row = s.get(PartnerAccount, name) or PartnerAccount(name=name)
        current = _key_lines(row.public_keys)
        known = {_blob(k) for k in current}
        for k in keys:
            if _blob(k) not in known:
                current.append(k)
                known.add(_blob(k))
        row.public_keys = "\n".join(current)
        if pw_hash:
            row.password_hash = pw_hash
        row.updated_at = db.utcnow()
        s.add(row)
        s.commit()
        s.refresh(row)
        partner = _record(row)
    ensure_folders(settings, name)
    return partner


def list_partners(settings: Settings) -> list[Partner]:
    with Session(db.engine(settings)) as s:
        return [_record(r) for r in s.exec(select(PartnerAccount).order_by(PartnerAccount.name))]


def get_partner(settings: Settings, name: str) -> Partner | None:
    if not is_valid_name(name):
        return None
    with Session(db.engine(settings)) as s:
        row = s.get(PartnerAccount, name)
        return _record(row) if row else None


def authorized_keys(settings: Settings, name: str) -> tuple[str, ...]:
    """Key lines that may log in as `name` (none for unknown or disabled partners)."""
    p = get_partner(settings, name)
    return p.keys if p and p.enabled else ()


def key_allowed(settings: Settings, name: str, key: paramiko.PKey) -> bool:
    blob = key.get_base64()
    return any(hmac.compare_digest(_blob(k), blob) for k in authorized_keys(settings, name))


def check_password(settings: Settings, name: str, password: str) -> bool:
    """True only for an enabled partner with a password that matches."""
    p_hash = None
    if is_valid_name(name):
        with Session(db.engine(settings)) as s:
            row = s.get(PartnerAccount, name)
            if row is not None and row.enabled:
                p_hash = row.password_hash
    return verify_password(password, p_hash) and p_hash is not None


def set_enabled(settings: Settings, name: str, enabled: bool) -> Partner:
    """Allow (True) or stop (False) a partner's logins; its folders and files are kept.
    LookupError for an unknown partner."""
    validate_name(name)
    with Session(db.engine(settings)) as s:
        row = s.get(PartnerAccount, name)
        if row is None:
            raise LookupError(f"unknown partner {name!r}")
        row.enabled = enabled
        row.updated_at = db.utcnow()
        s.add(row)
        s.commit()
        s.refresh(row)
        return _record(row)


def _key_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def _blob(line: str) -> str:
    return line.split()[1]


def _record(row: PartnerAccount) -> Partner:
    return Partner(
        name=row.name,
        enabled=row.enabled,
        keys=tuple(_key_lines(row.public_keys)),
        has_password=bool(row.password_hash),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )

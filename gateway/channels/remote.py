"""A partner's own SFTP server, as the gateway polls it (poller.py).

A partner that will not push to us is configured in gateway.toml:

    [[remote]]
    partner = "ACME"                  # its sender code: files land in inbox/ACME/
    host = "sftp.acme.example"
    port = 22
    user = "gateway"
    key = "keys/acme_ed25519"         # private key, relative to the home
    known_host_key = "ssh-ed25519 AAAA..."   # or a known_hosts file
    remote_inbox = "/out/invoices"    # where the partner leaves files for us
    remote_outbox = "/in/returns"     # where we put its return files ("" = none)
    poll_seconds = 60
    completion = "stable"             # or "done-marker": X is complete when X.done exists
    after = "delete"                  # or "move:<folder>" (relative to remote_inbox)

`RemoteConfig` is one such entry, checked; `PollSummary` what one poll did;
`PollerStatus` how a poller fares (for the operators' pages).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.store import partners


@dataclass(frozen=True)
class RemoteConfig:
    partner: str
    host: str
    user: str
    key: Path
    known_host_key: str
    remote_inbox: str
    remote_outbox: str = ""
    port: int = 22
    poll_seconds: float = 60.0
    completion: str = "stable"
    after: str = "delete"
    retry_seconds: float = 5.0  # first retry after a failed poll, then doubling ...
    max_backoff_seconds: float = 900.0  # ... up to this
    timeout_seconds: float = 30.0
    key_passphrase_env: str = ""  # name of an environment variable holding the key's passphrase

    @classmethod
    def parse(cls, raw: dict[str, Any], home: Path) -> "RemoteConfig":
        """Check one [[remote]] entry; ValueError says what is wrong."""
        missing = [k for k in ("partner", "host", "user", "key", "known_host_key", "remote_inbox") if not raw.get(k)]
        if missing:
            raise ValueError(f"[[remote]] entry misses {', '.join(missing)}")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"[[remote]] entry has unknown keys: {', '.join(sorted(unknown))}")
        partners.validate_name(str(raw["partner"]))
        key = Path(raw["key"])
        cfg = cls(**{**raw, "key": key if key.is_absolute() else home / key,
                     "port": int(raw.get("port", 22)),
                     "poll_seconds": float(raw.get("poll_seconds", 60.0))})
        if cfg.completion not in ("stable", "done-marker"):
            raise ValueError(f"completion must be 'stable' or 'done-marker', not {cfg.completion!r}")
        if cfg.after != "delete" and not (cfg.after.startswith("move:") and cfg.after[5:].strip("/")):
            raise ValueError(f"after must be 'delete' or 'move:<folder>', not {cfg.after!r}")
        return cfg

    @property
    def label(self) -> str:
        return f"{self.partner} ({self.user}@{self.host}:{self.port})"


@dataclass(frozen=True)
class PollSummary:
    downloaded: int = 0
    skipped: int = 0
    errors: int = 0
    uploaded: int = 0
    error: str | None = None  # the connection problem, when the poll failed as a whole


@dataclass(frozen=True)
class PollerStatus:
    partner: str
    host: str
    port: int
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    next_attempt: datetime | None = None
    failures: int = 0  # consecutive failed polls
    downloaded: int = 0  # totals since start
    uploaded: int = 0

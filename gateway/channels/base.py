"""What every channel is to the service, and the names a partner may use.

A channel brings files into `inbox/<partner>/` (through `deposit`) or reads
them back from `outbox/<partner>/` (through `outbox`); the folder watcher
claims what lands in the inbox, whatever brought it. The service knows a
channel only by this seam: it makes channels from the declared list in
`registry`, starts them beside the folders and stops them at the end.
"""
from __future__ import annotations

from typing import Protocol


class Channel(Protocol):
    """A way files arrive (or leave), run beside the folder watcher."""

    name: str  # for the logs

    def start(self) -> None:
        """Begin serving (threads of its own); return at once."""

    def stop(self) -> None:
        """Stop serving: close what it opened and wait for its threads."""


def valid_name(name: str) -> bool:
    """A file or folder name a partner may see or create."""
    return (
        bool(name)
        and not name.startswith(".")
        and not any(ord(c) < 32 or ord(c) == 127 or c == "\\" for c in name)
        and len(name.encode("utf-8", "surrogateescape")) <= 255
    )

"""Bringing bytes into a partner's inbox, the one way every channel does it.

A file is written under a hidden temporary name in `inbox/<partner>/` (the
folder watcher ignores names starting with a dot), made durable (fsync), and
only then renamed to its final name, and the folder fsynced: the watcher
never sees half a file. A crash leaves at most a temporary file, which the
channel that made it sweeps at its next start (`sweep_temps`); each channel
names its temporary files its own way (`TempNames`), so it sweeps only its own.
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from gateway.core.files import fsync_dir


@dataclass(frozen=True)
class TempNames:
    """How one channel names its temporary files: `<prefix><random><suffix>`."""

    prefix: str  # starts with a dot: hidden from the folder watcher and from partners
    suffix: str

    def new(self) -> str:
        return f"{self.prefix}{uuid.uuid4().hex}{self.suffix}"

    def match(self, name: str) -> bool:
        return name.startswith(self.prefix) and name.endswith(self.suffix)


def free_name(folder: Path, name: str) -> Path:
    """`name`, or `stem.N.ext` when a file of that name still waits in the inbox."""
    path = folder / name
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    n = 1
    while path.exists():
        n += 1
        path = folder / (f"{stem}.{n}.{ext}" if dot else f"{name}.{n}")
    return path


def rename_into(folder: Path, tmp: Path, name: str, *, replace: bool = False) -> Path:
    """A durable temporary file renamed to `name` in `folder` (or a free variant
    of it, unless `replace`), the rename itself made durable."""
    final = folder / name if replace else free_name(folder, name)
    os.replace(tmp, final)
    fsync_dir(folder)
    return final


class Deposit:
    """One file on its way into an inbox folder, open under its temporary name.

    Bytes arrive through `write` (streamed, so it serves as a file object for
    paramiko's `getfo`) or `pwrite` (at offsets, as SFTP clients send them);
    `commit` gives the file its final name, `discard` removes it. Used as a
    context manager, a block left without `commit` (an error) discards it.
    """

    def __init__(self, folder: str | os.PathLike[str], temps: TempNames, mode: int = 0o640):
        self.folder = Path(folder)
        self.tmp = self.folder / temps.new()
        self.fd = os.open(self.tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        self.size = 0  # known once sealed
        self.committed = False

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        return len(data)

    def pwrite(self, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, offset)
            view, offset = view[n:], offset + n

    def pread(self, length: int, offset: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def seal(self) -> int:
        """Make the bytes durable and close the file; its size."""
        if self.fd >= 0:
            os.fsync(self.fd)
            self.size = os.fstat(self.fd).st_size
            os.close(self.fd)
            self.fd = -1
        return self.size

    def commit(self, name: str, *, replace: bool = False) -> Path:
        """Seal the file and rename it to `name` in its folder, or to a free
        variant of it (`free_name`: a file waiting there is never overwritten);
        `replace` is for a client that asked to replace its own file."""
        self.seal()
        final = rename_into(self.folder, self.tmp, name, replace=replace)
        self.committed = True
        return final

    def discard(self) -> None:
        """No final file, no temporary file left."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if not self.committed:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "Deposit":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.discard()


def deposit(folder: str | os.PathLike[str], temps: TempNames, mode: int = 0o640) -> Deposit:
    """A new file in `folder` (a partner's inbox), under a temporary name until committed."""
    return Deposit(folder, temps, mode)


def deposit_bytes(folder: str | os.PathLike[str], name: str, data: bytes, temps: TempNames) -> Path:
    """`data` as a new file `name` (or a free variant of it) in `folder`; its path."""
    with deposit(folder, temps) as d:
        d.write(data)
        return d.commit(name)


def sweep_temps(folder: Path, temps: TempNames, max_age: float) -> int:
    """Delete the temporary files of `folder` older than `max_age` seconds (the
    server's partial uploads, the poller's partial downloads)."""
    removed, cutoff = 0, time.time() - max_age
    for f in folder.iterdir():
        try:
            if temps.match(f.name) and f.lstat().st_mtime < cutoff:
                f.unlink()
                removed += 1
        except FileNotFoundError:  # claimed or removed meanwhile
            continue
    return removed

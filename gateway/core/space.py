"""Room to write: the free space under the home's folders, and which errors
say that the device, not the file, is at fault.

Intake claims only while archive/, work/ and outbox/ each keep `[intake]
min_free_mb` (and `min_free_percent` of their file system) free and are not on
a read-only file system. A write that fails for want of room or of a working
device (ENOSPC, EDQUOT, EROFS, EIO; a database saying its disk is full) is a
resource fault: the flow is handed back and tried again later, and it does
not count as a failed attempt.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gateway.core.config import MB, Settings

RESOURCE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
_SQLITE_FULL, _SQLITE_IOERR = 13, 10  # primary result codes (the low byte of an extended code)
_PG_DISK_FULL = "53100"


def resource_fault(exc: BaseException | None) -> BaseException | None:
    """The error in `exc`'s chain (causes, and a database driver's original
    error) that says the device is at fault, or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS:
            return exc
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in (_SQLITE_FULL, _SQLITE_IOERR):
            return exc
        if getattr(exc, "sqlstate", None) == _PG_DISK_FULL:
            return exc
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return None


def fault_text(exc: BaseException) -> str:
    """One line for the log: the resource fault in `exc` if there is one
    ("No space left on device: /x/outbox/ACME/reports/.F1.json.tmp"), else
    the error's type and message."""
    fault = resource_fault(exc)
    if isinstance(fault, OSError):
        return f"{fault.strerror}: {fault.filename}" if fault.filename else str(fault.strerror)
    if fault is not None:
        return str(fault).splitlines()[0] if str(fault) else type(fault).__name__
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class Floor:
    """The free space each folder's file system must keep."""

    mb: float = 200.0
    percent: float = 0.0

    @classmethod
    def of(cls, settings: Settings) -> "Floor":
        return cls(settings.min_free_mb, settings.min_free_percent)

    def bytes_for(self, total: int) -> int:
        return max(int(self.mb * MB), int(total * self.percent / 100))


@dataclass(frozen=True)
class LowSpace:
    """A folder whose file system is below its floor, or read-only."""

    folder: Path
    free_bytes: int
    floor_bytes: int
    read_only: bool = False

    def reason(self) -> str:
        if self.read_only:
            return f"{self.folder} is on a read-only file system"
        return (f"disk low on {self.folder} ({self.free_bytes // MB} MB free, "
                f"floor {-(-self.floor_bytes // MB)} MB)")


def _existing(folder: Path) -> Path:
    # a folder made on first write is measured on the file system it will be made on
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def low_space(folders: Iterable[Path], floor: Floor) -> LowSpace | None:
    """The first folder below the floor (os.statvfs: the space an unprivileged
    writer may use), or None when every one has room."""
    for folder in folders:
        try:
            st = os.statvfs(_existing(folder))
        except OSError:  # unmeasurable: the writes will tell
            continue
        free = st.f_bavail * st.f_frsize
        if st.f_flag & os.ST_RDONLY:
            return LowSpace(folder, free, 0, read_only=True)
        need = floor.bytes_for(st.f_blocks * st.f_frsize)
        if free < need:
            return LowSpace(folder, free, need)
    return None


def home_space(settings: Settings, folders: Iterable[Path] | None = None) -> LowSpace | None:
    """The home's folders that intake and the workers write to (archive/,
    work/, outbox/ by default) against `[intake] min_free_mb` / `min_free_percent`."""
    if folders is None:
        folders = (settings.archive, settings.work, settings.outbox)
    return low_space(folders, Floor.of(settings))

"""Small file-system helpers shared by the channels and the return files."""
from __future__ import annotations

import os
from pathlib import Path


_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW


def atomic_write(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Write under a hidden temporary name in the same folder, then rename, so
    a reader never sees half a file.

    Plain os calls, not open(): a gateway writes several of these per invoice,
    and open() adds an isatty ioctl, an fstat and an lseek to each; the folder
    is made only when it is missing (a mkdir per file cost as much again)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, _WRITE_FLAGS, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, _WRITE_FLAGS, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename in this folder durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

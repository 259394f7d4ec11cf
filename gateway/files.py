"""Small file-system helpers shared by the channels and the return files."""
from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Write under a hidden temporary name in the same folder, then rename, so
    a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename in this folder durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

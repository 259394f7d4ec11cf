"""What channels read back from `outbox/<partner>/`: the files a partner sees.

The gateway writes its reports and status files there under hidden temporary
names and renames them when complete; a partner (through the SFTP server) and
the poller (sending return files) see only entries with a valid name, never
through a symbolic link.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from gateway.channels import folders as intake
from gateway.channels.base import valid_name


def visible_entries(folder: str | os.PathLike[str]) -> list[tuple[str, os.stat_result]]:
    """(name, lstat) of the files and folders of `folder` a partner sees."""
    out = []
    with os.scandir(folder) as it:
        for e in it:
            if not valid_name(e.name) or e.is_symlink():
                continue
            st = e.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                out.append((e.name, st))
    return out


def return_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, path) of every return file below `root`, in name order;
    symlinks, hidden names and names still being written (`intake.ignored`) left out."""
    for dirpath, dirnames, filenames in os.walk(root):  # os.walk does not follow symlinked folders
        dirnames[:] = sorted(d for d in dirnames if valid_name(d))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not valid_name(name) or intake.ignored(name) or path.is_symlink():
                continue
            yield path.relative_to(root).as_posix(), path

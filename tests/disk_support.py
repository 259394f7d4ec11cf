"""A full or read-only disk, simulated (os.statvfs reporting little free
space; os.write / os.replace failing under a folder) or real (a small tmpfs,
where this machine lets the tests mount one)."""
from __future__ import annotations

import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MB = 1024 * 1024


def _under(path: str | os.PathLike | int, folders: list[Path]) -> bool:
    p = Path(os.readlink(f"/proc/self/fd/{path}") if isinstance(path, int) else os.fspath(path))
    return any(p == f or f in p.parents for f in folders)


class Disk:
    """Which folders look low (statvfs) and which refuse writes (an errno)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.low: dict[Path, int] = {}  # folder -> free bytes reported
        self.read_only: set[Path] = set()
        self.failing: dict[Path, int] = {}  # folder -> errno of os.write there
        self.failing_renames: dict[Path, int] = {}  # folder -> errno of os.replace into it
        real_statvfs, real_write, real_replace = os.statvfs, os.write, os.replace

        def statvfs(path):  # noqa: ANN001, ANN202
            st = real_statvfs(path)
            for folder, free in self.low.items():
                if _under(path, [folder]):
                    blocks = 100_000 * MB // st.f_frsize
                    return os.statvfs_result((st.f_bsize, st.f_frsize, blocks, free // st.f_frsize,
                                              free // st.f_frsize, st.f_files, st.f_ffree, st.f_favail,
                                              st.f_flag, st.f_namemax))
            if any(_under(path, [f]) for f in self.read_only):
                return os.statvfs_result((*tuple(st)[:8], st.f_flag | os.ST_RDONLY, st.f_namemax))
            return st

        def write(fd, data):  # noqa: ANN001, ANN202
            for folder, code in self.failing.items():
                if _under(fd, [folder]):
                    raise OSError(code, os.strerror(code))
            return real_write(fd, data)

        def replace(src, dst, **kw):  # noqa: ANN001, ANN003, ANN202
            for folder, code in self.failing_renames.items():
                if _under(dst, [folder]):
                    raise OSError(code, os.strerror(code), os.fspath(dst))
            return real_replace(src, dst, **kw)

        monkeypatch.setattr(os, "statvfs", statvfs)
        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "replace", replace)

    def fill(self, folder: Path, free_mb: float = 12) -> None:
        self.low[folder] = int(free_mb * MB)

    def fail(self, folder: Path, code: int = errno.ENOSPC, *, writes: bool = True, renames: bool = True) -> None:
        if writes:
            self.failing[folder] = code
        if renames:
            self.failing_renames[folder] = code

    def heal(self) -> None:
        self.low.clear()
        self.read_only.clear()
        self.failing.clear()
        self.failing_renames.clear()


@pytest.fixture()
def disk(monkeypatch):
    return Disk(monkeypatch)


@contextmanager
def tmpfs(mountpoint: Path, size: str = "2m") -> Iterator[Path]:
    """A real small file system at `mountpoint`; the test is skipped where
    mounting is not permitted (not root, a container without the right)."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)],
                           capture_output=True, text=True)
    except OSError as exc:  # no mount command
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {(r.stderr or r.stdout).strip() or r.returncode}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def fill_up(folder: Path) -> Path:
    """Write a filler file in `folder` until its file system is full."""
    filler = folder / ".filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def gateway_lines(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("gateway") and r.levelno >= level]

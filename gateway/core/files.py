"""Small file-system helpers shared by the channels and the return files."""
from __future__ import annotations

import errno
import os
import re
import time
from pathlib import Path

from gateway.core import codes
from gateway.core.hosts import alive, host_slug
from gateway.core.records import Finding


_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW


def atomic_write(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False, mode: int = 0o644) -> None:
    """Write under a hidden temporary name in the same folder, then rename, so
    a reader never sees half a file.

    Plain os calls, not open(): a gateway writes several of these per invoice,
    and open() adds an isatty ioctl, an fstat and an lseek to each; the folder
    is made only when it is missing (a mkdir per file cost as much again).
    `mode` is the file's from its creation (0o600 for secrets: never readable
    by others, not even for an instant); a file replaced keeps it too.
    A write that fails (a full disk...) removes its temporary file: the
    folder is left as it was, the old file (if any) whole. The temporary
    name is this process's own (`temp_name`), so two processes (two hosts
    on a shared outbox) writing the same file never mix their bytes; a
    crash's leftovers go with `sweep_temps`."""
    target = os.fspath(path)
    folder, name = os.path.split(target)  # string work: a Path's with_name parses the whole path again
    tmp = os.path.join(folder, temp_name(name))
    try:
        fd = os.open(tmp, _WRITE_FLAGS, mode)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, _WRITE_FLAGS, mode)
    try:
        try:
            if mode != 0o644:  # a temporary left by a crash keeps its old mode: tighten it (one syscall, secrets only)
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)  # on NFS a full disk may only show here
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        if exc.filename is None:  # os.write and os.fsync name no file: say which one, for the log
            raise OSError(exc.errno, exc.strerror, target) from exc
        raise
    except BaseException:
        _discard(tmp)
        raise


_HOST = host_slug()
# `.<name>.<host>-<pid>.tmp`: whose it is, so only a dead writer's is swept
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.tmp$")
_NAME_MAX = 255
STALE_TEMP_SECONDS = 900.0  # no write of a return file takes that long: another host's temp that old is a crash's


def temp_name(name: str) -> str:
    """This process's temporary name for `name` (hidden: starts with a dot),
    the name cut when needed so the whole fits a file system's 255 bytes."""
    tail = f".{_HOST}-{os.getpid()}.tmp"
    room = _NAME_MAX - len(tail.encode()) - 1
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > room:
        name = raw[:room].decode("utf-8", "ignore")
    return f".{name}{tail}"


def stale_temp(path: Path, now: float) -> bool:
    """Whether a temporary file is a crashed writer's: this host's whose
    process is gone, any host's older than STALE_TEMP_SECONDS, and the fixed
    `.<name>.tmp` ones earlier versions wrote. A live writer's never is."""
    m = _TEMP.match(path.name)
    if m is None:
        return True  # no writer names its temporary files so any more
    if m["host"] == _HOST and not alive(m["pid"]):
        return True
    try:
        return now - path.lstat().st_mtime > STALE_TEMP_SECONDS
    except OSError:
        return False


def sweep_temps(folders: list[Path], *, now: float | None = None) -> int:
    """Remove the temporary files crashed writers left under `folders`
    (see `stale_temp`). Returns how many went."""
    now = time.time() if now is None else now
    gone = 0
    for folder in folders:
        for root, _dirs, names in os.walk(folder):
            for name in names:
                path = Path(root, name)
                if name.startswith(".") and name.endswith(".tmp") and stale_temp(path, now):
                    try:
                        path.unlink()
                        gone += 1
                    except OSError:  # gone already, or unwritable: the next start tries again
                        continue
    return gone


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:  # gone already, or the device refuses even that: a later write reuses the name
        pass


def create_once(path: Path, data: bytes, *, mode: int = 0o600) -> bytes:
    """`path`'s bytes, made `data` if it did not exist: written whole under a
    temporary name, then linked into place, so several processes making it at
    once all read the one complete file the first made (never half of it)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(temp_name(path.name))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # never replaces what another process made meanwhile
        except FileExistsError:
            return path.read_bytes()
        return data
    finally:
        _discard(str(tmp))


# link() cannot be used here (rights, file system): a plain rename does it
_NO_LINK = {errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK}


def taking_name(folder: Path, flow_id: str) -> Path:
    """The hidden name a claim gives a partner's file in its folder before archiving it (take)."""
    return folder / f".{flow_id}.taking"


def take(src: Path, dest: Path, *, via: Path) -> None:
    """Move a partner's file into the archive, in three steps:

    1. rename it to `via`, a hidden name beside it only this claim knows
       (taking_name): atomic, so whoever renames first owns the file and the
       others get FileNotFoundError; a file the partner sends again under the
       same name afterwards is a new file, left where it is;
    2. link `via` into the archive as `dest`;
    3. unlink `via`.

    Not a rename into the archive: a move out of the watched inbox is an
    IN_MOVED_FROM without its IN_MOVED_TO, which watchdog holds 0.5 s to pair
    it, and every event queued behind it waits as long (watchdog issue #649):
    under a steady load each new file was seen half a second late. A rename
    inside the folder comes with its pair, and an unlink is an IN_DELETE: both
    passed on at once. A crash between the steps leaves the file under `via`
    (scans skip hidden names), in both places, or in the archive: the claim's
    manifest lets recover() finish it. Where link() is refused (protected hard
    links, another file system) the last two steps are one rename."""
    os.rename(src, via)
    try:
        os.link(via, dest, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise  # (a full disk) the file waits under `via`: recover() archives it
        os.rename(via, dest)
        return
    os.unlink(via)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename in this folder durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stem(name: str) -> str:
    """The file name without its folder and last extension: `in/FA-1.xml` ->
    `FA-1`; a leading or trailing dot starts no extension (`.pdf`, `a.`)."""
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base.strip(".") else base


def extension(name: str) -> str:
    """The last extension, upper case, without the dot ('' when none)."""
    base = name.rsplit("/", 1)[-1]
    return base[len(stem(base)) + 1:].upper()


def fit_name(name: str, limit: int) -> str:
    """The name cut to `limit` characters, keeping its extension."""
    if len(name) <= limit:
        return name
    ext = extension(name)
    tail = f".{name.rsplit('.', 1)[1]}" if ext and len(ext) < limit else ""
    return name[:limit - len(tail)] + tail


def read_archived(path: str, limit: int) -> tuple[bytes | None, list[Finding]]:
    """The flow's bytes, never following a link a partner may have dropped."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        return None, [codes.finding("IRR_TYPE_F", f"Not a regular file (symbolic links are refused): {exc.strerror}",
                                    "Pas un fichier ordinaire (les liens symboliques sont refusés)", stage="file")]
    with os.fdopen(fd, "rb") as fh:
        if os.fstat(fh.fileno()).st_size > limit:
            return None, []
        return fh.read(limit + 1), []

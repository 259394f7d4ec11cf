"""One partner's jailed view of its folders, as an SFTP session sees it.

A virtual root holds `/inbox` (the partner's `<home>/inbox/<partner>/`:
upload, rename, list) and `/outbox` (its `<home>/outbox/<partner>/`: list,
read, delete); every path is split and checked here, and no symlink is ever
followed. An upload is a `deposit`: written to a hidden temporary file and
renamed to its final name only when the client closes the file, so the
folder watcher never sees a half-written flow.

Every handler returns SFTP status codes: paramiko runs them in background
threads where an exception would only vanish.
"""
from __future__ import annotations

import errno
import functools
import logging
import os
import stat

import paramiko
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_si import SFTPServerInterface

from gateway.channels.base import valid_name
from gateway.channels.deposit import Deposit, TempNames, deposit, sweep_temps
from gateway.channels.outbox import visible_entries
from gateway.core.config import MB, Settings
from gateway.store import partners

log = logging.getLogger("gateway.sftp")

UPLOAD_TEMPS = TempNames(".sftp-", ".upload")  # hidden temp files of uploads in progress


def sweep_stale_uploads(settings: Settings, max_age: float) -> int:
    """Delete upload temp files left by a crash or a lost connection."""
    if not settings.inbox.is_dir():
        return 0
    removed = sum(sweep_temps(folder, UPLOAD_TEMPS, max_age) for folder in settings.inbox.iterdir()
                  if folder.is_dir() and not folder.is_symlink())
    if removed:
        log.info("removed %d stale partial SFTP uploads", removed)
    return removed


# --- paths ------------------------------------------------------------------

class Denied(Exception):
    """A request outside what the partner may do: answered 'permission denied'."""


def split_path(path: str) -> list[str]:
    """Components of a virtual path; `..` above the root or a bad name is Denied."""
    if "\0" in path:
        raise Denied("NUL in path")
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise Denied("path escapes the root")
            parts.pop()
            continue
        if not valid_name(comp):
            raise Denied(f"name not allowed: {comp!r}")
        parts.append(comp)
    return parts


def _sftp_call(fn):
    """Turn refusals and OS errors into SFTP status codes, never raise."""

    @functools.wraps(fn)
    def wrapper(self, *args):
        try:
            return fn(self, *args)
        except Denied as exc:
            log.warning("partner %s refused %s %r: %s", self.partner, fn.__name__, args[:2], exc)
            return paramiko.SFTP_PERMISSION_DENIED
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        except Exception:  # a bug must not kill the session thread silently
            log.exception("SFTP %s failed for partner %s", fn.__name__, self.partner)
            return paramiko.SFTP_FAILURE

    return wrapper


# --- file handles -------------------------------------------------------------

class _ReadHandle(paramiko.SFTPHandle):
    def __init__(self, fd: int, flags: int):
        super().__init__(flags)
        self.fd = fd

    def read(self, offset, length):
        try:
            return os.pread(self.fd, length, offset)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    def write(self, offset, data):
        return paramiko.SFTP_PERMISSION_DENIED

    def stat(self):
        return SFTPAttributes.from_stat(os.fstat(self.fd))

    def chattr(self, attr):
        return paramiko.SFTP_PERMISSION_DENIED

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        return paramiko.SFTP_OK


class UploadHandle(paramiko.SFTPHandle):
    """An upload as a `Deposit`; `close()` gives it its final name."""

    def __init__(self, jail: "Jail", upload: Deposit, final: str, flags: int):
        super().__init__(flags)
        self.jail, self.upload, self.final = jail, upload, final
        self.append = bool(flags & os.O_APPEND)
        self.done = False
        self.broken = False  # a write failed: the file must not be completed

    def read(self, offset, length):
        return self.upload.pread(length, offset)

    def write(self, offset, data):
        if self.done:
            return paramiko.SFTP_FAILURE
        try:
            if self.append:
                offset = self.upload.stat().st_size
            if offset + len(data) > self.jail.limits.max_upload_bytes:
                log.warning("partner %s upload %s exceeds %d bytes", self.jail.partner,
                            os.path.basename(self.final), self.jail.limits.max_upload_bytes)
                self.broken = True
                return paramiko.SFTP_FAILURE
            self.upload.pwrite(data, offset)
            return paramiko.SFTP_OK
        except OSError as exc:  # e.g. disk full
            log.error("partner %s upload %s: write failed: %s", self.jail.partner, os.path.basename(self.final), exc)
            self.broken = True
            return paramiko.SFTPServer.convert_errno(exc.errno)

    def stat(self):
        return SFTPAttributes.from_stat(self.upload.stat())

    def chattr(self, attr):
        if attr._flags & attr.FLAG_AMTIME:
            os.utime(self.upload.fd, (attr.st_atime, attr.st_mtime))
        return paramiko.SFTP_OK

    def close(self):
        """The upload is complete: make it durable, then give it its name."""
        if self.done:
            return paramiko.SFTP_OK
        self.done = True
        self.jail.uploads.pop(self.final, None)
        if self.broken:
            self.upload.discard()
            return paramiko.SFTP_FAILURE
        try:
            size = self.upload.seal()
            self.jail.check_inside(self.final)  # the folder may have changed meanwhile
            # the client named its file: an existing one is replaced, as a local write would
            self.upload.commit(os.path.basename(self.final), replace=True)
        except (OSError, Denied) as exc:
            log.error("partner %s upload %s could not be completed: %s",
                      self.jail.partner, os.path.basename(self.final), exc)
            self.upload.discard()
            return paramiko.SFTP_FAILURE
        log.info("partner %s uploaded %s (%d bytes)", self.jail.partner, os.path.basename(self.final), size)
        return paramiko.SFTP_OK

    def abort(self) -> None:
        """The session ended before close(): no final file, no temp left."""
        if self.done:
            return
        self.done = True
        self.upload.discard()
        log.warning("partner %s upload %s interrupted; partial data removed",
                    self.jail.partner, os.path.basename(self.final))


# --- the per-session jail -------------------------------------------------------

class Jail(SFTPServerInterface):
    """One SFTP session of one authenticated partner."""

    def __init__(self, server: paramiko.ServerInterface, *args, **kwargs):
        super().__init__(server, *args, **kwargs)
        owner = server.owner  # the SftpServer that accepted this connection
        self.limits = owner.limits
        self.partner: str = server.transport.get_username()
        inbox, outbox = partners.ensure_folders(owner.settings, self.partner)
        self.areas = {"inbox": os.path.realpath(inbox), "outbox": os.path.realpath(outbox)}
        self.uploads: dict[str, UploadHandle] = {}  # final real path -> open upload

    def session_ended(self):
        for up in list(self.uploads.values()):
            up.abort()
        self.uploads.clear()

    def canonicalize(self, path):
        # REALPATH: clamp like a chroot; the operations themselves refuse escapes.
        parts: list[str] = []
        for comp in path.split("/"):
            if comp == "..":
                if parts:
                    parts.pop()
            elif comp not in ("", "."):
                parts.append(comp)
        return "/" + "/".join(parts)

    # -- resolution --
    def resolve(self, path: str) -> tuple[str | None, list[str], str]:
        """(area, parts below it, real path); area None is the virtual root."""
        parts = split_path(path)
        if not parts:
            return None, [], ""
        area, rest = parts[0], parts[1:]
        base = self.areas.get(area)
        if base is None:
            raise Denied("only /inbox and /outbox exist")
        if area == "inbox" and len(rest) > 1:
            raise Denied("no folders inside /inbox")
        real = os.path.join(base, *rest)
        self.check_inside(real)
        return area, rest, real

    def check_inside(self, real: str) -> None:
        """Refuse any symlink between the partner's folder and `real`."""
        if os.path.realpath(real) != real:
            raise Denied("symbolic links are not followed")

    def _file(self, path: str, *areas: str) -> tuple[str, str]:
        area, rest, real = self.resolve(path)
        if area is None or not rest:
            raise Denied("not a file")
        if area not in areas:
            raise Denied(f"not allowed in /{area}")
        return area, real

    # -- listing and attributes --
    @_sftp_call
    def list_folder(self, path):
        area, rest, real = self.resolve(path)
        if area is None:
            return [self._area_attr(a) for a in ("inbox", "outbox")]
        # what a partner sees: the same rules in both areas; folders only in /outbox
        return [SFTPAttributes.from_stat(st, name) for name, st in visible_entries(real)
                if area == "outbox" or stat.S_ISREG(st.st_mode)]

    @_sftp_call
    def stat(self, path):
        return self._stat(path)

    @_sftp_call
    def lstat(self, path):
        return self._stat(path)

    def _stat(self, path):
        area, rest, real = self.resolve(path)
        if area is None:
            attr = self._area_attr("inbox")
            attr.filename = "/"
            return attr
        up = self.uploads.get(real)
        if up is not None and not os.path.lexists(real):
            return up.stat()
        st = os.lstat(real)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise Denied("not a regular file")
        return SFTPAttributes.from_stat(st, rest[-1] if rest else area)

    def _area_attr(self, area: str) -> SFTPAttributes:
        return SFTPAttributes.from_stat(os.stat(self.areas[area]), area)

    # -- files --
    @_sftp_call
    def open(self, path, flags, attr):
        writing = flags & (os.O_WRONLY | os.O_RDWR)
        area, real = self._file(path, "inbox") if writing else self._file(path, "inbox", "outbox")
        if writing:
            return self._open_upload(real, flags)
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise Denied("not a regular file")
        log.debug("partner %s reads %s/%s", self.partner, area, os.path.basename(real))
        return _ReadHandle(fd, flags)

    def _open_upload(self, real: str, flags: int) -> UploadHandle:
        exists = os.path.lexists(real)
        if flags & os.O_EXCL and (exists or real in self.uploads):
            raise FileExistsError(errno.EEXIST, "exists")
        if not exists and not flags & os.O_CREAT:
            raise FileNotFoundError(errno.ENOENT, "no such file")
        upload = deposit(os.path.dirname(real), UPLOAD_TEMPS)
        try:
            if exists and not flags & os.O_TRUNC:  # resume or patch: start from the current content
                src = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    while chunk := os.read(src, MB):
                        upload.write(chunk)
                finally:
                    os.close(src)
        except OSError:
            upload.discard()
            raise
        handle = UploadHandle(self, upload, real, flags)
        self.uploads[real] = handle
        return handle

    @_sftp_call
    def remove(self, path):
        area, real = self._file(path, "inbox", "outbox")
        if not stat.S_ISREG(os.lstat(real).st_mode):
            raise Denied("not a regular file")
        os.unlink(real)
        log.info("partner %s removed %s/%s", self.partner, area, "/".join(split_path(path)[1:]))
        return paramiko.SFTP_OK

    @_sftp_call
    def rename(self, oldpath, newpath):
        return self._rename(oldpath, newpath, overwrite=False)

    @_sftp_call
    def posix_rename(self, oldpath, newpath):
        return self._rename(oldpath, newpath, overwrite=True)

    def _rename(self, oldpath: str, newpath: str, overwrite: bool):
        _, src = self._file(oldpath, "inbox")
        _, dst = self._file(newpath, "inbox")
        up = self.uploads.get(src)
        if up is not None and not os.path.lexists(src):
            # Renamed while still open: the upload will complete under the new name.
            if not overwrite and (os.path.lexists(dst) or dst in self.uploads):
                raise FileExistsError(errno.EEXIST, "exists")
            del self.uploads[src]
            up.final = dst
            self.uploads[dst] = up
            return paramiko.SFTP_OK
        if not stat.S_ISREG(os.lstat(src).st_mode):
            raise Denied("not a regular file")
        if not overwrite and os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "exists")
        os.replace(src, dst)
        return paramiko.SFTP_OK

    @_sftp_call
    def chattr(self, path, attr):
        _, real = self._file(path, "inbox")
        if attr._flags & attr.FLAG_AMTIME:
            os.utime(real, (attr.st_atime, attr.st_mtime), follow_symlinks=False)
        return paramiko.SFTP_OK  # chmod/chown accepted and ignored: modes and owners stay the gateway's

    @_sftp_call
    def mkdir(self, path, attr):
        raise Denied("folders are managed by the gateway")

    @_sftp_call
    def rmdir(self, path):
        raise Denied("folders are managed by the gateway")

    @_sftp_call
    def symlink(self, target_path, path):
        raise Denied("symbolic links are not allowed")

    @_sftp_call
    def readlink(self, path):
        raise Denied("symbolic links are not allowed")

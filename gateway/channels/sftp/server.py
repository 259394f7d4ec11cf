"""The gateway's own SFTP server: one jailed view per partner.

A partner logs in with its sender code and sees a virtual root holding
`/inbox` (its `<home>/inbox/<partner>/`: upload, rename, list) and `/outbox`
(its `<home>/outbox/<partner>/`: list, read, delete). Uploads are written to a
hidden temporary file and renamed to their final name only when the client
closes the file, so the folder watcher never sees a half-written flow.

Threads: one accept thread; per connection one thread that runs the
handshake and the login deadline, paramiko's transport thread and one thread
per SFTP session. Every handler returns SFTP status codes: paramiko runs them
in background threads where an exception would only vanish.
"""
from __future__ import annotations

import errno
import functools
import logging
import os
import socket
import stat
import struct
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import paramiko
from paramiko.message import Message
from paramiko.sftp import CMD_CLOSE, CMD_INIT, CMD_VERSION, SFTPError, _VERSION
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_si import SFTPServerInterface

from gateway.core.files import fsync_dir
from gateway.store import partners
from gateway.core.config import MB, Settings

log = logging.getLogger("gateway.sftp")
# paramiko logs every dropped or garbage connection as an ERROR with a traceback;
# the gateway logs one line per connection problem itself (raise this to debug).
_ssh_log = logging.getLogger("gateway.sftp.ssh")
if _ssh_log.level == logging.NOTSET:
    _ssh_log.setLevel(logging.CRITICAL)

UPLOAD_PREFIX = ".sftp-"  # hidden temp files of uploads in progress
UPLOAD_SUFFIX = ".upload"
HOST_KEY_FILES = ("ssh_host_ed25519_key", "ssh_host_ecdsa_key", "ssh_host_rsa_key")

# Modern algorithms only (paramiko 5.1 names); CBC, SHA-1 and group14 are left out.
CIPHERS = ("aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr")
KEX = ("mlkem768x25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp521",
       "ecdh-sha2-nistp384", "ecdh-sha2-nistp256", "diffie-hellman-group16-sha512")
MACS = ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512", "hmac-sha2-256")


@dataclass(frozen=True)
class Limits:
    """The `[sftp]` section's limits, with their defaults."""

    max_connections: int = 200
    max_per_ip: int = 64
    login_grace_seconds: float = 30.0  # unauthenticated connections are closed after this
    max_auth_tries: int = 6  # per connection
    max_auth_failures: int = 5  # per (IP, user) within the window before a lockout
    failure_window_seconds: float = 600.0
    lockout_seconds: float = 60.0  # doubles with each lockout ...
    lockout_max_seconds: float = 3600.0  # ... up to this
    max_sessions: int = 4  # SFTP sessions per connection
    max_upload_bytes: int = 1024 * MB
    stale_upload_seconds: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        sec = settings.section("sftp")
        kw = {}
        for name, default in cls.__dataclass_fields__.items():
            key = "max_upload_mb" if name == "max_upload_bytes" else name
            if key in sec:
                val = float(sec[key]) * (MB if key == "max_upload_mb" else 1)
                kw[name] = type(default.default)(val)
        return cls(**kw)


class LoginThrottle:
    """Failed logins per (remote IP, user) and per IP; lockout with back-off."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic):
        self.limits, self.clock = limits, clock
        self._lock = threading.Lock()
        self._state: dict[tuple[str, str], list[float]] = {}  # key -> [count, last, locked_until, lockouts]

    def _keys(self, ip: str, user: str):
        # A whole IP gets a larger allowance, so spraying user names is bounded too.
        return ((ip, "\0user:" + user), self.limits.max_auth_failures), ((ip, "\0ip"), self.limits.max_auth_failures * 4)

    def locked(self, ip: str, user: str) -> float:
        """Seconds of lockout left for this IP and user (0 when free)."""
        now = self.clock()
        with self._lock:
            return max([self._state.get(k, [0, 0, 0, 0])[2] - now for k, _ in self._keys(ip, user)] + [0.0])

    def failed(self, ip: str, user: str) -> float:
        """Count a failure; return the lockout it started (0 if none)."""
        now, lim = self.clock(), self.limits
        started = 0.0
        with self._lock:
            if len(self._state) > 10000:
                self._prune(now)
            for key, allowed in self._keys(ip, user):
                st = self._state.setdefault(key, [0, now, 0.0, 0])
                if now - st[1] > lim.failure_window_seconds:
                    st[0] = 0
                st[0] += 1
                st[1] = now
                if st[0] >= allowed:
                    st[3] += 1
                    wait = min(lim.lockout_seconds * 2 ** (st[3] - 1), lim.lockout_max_seconds)
                    st[0], st[2] = 0, now + wait
                    started = max(started, wait)
        return started

    def succeeded(self, ip: str, user: str) -> None:
        with self._lock:
            self._state.pop((ip, "\0user:" + user), None)

    def _prune(self, now: float) -> None:
        horizon = max(self.limits.failure_window_seconds, self.limits.lockout_max_seconds)
        for key in [k for k, st in self._state.items() if now - st[1] > horizon and st[2] < now]:
            del self._state[key]


# --- host keys --------------------------------------------------------------

def host_keys(settings: Settings) -> list[paramiko.PKey]:
    """The server's host keys, created in <home>/keys/ on first use and kept.

    ECDSA P-256 and RSA 3072 are generated (paramiko cannot generate Ed25519);
    an `ssh_host_ed25519_key` made with ssh-keygen is used when present.
    """
    settings.keys.mkdir(parents=True, exist_ok=True)
    keys = []
    for fname in HOST_KEY_FILES:
        path = settings.keys / fname
        if not path.exists() and fname != "ssh_host_ed25519_key":
            _create_host_key(path)
        if path.exists():
            keys.append(paramiko.PKey.from_path(path))
    return keys


def _create_host_key(path: Path) -> None:
    key = paramiko.ECDSAKey.generate(bits=256) if "ecdsa" in path.name else paramiko.RSAKey.generate(3072)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        key.write_private_key(fh)
    try:
        os.link(tmp, path)  # never replaces a key another process made meanwhile
        path.with_name(path.name + ".pub").write_text(f"{key.get_name()} {key.get_base64()} gateway\n")
        log.info("created SFTP host key %s (%s)", path, key.fingerprint)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def sweep_stale_uploads(settings: Settings, max_age: float) -> int:
    """Delete upload temp files left by a crash or a lost connection."""
    if not settings.inbox.is_dir():
        return 0
    removed = sum(sweep_temps(folder, _is_upload_temp, max_age) for folder in settings.inbox.iterdir()
                  if folder.is_dir() and not folder.is_symlink())
    if removed:
        log.info("removed %d stale partial SFTP uploads", removed)
    return removed


def sweep_temps(folder: Path, is_temp: Callable[[str], bool], max_age: float) -> int:
    """Delete the temp files of `folder` older than `max_age` seconds (the
    server's partial uploads, the poller's partial downloads)."""
    removed, cutoff = 0, time.time() - max_age
    for f in folder.iterdir():
        try:
            if is_temp(f.name) and f.lstat().st_mtime < cutoff:
                f.unlink()
                removed += 1
        except FileNotFoundError:  # claimed or removed meanwhile
            continue
    return removed


def _is_upload_temp(name: str) -> bool:
    return name.startswith(UPLOAD_PREFIX) and name.endswith(UPLOAD_SUFFIX)


# --- paths ------------------------------------------------------------------

class Denied(Exception):
    """A request outside what the partner may do: answered 'permission denied'."""


def valid_name(name: str) -> bool:
    """A file or folder name a partner may see or create."""
    return (
        bool(name)
        and not name.startswith(".")
        and not any(ord(c) < 32 or ord(c) == 127 or c == "\\" for c in name)
        and len(name.encode("utf-8", "surrogateescape")) <= 255
    )


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


class _UploadHandle(paramiko.SFTPHandle):
    """Writes to a hidden temp file; `close()` renames it to the final name."""

    def __init__(self, jail: "_Jail", fd: int, tmp: str, final: str, flags: int):
        super().__init__(flags)
        self.jail, self.fd, self.tmp, self.final = jail, fd, tmp, final
        self.append = bool(flags & os.O_APPEND)
        self.done = False
        self.broken = False  # a write failed: the file must not be completed

    def read(self, offset, length):
        return os.pread(self.fd, length, offset)

    def write(self, offset, data):
        if self.done:
            return paramiko.SFTP_FAILURE
        try:
            if self.append:
                offset = os.fstat(self.fd).st_size
            if offset + len(data) > self.jail.limits.max_upload_bytes:
                log.warning("partner %s upload %s exceeds %d bytes", self.jail.partner,
                            os.path.basename(self.final), self.jail.limits.max_upload_bytes)
                self.broken = True
                return paramiko.SFTP_FAILURE
            view = memoryview(data)
            while view:
                n = os.pwrite(self.fd, view, offset)
                view, offset = view[n:], offset + n
            return paramiko.SFTP_OK
        except OSError as exc:  # e.g. disk full
            log.error("partner %s upload %s: write failed: %s", self.jail.partner, os.path.basename(self.final), exc)
            self.broken = True
            return paramiko.SFTPServer.convert_errno(exc.errno)

    def stat(self):
        return SFTPAttributes.from_stat(os.fstat(self.fd))

    def chattr(self, attr):
        if attr._flags & attr.FLAG_AMTIME:
            os.utime(self.fd, (attr.st_atime, attr.st_mtime))
        return paramiko.SFTP_OK

    def close(self):
        """The upload is complete: make it durable, then give it its name."""
        if self.done:
            return paramiko.SFTP_OK
        self.done = True
        self.jail.uploads.pop(self.final, None)
        if self.broken:
            self._discard()
            return paramiko.SFTP_FAILURE
        try:
            os.fsync(self.fd)
            size = os.fstat(self.fd).st_size
            os.close(self.fd)
            self.fd = -1
            self.jail.check_inside(self.final)  # the folder may have changed meanwhile
            os.replace(self.tmp, self.final)
            fsync_dir(os.path.dirname(self.final))
        except (OSError, Denied) as exc:
            log.error("partner %s upload %s could not be completed: %s",
                      self.jail.partner, os.path.basename(self.final), exc)
            self._discard()
            return paramiko.SFTP_FAILURE
        log.info("partner %s uploaded %s (%d bytes)", self.jail.partner, os.path.basename(self.final), size)
        return paramiko.SFTP_OK

    def abort(self) -> None:
        """The session ended before close(): no final file, no temp left."""
        if self.done:
            return
        self.done = True
        self._discard()
        log.warning("partner %s upload %s interrupted; partial data removed",
                    self.jail.partner, os.path.basename(self.final))

    def _discard(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass



# --- the per-session jail -------------------------------------------------------

class _Jail(SFTPServerInterface):
    """One SFTP session of one authenticated partner."""

    def __init__(self, server: "_Connection", *args, **kwargs):
        super().__init__(server, *args, **kwargs)
        self.owner: SftpServer = server.owner
        self.limits = self.owner.limits
        self.partner: str = server.transport.get_username()
        inbox, outbox = partners.ensure_folders(self.owner.settings, self.partner)
        self.areas = {"inbox": os.path.realpath(inbox), "outbox": os.path.realpath(outbox)}
        self.uploads: dict[str, _UploadHandle] = {}  # final real path -> open upload

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
        out = []
        with os.scandir(real) as entries:
            for e in entries:
                if not valid_name(e.name) or e.is_symlink():
                    continue
                st = e.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) or (area == "outbox" and stat.S_ISDIR(st.st_mode)):
                    out.append(SFTPAttributes.from_stat(st, e.name))
        return out

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

    def _open_upload(self, real: str, flags: int) -> _UploadHandle:
        exists = os.path.lexists(real)
        if flags & os.O_EXCL and (exists or real in self.uploads):
            raise FileExistsError(errno.EEXIST, "exists")
        if not exists and not flags & os.O_CREAT:
            raise FileNotFoundError(errno.ENOENT, "no such file")
        tmp = os.path.join(os.path.dirname(real), f"{UPLOAD_PREFIX}{uuid.uuid4().hex}{UPLOAD_SUFFIX}")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
        try:
            if exists and not flags & os.O_TRUNC:  # resume or patch: start from the current content
                src = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    while chunk := os.read(src, MB):
                        os.write(fd, chunk)
                finally:
                    os.close(src)
        except OSError:
            os.close(fd)
            os.unlink(tmp)
            raise
        handle = _UploadHandle(self, fd, tmp, real, flags)
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


class _SFTPServer(paramiko.SFTPServer):
    """paramiko's SFTP subsystem, plus two things it lacks: it advertises
    posix-rename@openssh.com (so OpenSSH's `rename` overwrites atomically) and
    reports a failed close (the moment an upload becomes a file) to the client."""

    def _send_server_version(self):
        t, data = self._read_packet()
        if t != CMD_INIT:
            raise SFTPError("Incompatible sftp protocol")
        version = struct.unpack(">I", data[:4])[0]
        msg = Message()
        msg.add_int(_VERSION)
        msg.add("posix-rename@openssh.com", "1")
        self._send_packet(CMD_VERSION, msg)
        return version

    def _process(self, t, request_number, msg):
        if t == CMD_CLOSE:
            handle = msg.get_binary()
            f = self.file_table.get(handle)
            if isinstance(f, _UploadHandle):
                del self.file_table[handle]
                self._send_status(request_number, f.close())
                return
            msg.rewind()
            msg.get_int()  # the request number, already read by the caller
        super()._process(t, request_number, msg)


# --- connections ----------------------------------------------------------------

class _Connection(paramiko.ServerInterface):
    """Authentication and channel policy for one TCP connection."""

    def __init__(self, owner: "SftpServer", ip: str, transport: paramiko.Transport):
        self.owner, self.ip, self.transport = owner, ip, transport
        self.failures = 0
        self.sessions = 0
        self.method = ""

    def get_allowed_auths(self, username):
        return "publickey,password"

    def check_auth_publickey(self, username, key):
        return self._auth(username, "publickey", lambda: partners.key_allowed(self.owner.settings, username, key))

    def check_auth_password(self, username, password):
        if not isinstance(password, str):
            password = ""
        return self._auth(username, "password",
                          lambda: partners.check_password(self.owner.settings, username, password))

    def _auth(self, username: str, method: str, check: Callable[[], bool]) -> int:
        throttle = self.owner.throttle
        if self.failures >= self.owner.limits.max_auth_tries:
            return paramiko.AUTH_FAILED  # no more checks; the connection is being closed
        wait = throttle.locked(self.ip, username)
        if wait > 0:
            self.failures += 1
            log.warning("SFTP login of %r from %s refused: locked out for %.0f s more", username, self.ip, wait)
            return paramiko.AUTH_FAILED
        try:
            ok = check()
        except Exception:
            log.exception("SFTP login check of %r failed", username)
            ok = False
        if ok:
            self.method = method
            return paramiko.AUTH_SUCCESSFUL
        self.failures += 1
        lockout = throttle.failed(self.ip, username)
        log.warning("SFTP login of %r from %s failed (%s)", username, self.ip, method)
        if lockout:
            log.warning("SFTP logins of %r from %s locked out for %.0f s after repeated failures",
                        username, self.ip, lockout)
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session" and self.sessions < self.owner.limits.max_sessions:
            self.sessions += 1
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel, name):
        # Only SFTP: no shell, exec, forwarding or other subsystems.
        return name == "sftp" and super().check_channel_subsystem_request(channel, name)


class SftpServer:
    """The gateway's SFTP listener.

    `start()` binds and returns the real (host, port) (port 0 picks a free
    one); `stop()` closes the listener and every session. A completed upload
    is a file in the partner's inbox folder, where the folder watcher finds it.
    """

    def __init__(self, settings: Settings, host: str | None = None, port: int | None = None):
        self.settings = settings
        self.host = host if host is not None else settings.sftp_host
        self.port = port if port is not None else settings.sftp_port
        self.limits = Limits.from_settings(settings)
        self.throttle = LoginThrottle(self.limits)
        self.address: tuple[str, int] | None = None
        self._keys: list[paramiko.PKey] = []
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[threading.Thread, paramiko.Transport | None] = {}
        self._per_ip: dict[str, int] = defaultdict(int)

    # -- lifecycle --
    def start(self) -> tuple[str, int]:
        self._keys = host_keys(self.settings)
        sweep_stale_uploads(self.settings, self.limits.stale_upload_seconds)
        family = socket.getaddrinfo(self.host or None, self.port, type=socket.SOCK_STREAM,
                                    flags=socket.AI_PASSIVE)[0][0]
        self._listener = socket.create_server((self.host, self.port), family=family, backlog=256)
        self._listener.settimeout(0.5)  # so the accept loop sees stop()
        self.address = tuple(self._listener.getsockname()[:2])
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="sftp-accept", daemon=True)
        self._accept_thread.start()
        log.info("SFTP server listening on %s:%d (host keys: %s)", self.address[0], self.address[1],
                 ", ".join(k.fingerprint for k in self._keys))
        return self.address

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
        with self._lock:
            items = list(self._conns.items())
        for _, transport in items:
            if transport is not None:
                transport.close()
        for thread, _ in items:
            thread.join(timeout=5)
        if self.address:
            log.info("SFTP server on %s:%d stopped", *self.address)

    def __enter__(self) -> "SftpServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._conns)

    # -- accepting --
    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, addr = self._listener.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    break
                log.warning("SFTP accept failed: %s", exc)
                time.sleep(0.1)  # e.g. out of file descriptors: do not spin
                continue
            ip = addr[0]
            refusal = None
            with self._lock:
                if len(self._conns) >= self.limits.max_connections:
                    refusal = f"{len(self._conns)} connections open"
                elif self._per_ip[ip] >= self.limits.max_per_ip:
                    refusal = f"{self._per_ip[ip]} connections open from this address"
                else:
                    thread = threading.Thread(target=self._serve, args=(sock, ip), name=f"sftp-{ip}", daemon=True)
                    self._conns[thread] = None
                    self._per_ip[ip] += 1
            if refusal:
                log.warning("SFTP connection from %s refused: %s", ip, refusal)
                sock.close()
                continue
            thread.start()

    def _serve(self, sock: socket.socket, ip: str) -> None:
        """One connection: handshake and login deadline here, never in the accept thread."""
        me = threading.current_thread()
        transport = None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            transport = paramiko.Transport(sock)
            transport.set_log_channel("gateway.sftp.ssh")
            transport.banner_timeout = min(10.0, self.limits.login_grace_seconds)
            transport.handshake_timeout = min(15.0, self.limits.login_grace_seconds)
            _harden(transport)
            for key in self._keys:
                transport.add_server_key(key)
            transport.set_subsystem_handler("sftp", _SFTPServer, _Jail)
            conn = _Connection(self, ip, transport)
            with self._lock:
                self._conns[me] = transport
            if self._stopping.is_set():
                return
            transport.start_server(event=threading.Event(), server=conn)
            if not self._await_login(transport, conn, ip):
                return
            user = transport.get_username()
            self.throttle.succeeded(ip, user)
            log.info("partner %s logged in from %s (%s)", user, ip, conn.method)
            while transport.is_active() and not self._stopping.is_set():
                transport.join(0.5)
            log.info("partner %s from %s disconnected", user, ip)
        except Exception as exc:  # a broken client must never take the server down
            log.warning("SFTP connection from %s failed: %s", ip, exc)
        finally:
            if transport is not None:
                transport.close()
            sock.close()
            with self._lock:
                self._conns.pop(me, None)
                self._per_ip[ip] -= 1
                if self._per_ip[ip] <= 0:
                    del self._per_ip[ip]

    def _await_login(self, transport: paramiko.Transport, conn: _Connection, ip: str) -> bool:
        deadline = time.monotonic() + self.limits.login_grace_seconds
        while not transport.is_authenticated():
            if not transport.is_active():
                exc = transport.get_exception()
                log.info("SFTP connection from %s ended before login%s", ip, f": {exc}" if exc else "")
                return False
            if self._stopping.is_set():
                return False
            if conn.failures >= self.limits.max_auth_tries:
                log.warning("SFTP connection from %s closed after %d failed logins", ip, conn.failures)
                return False
            if time.monotonic() > deadline:
                log.warning("SFTP connection from %s closed: no login within %.0f s",
                            ip, self.limits.login_grace_seconds)
                return False
            self._stopping.wait(0.1)
        return True


def _harden(transport: paramiko.Transport) -> None:
    opts = transport.get_security_options()
    opts.ciphers = tuple(c for c in CIPHERS if c in opts.ciphers)
    opts.kex = tuple(k for k in KEX if k in opts.kex)
    opts.digests = tuple(d for d in MACS if d in opts.digests)
    opts.compression = ("none",)

"""One SFTP connection: its login (`Connection`, the paramiko ServerInterface:
keys, passwords against the `LoginThrottle`, the channels it may open) and
the SFTP subsystem serving its requests (`SftpSubsystem`), which tells the
connection when it was last asked something, for the idle timeout."""
from __future__ import annotations

import logging
import struct
import threading
import time
from typing import Callable, Protocol

import paramiko
from paramiko.message import Message
from paramiko.sftp import CMD_CLOSE, CMD_INIT, CMD_VERSION, SFTPError, _VERSION

from gateway.channels.sftp.jail import UploadHandle
from gateway.channels.sftp.throttle import Limits, LoginThrottle
from gateway.core.config import Settings
from gateway.store import partners

log = logging.getLogger("gateway.sftp")


class Listener(Protocol):
    """What a connection (and its jail) needs of the server that accepted it."""

    settings: Settings
    limits: Limits
    throttle: LoginThrottle

    def take_place(self, conn: Connection) -> bool:
        """A place among its partner's connections in session (sets `conn.partner`)."""


# --- the SFTP subsystem -------------------------------------------------------

class SftpSubsystem(paramiko.SFTPServer):
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
        conn = self.get_server()
        conn.active(+1)  # a request being served is no idleness, however long it takes
        try:
            self._serve_request(t, request_number, msg)
        finally:
            conn.active(-1)

    def _serve_request(self, t, request_number, msg):
        if t == CMD_CLOSE:
            handle = msg.get_binary()
            f = self.file_table.get(handle)
            if isinstance(f, UploadHandle):
                del self.file_table[handle]
                self._send_status(request_number, f.close())
                return
            msg.rewind()
            msg.get_int()  # the request number, already read by the caller
        super()._process(t, request_number, msg)


# --- connections ----------------------------------------------------------------

class Connection(paramiko.ServerInterface):
    """Authentication and channel policy for one TCP connection."""

    def __init__(self, owner: Listener, ip: str, transport: paramiko.Transport):
        self.owner, self.ip, self.transport = owner, ip, transport
        self.failures = 0
        self.sessions = 0
        self.method = ""
        self.partner: str | None = None  # once it holds one of its partner's places
        self.refused = False  # no place: the connection is closed
        self.ended = False
        self._activity = threading.Lock()
        self._requests = 0  # SFTP requests being served now
        self._last_request = time.monotonic()

    def active(self, change: int = 0) -> None:
        """An SFTP request starts (+1) or ends (-1); 0 restarts the idle clock."""
        with self._activity:
            self._requests += change
            self._last_request = time.monotonic()

    def idle_seconds(self) -> float:
        with self._activity:
            return 0.0 if self._requests else time.monotonic() - self._last_request

    def get_allowed_auths(self, username):
        return "publickey,password"

    def check_auth_publickey(self, username, key):
        # judged by its key alone: lockouts and pauses stop passwords, never a key
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
        password = method == "password"
        wait = throttle.locked(self.ip, username) if password else 0.0
        if wait > 0:
            self.failures += 1
            log.warning("SFTP login of %r from %s refused: passwords locked out for %.0f s more",
                        username, self.ip, wait)
            return paramiko.AUTH_FAILED
        pause = throttle.paused() if password else 0.0
        if pause > 0:
            self.failures += 1
            # DEBUG: the pause itself was logged once when it began
            log.debug("SFTP login of %r from %s refused: password checks paused for %.0f s more",
                      username, self.ip, pause)
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
        log.warning("SFTP login of %r from %s failed (%s)", username, self.ip, method)
        if not password:
            return paramiko.AUTH_FAILED  # a key cannot be guessed: not counted against anyone
        failure = throttle.failure(self.ip, username)
        if failure.lockout:
            log.warning("SFTP password logins of %r from %s locked out for %.0f s after repeated failures "
                        "(key logins go on)", username, self.ip, failure.lockout)
        if failure.pause:
            lim = self.owner.limits
            log.warning("SFTP password checks paused for %.0f s: %d wrong passwords from %d address(es) within "
                        "%.0f s (max_global_failures); key logins go on", failure.pause, lim.max_global_failures,
                        failure.addresses, lim.global_window_seconds)
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        # channels come after the login only: the first session takes the partner's place
        if kind != "session" or self.sessions >= self.owner.limits.max_sessions or self.refused:
            return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        if self.partner is None and not self.owner.take_place(self):
            self.refused = True
            return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        self.sessions += 1
        return paramiko.OPEN_SUCCEEDED

    def check_channel_subsystem_request(self, channel, name):
        # Only SFTP: no shell, exec, forwarding or other subsystems.
        return name == "sftp" and super().check_channel_subsystem_request(channel, name)

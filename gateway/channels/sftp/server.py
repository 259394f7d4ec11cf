"""The gateway's own SFTP server: one jailed view per partner.

A partner logs in with its sender code (a key or a password, `LoginThrottle`
against guessing) and gets an SFTP session on its `Jail` (jail.py): its
inbox to upload to, its outbox to read from. Only modern algorithms are
offered; the host keys live in `<home>/keys/`.

Threads: one accept thread; per connection one thread that runs the
handshake and the login deadline, paramiko's transport thread and one thread
per SFTP session.
"""
from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Callable

import paramiko
from paramiko.message import Message
from paramiko.sftp import CMD_CLOSE, CMD_INIT, CMD_VERSION, SFTPError, _VERSION

from gateway.channels.sftp.jail import Jail, UploadHandle, sweep_stale_uploads
from gateway.channels.sftp.throttle import Limits, LoginThrottle
from gateway.core.config import Settings
from gateway.store import partners

log = logging.getLogger("gateway.sftp")
# paramiko logs every dropped or garbage connection as an ERROR with a traceback;
# the gateway logs one line per connection problem itself (raise this to debug).
_ssh_log = logging.getLogger("gateway.sftp.ssh")
if _ssh_log.level == logging.NOTSET:
    _ssh_log.setLevel(logging.CRITICAL)

HOST_KEY_FILES = ("ssh_host_ed25519_key", "ssh_host_ecdsa_key", "ssh_host_rsa_key")

# Modern algorithms only (paramiko 5.1 names); CBC, SHA-1 and group14 are left out.
CIPHERS = ("aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr")
KEX = ("mlkem768x25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp521",
       "ecdh-sha2-nistp384", "ecdh-sha2-nistp256", "diffie-hellman-group16-sha512")
MACS = ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512", "hmac-sha2-256")


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


# --- the SFTP subsystem -------------------------------------------------------

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
            if isinstance(f, UploadHandle):
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
    """The gateway's SFTP listener, a `Channel`.

    `start()` binds and sets `address`, the real (host, port) (port 0 picks a
    free one); `stop()` closes the listener and every session. A completed
    upload is a file in the partner's inbox folder, where the folder watcher finds it.
    """

    name = "sftp"

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
    def start(self) -> None:
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
            transport.set_subsystem_handler("sftp", _SFTPServer, Jail)
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

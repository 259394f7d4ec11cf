"""The gateway's own SFTP server: one jailed view per partner.

A partner logs in with its sender code (a key or a password, `LoginThrottle`
against guessing passwords) and gets an SFTP session on its `Jail` (jail.py):
its inbox to upload to, its outbox to read from. Only modern algorithms are
offered; the host keys live in `<home>/keys/`.

No one address or partner starves the others: connections are capped in all
and per address, logged-in connections per partner, and a logged-in
connection with no SFTP request for `idle_timeout_seconds` is closed, as an
unauthenticated one is after `login_grace_seconds`.

Threads: one accept thread; per connection one thread that runs the
handshake and the login deadline, paramiko's transport thread and one thread
per SFTP session.
"""
from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections import defaultdict
from pathlib import Path

import paramiko

from gateway.channels.sftp.connection import Connection, SftpSubsystem
from gateway.channels.sftp.jail import Jail, sweep_stale_uploads
from gateway.channels.sftp.throttle import Limits, LoginThrottle
from gateway.core.config import Settings
from gateway.core.files import create_once

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
    text = io.StringIO()
    key.write_private_key(text)
    if create_once(path, text.getvalue().encode("ascii")) == text.getvalue().encode("ascii"):  # ours, not another's
        path.with_name(path.name + ".pub").write_text(f"{key.get_name()} {key.get_base64()} gateway\n")
        log.info("created SFTP host key %s (%s)", path, key.fingerprint)


# --- the listener ---------------------------------------------------------------

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
        self._per_partner: dict[str, int] = defaultdict(int)  # logged-in connections

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
        transport = conn = None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            transport = paramiko.Transport(sock)
            transport.set_log_channel("gateway.sftp.ssh")
            transport.banner_timeout = min(10.0, self.limits.login_grace_seconds)
            transport.handshake_timeout = min(15.0, self.limits.login_grace_seconds)
            _harden(transport)
            for key in self._keys:
                transport.add_server_key(key)
            transport.set_subsystem_handler("sftp", SftpSubsystem, Jail)
            conn = Connection(self, ip, transport)
            with self._lock:
                self._conns[me] = transport
            if self._stopping.is_set():
                return
            transport.start_server(event=threading.Event(), server=conn)
            if not self._await_login(transport, conn, ip):
                return
            user = transport.get_username()
            if conn.method == "password":  # a key login says nothing of the passwords tried
                self.throttle.succeeded(ip, user)
            log.info("partner %s logged in from %s (%s)", user, ip, conn.method)
            conn.active()
            idle_limit = self.limits.idle_timeout_seconds
            while transport.is_active() and not self._stopping.is_set() and not conn.refused:
                transport.join(min(0.5, idle_limit / 4))
                if conn.idle_seconds() >= idle_limit:
                    log.info("partner %s from %s disconnected: no SFTP request for %.0f s (idle_timeout_seconds)",
                             user, ip, idle_limit)
                    return
            log.info("partner %s from %s disconnected", user, ip)
        except Exception as exc:  # a broken client must never take the server down
            log.warning("SFTP connection from %s failed: %s", ip, exc)
        finally:
            if transport is not None:
                transport.close()
            sock.close()
            with self._lock:
                self._conns.pop(me, None)
                _release(self._per_ip, ip)
                if conn is not None:
                    conn.ended = True
                    if conn.partner is not None:
                        _release(self._per_partner, conn.partner)

    def take_place(self, conn: Connection) -> bool:
        """One of its partner's `max_sessions_per_partner` places for a logged-in
        connection opening its first session, or False (logged): a partner's
        runaway client does not crowd out its other ones."""
        user, cap = conn.transport.get_username(), self.limits.max_sessions_per_partner
        with self._lock:
            if conn.ended:
                return False
            held = self._per_partner[user]
            if held < cap:
                self._per_partner[user] += 1
                conn.partner = user
                return True
        log.warning("SFTP login of partner %s from %s refused: %d of its connections already in session "
                    "(max_sessions_per_partner = %d)", user, conn.ip, held, cap)
        return False

    def _await_login(self, transport: paramiko.Transport, conn: Connection, ip: str) -> bool:
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


def _release(counts: dict[str, int], key: str) -> None:
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]


def _harden(transport: paramiko.Transport) -> None:
    opts = transport.get_security_options()
    opts.ciphers = tuple(c for c in CIPHERS if c in opts.ciphers)
    opts.kex = tuple(k for k in KEX if k in opts.kex)
    opts.digests = tuple(d for d in MACS if d in opts.digests)
    opts.compression = ("none",)

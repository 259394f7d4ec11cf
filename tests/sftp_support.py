"""Helpers shared by the SFTP tests: homes, keys, clients, and `gateway run`
as a service on a free port."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from conftest import home_with
from gateway.core import config

SFTP_BIN = shutil.which("sftp")
REPO = Path(__file__).resolve().parents[1]


def make_home(root: Path, sftp: dict | None = None, extra_toml: str = "", **overrides) -> config.Settings:
    """A fresh home with optional [sftp] settings and extra TOML."""
    values = {"enabled": True, "host": "127.0.0.1", "port": 0, **(sftp or {})}
    lines = ["[sftp]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]  # JSON scalars are TOML
    return home_with(root, "\n".join(lines) + "\n" + extra_toml, **overrides)


@dataclass(frozen=True)
class Key:
    pkey: paramiko.PKey
    path: Path  # private key file (0600), usable by OpenSSH and paramiko
    pub: str  # OpenSSH public key line


def _save(pkey: paramiko.PKey, path: Path) -> Key:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            pkey.write_private_key(fh)
    pub = f"{pkey.get_name()} {pkey.get_base64()} test"
    path.with_name(path.name + ".pub").write_text(pub + "\n")
    return Key(pkey, path, pub)


def rsa_key(folder: Path, name: str = "rsa") -> Key:
    return _save(paramiko.RSAKey.generate(2048), folder / name)


def ecdsa_key(folder: Path, name: str = "ecdsa") -> Key:
    return _save(paramiko.ECDSAKey.generate(bits=256), folder / name)


def ed25519_key(folder: Path, name: str = "ed25519") -> Key:
    """paramiko cannot generate Ed25519: write an OpenSSH key with cryptography."""
    path = folder / name
    data = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    pkey = paramiko.PKey.from_path(path)
    return _save(pkey, path)


def connect(address, user: str, key: Key | None = None, password: str | None = None,
            timeout: float = 20, source: str | None = None) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
    """Log in with paramiko; raises paramiko.AuthenticationException on refusal.
    `source`: the local address to connect from (127.0.0.2 is another client
    than 127.0.0.1 to a server on the loopback)."""
    t = paramiko.Transport(socket.create_connection(tuple(address), timeout=timeout, source_address=(source, 0))
                           if source else tuple(address))
    t.banner_timeout = timeout
    try:
        t.start_client(timeout=timeout)
        if key is not None:
            t.auth_publickey(user, key.pkey)
        else:
            t.auth_password(user, password)
        return t, paramiko.SFTPClient.from_transport(t)
    except BaseException:
        t.close()
        raise


def openssh_sftp(address, user: str, key: Key, batch: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run OpenSSH's sftp in batch mode against the server."""
    bfile = cwd / "batch.txt"
    bfile.write_text("\n".join(batch) + "\n")
    cmd = [SFTP_BIN, "-b", str(bfile), "-i", str(key.path), "-P", str(address[1]),
           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
           "-o", "LogLevel=ERROR", "-F", "/dev/null", f"{user}@{address[0]}"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


def wait_until(predicate, timeout: float = 10.0, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- `gateway run` as a service ---------------------------------------------------

def free_port() -> int:
    """A TCP port nobody listens on now, on the loopback address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Running:
    """A `gateway` command started by running_gateway; `out` and `returncode`
    are known once the block has ended."""

    proc: subprocess.Popen
    out: str = ""

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode


@contextmanager
def running_gateway(home, *args: str, env: dict | None = None) -> Iterator[Running]:  # noqa: ANN001
    """`gateway ARGS` (e.g. "run", "--sftp-port", "2300") on `home` (a path or
    Settings) for the block, then stopped by SIGTERM, as systemd does; its
    output (stdout and stderr) is kept in a file, so a chatty service never
    blocks on a full pipe."""
    e = {**os.environ, "GATEWAY_HOME": str(getattr(home, "home", home)), **(env or {})}
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.ops.cli", *args], cwd=REPO, env=e,
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        running = Running(proc)
        try:
            yield running
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.seek(0)
            running.out = log.read()

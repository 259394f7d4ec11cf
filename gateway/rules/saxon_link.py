"""The links from the gateway to the processes that run Saxon.

Saxon never loads in a gateway process (see rules/schematron.py). A rule
engine reaches a Saxon process by one of two links, both carrying the same
requests (rules/schematron_worker.py):

- `ChildLink`: a child of its own, over two pipes (`gateway validate`, a
  service with workers = 0, tests);
- `ServerLink`: the rule server the service starts for its workers
  (`RuleServer`), over a Unix socket in a private folder. Saxon's Java heap grows to about 190 MB
  whatever it runs, and compiling the CEN rules costs 0.6 s of CPU: one
  process for two workers halves both. Its requests are served one at a
  time; at 2.7 ms per 2-line invoice it keeps up with a few hundred a second.

A link that times out kills its Saxon process (a transform cannot be
interrupted); a server is restarted by the service within one of its turns.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from abc import ABC, abstractmethod
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

CONNECT_WAIT = 30.0  # s a worker waits for the service to (re)start its rule server
RESTART_SPACING = 5.0  # s between two starts of a rule server that dies at once


class Died(Exception):
    pass


class TimedOut(Exception):
    pass


class Unavailable(Exception):
    pass


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.rules.schematron_worker", *args]


def _child_env() -> dict[str, str]:
    # The child must import this very copy of the gateway package.
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


class _Link(ABC):
    """Requests out, replies in, with a deadline on each reply."""

    _out: Connection
    _in: Connection
    pid: int  # the Saxon process's

    def call(self, request: tuple[Any, ...], timeout: float) -> tuple[str, Any]:
        try:
            self._out.send(request)
        except OSError as exc:
            raise Died(self._why(exc)) from exc
        self._await_turn(request, timeout)
        reply = self._receive(timeout)
        if reply[0] != request[1]:
            raise Died(f"reply {reply[0]!r} does not answer request {request[1]!r}")
        return reply[1], reply[2]

    def _await_turn(self, request: tuple[Any, ...], timeout: float) -> None:
        """Before a request's own time starts: nothing to wait for in a child of one's own."""

    def _hello(self, start_timeout: float) -> None:
        try:
            hello = self._receive(start_timeout)
        except (Died, TimedOut):
            self.stop(kill=True)
            raise
        if hello[0] != "ready":
            self.stop(kill=False)
            raise Unavailable(hello[1])

    def _receive(self, timeout: float) -> tuple[Any, ...]:
        try:
            if not self._in.poll(timeout):
                raise TimedOut()
            return self._in.recv()
        except (EOFError, OSError) as exc:
            raise Died(self._why(exc)) from exc

    def _why(self, exc: BaseException) -> str:
        return f"pipe closed ({type(exc).__name__})"

    @abstractmethod
    def stop(self, *, kill: bool) -> None:
        """Close the link; `kill` also ends the Saxon process when it overran."""


class ChildLink(_Link):
    """A Saxon child of one engine, over two pipes (requests in, replies out)."""

    def __init__(self, start_timeout: float) -> None:
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                _command("--serve", str(req_r), str(resp_w)),
                pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                env=_child_env(), start_new_session=True)  # Ctrl-C reaches us, not the child
        except OSError:
            os.close(req_w)
            os.close(resp_r)
            raise
        finally:
            os.close(req_r)
            os.close(resp_w)
        self.pid = self.proc.pid
        self._out = Connection(req_w, readable=False)
        self._in = Connection(resp_r, writable=False)
        self._finalizer = weakref.finalize(self, _reap, self.proc, self._out, self._in, os.getpid())
        self._hello(start_timeout)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, *, kill: bool) -> None:
        if kill and self.alive:
            self.proc.kill()
        self._finalizer()

    def _why(self, exc: BaseException) -> str:
        try:
            code = self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return super()._why(exc)
        return f"worker killed by signal {-code}" if code < 0 else f"worker exited with status {code}"


def _reap(proc: subprocess.Popen, out: Connection, inp: Connection, owner: int) -> None:
    # Closing our end lets the child see EOF and leave; a forked copy of the
    # gateway must not stop its parent's child.
    out.close()
    if os.getpid() == owner:
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    inp.close()


class ServerLink(_Link):
    """A connection to the service's rule server, shared with the other workers."""

    def __init__(self, name: str, start_timeout: float, *, wait: float | None = None) -> None:
        sock = _connect(name, CONNECT_WAIT if wait is None else wait)
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                             struct.calcsize("3i")))
        if uid != os.getuid():  # the socket's folder is ours alone: never expected
            sock.close()
            raise Unavailable("the rule server's socket is held by another user")
        self.pid = pid
        self._pidfd: int | None = None
        try:  # a handle on that very process: a later kill never reaches a new one with its pid
            self._pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self._pidfd = None
        self._in = self._out = Connection(sock.detach())
        self._broken = self._overran = False
        self._start_timeout = start_timeout
        self._hello(start_timeout)

    @property
    def alive(self) -> bool:
        return not self._broken

    def _receive(self, timeout: float) -> tuple[Any, ...]:
        try:
            return super()._receive(timeout)
        except TimedOut:
            self._broken = self._overran = True
            raise
        except Died:
            self._broken = True
            raise

    def _why(self, exc: BaseException) -> str:
        return f"the rule server closed the connection ({type(exc).__name__})"

    def _await_turn(self, request: tuple[Any, ...], timeout: float) -> None:
        # The server says when it starts a document: time spent behind the
        # other workers' documents is not this one's (the worker whose document
        # overruns kills the server, and this one is retried on its successor).
        if request[0] != "check":
            return
        started = self._receive(max(self._start_timeout, 4 * timeout))
        if started[:2] != (request[1], "started"):
            self._broken = True
            raise Died(f"the rule server said {started[:2]!r} before starting request {request[1]!r}")

    def stop(self, *, kill: bool) -> None:
        # Killed only when it overran: it is busy with our document, and the
        # other workers' documents in flight get their retry on its successor.
        if kill and self._overran:  # alive, and busy with our document: never a pid it no longer has
            try:
                if self._pidfd is not None:
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                else:  # no pidfd (Linux before 5.3): the server is alive, busy with our document
                    os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass  # gone already
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self._in.close()


def _connect(name: str, wait: float) -> socket.socket:
    deadline = time.monotonic() + wait
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(name)
            return sock
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            sock.close()
            if time.monotonic() >= deadline:
                raise Unavailable(f"the rule server is not running (waited {wait:g} s)") from exc
            time.sleep(0.05)
        except OSError:
            sock.close()
            raise


class RuleServer:
    """The service's one Saxon process for all its workers: started at the
    service's start (it compiles the CEN rules meanwhile), restarted by
    `ensure()` when it died or was killed, stopped with the service."""

    def __init__(self, warm: tuple[Path, ...] = ()) -> None:
        # A socket in a folder of our own (0700): no other user can connect to
        # it or take its name; the server also takes this user's processes only.
        self.dir = tempfile.mkdtemp(prefix="gateway-rules-")
        self.name = os.path.join(self.dir, "rules.sock")
        self.warm = warm
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._started = 0.0

    def start(self) -> None:
        # its parent named: a service killed while the server starts is not taken for one alive
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        args = ["--listen", self.name, "--parent", str(os.getpid())]
        for p in self.warm:
            args += ["--warm", str(p)]
        self.proc = subprocess.Popen(_command(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     env=_child_env(), start_new_session=True)
        self._started = time.monotonic()

    def ensure(self) -> bool:
        """Start it again if it is gone; True when it did. One that died within
        RESTART_SPACING of its start (a broken set-up, not a document) is
        started again only once that long has passed: no restart loop."""
        if self.proc is not None and self.proc.poll() is None:
            return False
        if self.proc is not None and time.monotonic() - self._started < RESTART_SPACING:
            return False
        self.restarts += self.proc is not None
        self.start()
        return True

    def stop(self) -> None:
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

"""This host and its processes, as the leases and temporary files name them.

Several hosts may share a database, an archive and an outbox (on a shared
file system): what one host leaves half done (a lease, a claim manifest, a
temporary file) is finished by that host at once when its process is gone,
and by any other host only once it is old enough that no live host can
still be working on it.
"""
from __future__ import annotations

import os
import re
import socket

_MACHINE = socket.gethostname()


def this_host(configured: str = "") -> str:
    """`[intake] host_name`, else the machine's name (cut to 48 characters,
    so `host:pid:role` fits a lease holder's column)."""
    return configured or _MACHINE[:48]


def host_slug(configured: str = "") -> str:
    """This host in a file name: only characters safe in any file system."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", this_host(configured))[:48]


def alive(pid: str | int) -> bool:
    """Whether a process of this host still runs. A zombie is dead: an
    orphaned worker may never be reaped by an init that does not wait for orphans."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (ValueError, FileNotFoundError):
        return False
    except OSError:  # no /proc (not Linux): ask the kernel
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

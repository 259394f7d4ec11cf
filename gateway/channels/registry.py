"""The channels `gateway run` starts beside the folders, in one declared list.

Each entry makes a channel from the settings, or None when the home does not
use it. The SFTP modules are imported only when one starts, so workers and
`gateway validate` never load paramiko (12 MB).
"""
from __future__ import annotations

from collections.abc import Callable

from gateway.core.config import Settings


def _sftp_server(s: Settings):  # noqa: ANN202
    if not s.sftp_enabled:
        return None
    from gateway.channels.sftp.server import SftpServer

    return SftpServer(s)


def _sftp_poller(s: Settings):  # noqa: ANN202
    if not s.raw.get("remote"):
        return None
    from gateway.channels.poller import PollerService

    return PollerService(s)


CHANNELS: tuple[Callable[[Settings], object], ...] = (_sftp_server, _sftp_poller)

"""The channels `gateway run` starts beside the folders, in one declared list.

Each entry of `CHANNELS` makes a `Channel` from the settings, or None when
the home does not use it; a new channel is one module and one line here.
The SFTP modules are imported only when one starts, so workers and
`gateway validate` never load paramiko (12 MB).
"""
from __future__ import annotations

from collections.abc import Callable

from gateway.channels.base import Channel
from gateway.core.config import Settings


def _sftp_server(s: Settings) -> Channel | None:
    if not s.sftp_enabled:
        return None
    from gateway.channels.sftp.server import SftpServer  # paramiko: only when the server runs

    return SftpServer(s)


def _sftp_poller(s: Settings) -> Channel | None:
    if not s.raw.get("remote"):
        return None
    from gateway.channels.poller import PollerService  # paramiko: only when a remote is polled

    return PollerService(s)


def _flow_api(s: Settings) -> Channel | None:
    if not s.section("api").get("port"):
        return None
    from gateway.channels.flow_api.channel import FlowApiChannel  # FastAPI, uvicorn: only when the API runs

    return FlowApiChannel(s)


CHANNELS: tuple[Callable[[Settings], Channel | None], ...] = (
    _sftp_server,
    _sftp_poller,
    _flow_api,
)


def channels_for(settings: Settings) -> list[Channel]:
    """The channels this home uses, made (not started) in the declared order."""
    return [ch for make in CHANNELS if (ch := make(settings)) is not None]

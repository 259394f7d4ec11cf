"""The Flow Service as a channel: uvicorn in a thread on its own port, and the webhook dispatcher.

`gateway run --api-port PORT`, or `[api] port` (with `host`, 127.0.0.1 by
default; TLS is a reverse proxy's job, as for the web pages).
"""
from __future__ import annotations

import logging
import threading

from gateway.core.config import Settings

log = logging.getLogger("gateway.api")


class FlowApiChannel:
    name = "flow-api"

    def __init__(self, settings: Settings):
        sec = settings.section("api")
        self.settings = settings
        self.host = str(sec.get("host", "127.0.0.1"))
        self.port = int(sec["port"])
        self._server = None
        self._thread: threading.Thread | None = None
        self._dispatcher = None

    def start(self) -> None:
        import uvicorn  # noqa: PLC0415 - only when the API is served

        from gateway.channels.flow_api.app import create_app
        from gateway.channels.flow_api.dispatcher import Dispatcher
        from gateway.channels.flow_api.intake import recover

        finished = recover(self.settings)
        if finished:
            log.warning("flow api: %d interrupted deposit(s) finished", finished)
        config = uvicorn.Config(create_app(self.settings), host=self.host, port=self.port, log_level="warning",
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # the service owns the signals
        self._thread = threading.Thread(target=self._server.run, name="flow-api", daemon=True)
        self._thread.start()
        self._dispatcher = Dispatcher(self.settings)
        self._dispatcher.start()
        log.info("flow api listening on %s:%d", self.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._dispatcher is not None:
            self._dispatcher.stop()

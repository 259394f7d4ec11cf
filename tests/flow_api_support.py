"""Driving the Flow Service API in tests: a home with partners and clients, tokens, deposits."""
from __future__ import annotations

import json

import httpx
from fastapi.testclient import TestClient

from gateway.channels.flow_api.app import create_app
from gateway.core import config
from gateway.store import api_clients, partners

SERVICE = "/flow-service/v1"


def api_home(root, extra: str = ""):  # noqa: ANN001, ANN201
    """A home for API tests: fast intake, in-process work, no SFTP, fast webhook retries."""
    from conftest import TEST_TOML, home_with

    return home_with(root, TEST_TOML + "[api]\nwebhook_retry_seconds = 0.05\nwebhook_settle_seconds = 0\n" + extra)


def client_of(settings: config.Settings, partner: str) -> tuple[str, str]:
    """A new API client (id, secret) of `partner`, the partner created if needed."""
    if partner not in {p.name for p in partners.list_partners(settings)}:
        partners.add_partner(settings, partner, [])
    client, secret = api_clients.add_client(settings, partner)
    return client.id, secret


def token(http: httpx.Client | TestClient, client_id: str, secret: str) -> str:
    r = http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                       "client_secret": secret})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def bearer(tok: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}", **more}


def deposit(http, tok: str, name: str, data: bytes, syntax: str = "UBL", **info) -> httpx.Response:  # noqa: ANN001
    return http.post(f"{SERVICE}/flows", headers=bearer(tok),
                     files={"flowInfo": (None, json.dumps({"name": name, "flowSyntax": syntax, **info}),
                                         "application/json"),
                            "file": (name, data, "application/xml")})


def api_client(settings: config.Settings) -> TestClient:
    return TestClient(create_app(settings), client=("203.0.113.7", 50000))


class Receiver:
    """A small local HTTP server recording the webhook calls it gets (answers 500 to the first `fail` ones)."""

    def __init__(self, fail: int = 0):
        import http.server
        import threading

        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.refused = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802, ANN202
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.refused < fail:
                    outer.refused += 1
                    self.send_response(500)
                else:
                    outer.calls.append((dict(self.headers), body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # noqa: ANN002, ANN202
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict]:
        return [json.loads(b) for _, b in self.calls]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LiveApi:
    """The API channel of `settings` served on its configured port (uvicorn in a
    thread, as `gateway run --api-port` does), until the block ends."""

    def __init__(self, settings: config.Settings):
        from gateway.channels.flow_api.channel import FlowApiChannel
        from sftp_support import wait_until

        self.settings = config.load(settings.home)
        self.base = f"http://127.0.0.1:{self.settings.section('api')['port']}"
        self.channel = FlowApiChannel(self.settings)
        self._wait = wait_until

    def up(self) -> bool:
        try:
            return httpx.get(f"{self.base}/flow-service/v1/healthcheck", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def __enter__(self) -> "LiveApi":
        self.channel.start()
        assert self._wait(self.up, timeout=20)
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.channel.stop()

"""Calling the webhooks: a thread of the channel.

Every turn it reads the event log past its mark, finds the flows whose state
or whose pieces' statuses moved, and records one call per matching webhook of
their partner (with the flow's `Flow` object as it stands); then it makes the
calls that are due. A failed call is tried again after a delay that doubles
(`[api] webhook_retry_seconds`, 5 s, up to `webhook_retry_max_seconds`, 1 h),
until `webhook_attempts` (8) were made. Each call is signed as the OpenAPI
says: Afnor-Signature = base64(HMAC-SHA256(signing key, SHA-256(payload "@"
epoch seconds))), with Afnor-Signature-Timestamp.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import timedelta

import httpx

from gateway.channels.flow_api import views
from gateway.core.config import Settings, positive_number
from gateway.store import api_clients, api_hooks
from gateway.store.api_hooks import Call, Webhook
from gateway.store.repository import Store

log = logging.getLogger("gateway.api.webhooks")


def signature(key_b64: str, payload: bytes, timestamp: int) -> str:
    fingerprint = hashlib.sha256(payload + b"@" + str(timestamp).encode("ascii")).digest()
    return base64.b64encode(hmac.new(base64.b64decode(key_b64), fingerprint, hashlib.sha256).digest()).decode()


def wanted(hook: Webhook, body: dict) -> bool:
    return ((not hook.flow_types or body["flowType"] in hook.flow_types)
            and (hook.flow_direction is None or body["flowDirection"] == hook.flow_direction)
            and (hook.ack_status is None or body["acknowledgement"]["status"] == hook.ack_status))


class Dispatcher:
    def __init__(self, settings: Settings):
        sec = settings.section("api")
        self.settings = settings
        self.interval = positive_number("api", sec, "webhook_poll_seconds", 1.0)
        self.retry = positive_number("api", sec, "webhook_retry_seconds", 5.0)
        self.retry_max = positive_number("api", sec, "webhook_retry_max_seconds", 3600.0)
        self.attempts = positive_number("api", sec, "webhook_attempts", 8, whole=True)
        # 0 is a valid settle time (tests); a negative one is not
        self.settle = timedelta(seconds=max(0.0, float(sec.get("webhook_settle_seconds", 1.0))))
        self.timeout = positive_number("api", sec, "webhook_timeout_seconds", 10.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flow-api-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    self.turn(client)
                except Exception:  # noqa: BLE001 - the dispatcher outlives a bad turn (store away, ...)
                    log.exception("webhook dispatcher: turn failed")
                self._stop.wait(self.interval)

    def turn(self, client: httpx.Client) -> int:
        """Record the calls of what changed, make the calls that are due; how many were made."""
        self.record_changes()
        made = 0
        for call in api_hooks.due_calls(self.settings):
            if self._stop.is_set():
                break
            self.deliver(client, call)
            made += 1
        return made

    def record_changes(self) -> int:
        api_clients.link_flows(self.settings)
        mark, new_mark, flow_ids = api_hooks.changed_flows(self.settings, settle=self.settle)
        if new_mark == mark:
            return 0
        flows = api_hooks.flows_by_id(self.settings, flow_ids)
        hooks: dict[str, list[Webhook]] = {}
        for h in api_hooks.webhooks(self.settings):
            hooks.setdefault(h.partner, []).append(h)
        deposits = api_clients.deposits_of_flows(self.settings, flow_ids)
        # the pieces of the flows someone is told of only (a partner with hooks), in one read
        pieces = Store(self.settings).pieces_of(
            fid for fid in flow_ids if (f := flows.get(fid)) is not None and f.partner in hooks) if hooks else {}
        calls = []
        for fid in flow_ids:
            flow = flows.get(fid)
            if flow is None or flow.partner not in hooks:
                continue
            partner = flow.partner
            body = views.flow_view(self.settings, flow, deposits.get(fid), pieces.get(fid, [])).body
            payload = json.dumps(body, separators=(",", ":"))
            calls += [(h.id, body["flowId"], payload) for h in hooks[partner] if wanted(h, body)]
        api_hooks.enqueue(self.settings, (mark, new_mark), calls)
        return len(calls)

    def deliver(self, client: httpx.Client, call: Call) -> None:
        payload = call.payload.encode("utf-8")
        now = int(time.time())
        error: str | None = None
        try:
            r = client.post(call.callback_url, content=payload, headers={
                "Content-Type": "application/json", "Afnor-Signature": signature(call.signing_key, payload, now),
                "Afnor-Signature-Timestamp": str(now)})
            if not 200 <= r.status_code < 300:
                error = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        attempt = call.attempts + 1
        retry = None if attempt >= self.attempts else min(self.retry * 2 ** (attempt - 1), self.retry_max)
        api_hooks.call_done(self.settings, call.id, error=error, retry_in=retry)
        if error:
            log.warning("webhook %s, flow %s: attempt %d failed (%s)%s", call.webhook_id, call.flow_id, attempt,
                        error, "" if retry is not None else "; given up")

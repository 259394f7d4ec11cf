"""Webhook management (create, list, delete; get and update as extensions) for a partner."""
from __future__ import annotations

import base64
import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from gateway.channels.flow_api import views
from gateway.channels.flow_api.auth import Caller
from gateway.channels.flow_api.errors import bad_request, not_found
from gateway.core.clock import utcnow
from gateway.core.config import Settings
from gateway.store import api_hooks
from gateway.store.api_hooks import Webhook

MAX_PER_PARTNER = 20


def _params(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request("Invalid request format", "a WebhookParams object is required")
    url = raw.get("callbackUrl")
    parts = urlsplit(url) if isinstance(url, str) and len(url) <= 2048 else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("Invalid callbackUrl", "callbackUrl: an http or https URL")
    types = raw.get("flowTypes") or []
    if not isinstance(types, list) or not all(t in views.FLOW_TYPES for t in types):
        raise bad_request("Invalid flowTypes", "flowTypes: a list of FlowType values")
    direction, ack = raw.get("flowDirection"), raw.get("ackStatus")
    if direction is not None and direction not in ("In", "Out"):
        raise bad_request("Invalid flowDirection", "flowDirection: In or Out")
    if ack is not None and ack not in ("Pending", "Ok", "Error"):
        raise bad_request("Invalid ackStatus", "ackStatus: Pending, Ok or Error")
    return {"callback_url": url, "flow_types": tuple(dict.fromkeys(types)), "flow_direction": direction,
            "ack_status": ack}


def _body(h: Webhook) -> dict[str, Any]:
    out: dict[str, Any] = {"webhookId": h.id, "createdAt": views._iso(h.created_at), "callbackUrl": h.callback_url}
    if h.flow_types:
        out["flowTypes"] = list(h.flow_types)
    if h.flow_direction:
        out["flowDirection"] = h.flow_direction
    if h.ack_status:
        out["ackStatus"] = h.ack_status
    return out


def create(settings: Settings, who: Caller, raw: Any) -> dict[str, Any]:
    params = _params(raw)
    if len(api_hooks.webhooks(settings, who.partner)) >= MAX_PER_PARTNER:
        raise bad_request("Too many webhooks", f"at most {MAX_PER_PARTNER} per partner: delete one first")
    now = utcnow()
    key = base64.b64encode(secrets.token_bytes(32)).decode("ascii")  # 256 bits from a secure generator
    hook = api_hooks.save_webhook(settings, Webhook(str(uuid.uuid4()), who.partner, signing_key=key,
                                                    created_at=now, updated_at=now, **params))
    return {"webhookId": hook.id, "signingKey": key, "createdAt": views._iso(now)}


def listing(settings: Settings, who: Caller) -> dict[str, Any]:
    hooks = api_hooks.webhooks(settings, who.partner)
    # "webhookIds" too: the published schema requires it, though it defines only "webhooks" (see the NOTICE)
    return {"count": len(hooks), "webhooks": [_body(h) for h in hooks], "webhookIds": [h.id for h in hooks]}


def one(settings: Settings, who: Caller, hook_id: str) -> dict[str, Any]:
    hook = api_hooks.webhook(settings, who.partner, hook_id[:64])
    if hook is None:
        raise not_found("No such webhook")
    return _body(hook)


def update(settings: Settings, who: Caller, hook_id: str, raw: Any) -> dict[str, Any]:
    hook = api_hooks.webhook(settings, who.partner, hook_id[:64])
    if hook is None:
        raise not_found("No such webhook")
    params = _params(raw)
    saved = api_hooks.save_webhook(settings, Webhook(hook.id, hook.partner, signing_key=hook.signing_key,
                                                     created_at=hook.created_at, updated_at=utcnow(), **params))
    return _body(saved)


def delete(settings: Settings, who: Caller, hook_id: str) -> None:
    if not api_hooks.delete_webhook(settings, who.partner, hook_id[:64]):
        raise not_found("No such webhook")

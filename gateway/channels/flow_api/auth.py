"""OAuth2 client credentials: short-lived HS256 tokens for partners' API clients.

The signing key lives in the home's `keys/flow-api.key` (created 0600 on first
use, kept). A token names its client; every request checks the client is
still active in the store, so a revoked client's tokens stop at once. Wrong
credentials are counted like the web pages' logins (core.throttle, `[api]
login_*`): past the limits the endpoint answers 429 without running scrypt.
"""
from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

from gateway.channels.flow_api.errors import ApiError, unauthorized
from gateway.core.config import Settings, positive_number
from gateway.core.files import create_once
from gateway.core.throttle import LoginRules, LoginThrottle
from gateway.store import api_clients

ISSUER = "einvoice-gateway"
AUDIENCE = "flow-service"
DEFAULT_TOKEN_SECONDS = 900


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: a client of a partner."""

    client_id: str
    partner: str


def signing_key(settings: Settings) -> bytes:
    """The key tokens are signed with, made on first use (0600, never replaced)."""
    path: Path = settings.keys / "flow-api.key"
    key = bytes.fromhex(create_once(path, secrets.token_bytes(32).hex().encode("ascii")).decode("ascii").strip())
    if len(key) < 32:
        raise ValueError(f"{path}: the API's signing key must be at least 32 bytes (64 hex digits); remove it to make a new one")
    return key


class Tokens:
    """Issues and checks tokens for one home."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.key = signing_key(settings)
        self.lifetime = positive_number("api", settings.section("api"), "token_seconds", DEFAULT_TOKEN_SECONDS,
                                        whole=True)
        self.throttle = LoginThrottle(LoginRules.from_settings(settings, "api"))
        self._lock = threading.Lock()  # the throttle is plain bookkeeping, not thread-safe

    def issue(self, address: str, client_id: str, secret: str) -> dict:
        with self._lock:
            wait = self.throttle.admit(address, client_id or None)
        if wait > 0:
            raise ApiError(429, "TOO_MANY_REQUESTS", "Too many failed attempts: wait before trying again",
                           headers={"Retry-After": str(max(1, round(wait)))})
        client = api_clients.check_client(self.settings, client_id, secret) if client_id and secret else None
        with self._lock:
            if client is None:
                self.throttle.failed(address, client_id or None)
            else:
                self.throttle.passed(address, client_id)
        if client is None:
            err = unauthorized("INVALID_CLIENT", "Unknown client, wrong secret or revoked client")
            raise err
        now = int(time.time())
        token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": client.id, "partner": client.partner,
                            "iat": now, "exp": now + self.lifetime, "jti": uuid.uuid4().hex},
                           self.key, algorithm="HS256")
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}

    def caller(self, authorization: str | None) -> Caller:
        """The caller a `Bearer` header names; ApiError 401 otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("MISSING_TOKEN", "A Bearer token is required (POST /auth/token)")
        try:
            claims = jwt.decode(token.strip(), self.key, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["exp", "sub", "partner"]})
        except jwt.ExpiredSignatureError:
            raise unauthorized("EXPIRED_TOKEN", "The token has expired") from None
        except jwt.InvalidTokenError:
            raise unauthorized("INVALID_TOKEN", "The token is not valid") from None
        client = api_clients.active_client(self.settings, str(claims["sub"]))
        if client is None or client.partner != claims["partner"]:
            raise unauthorized("INVALID_TOKEN", "The token's client is revoked or unknown")
        return Caller(client.id, client.partner)

"""The OpenAPI's error object (`Error`: errorCode, errorMessage, details), for every refusal.

Handlers raise `ApiError`; the app turns it, FastAPI's own validation errors
and any unexpected exception into that object, never a raw exception text.
"""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"errorCode": code, "errorMessage": message}
    if details:
        body["details"] = details
    return body


def bad_request(message: str, details: str | None = None) -> ApiError:
    return ApiError(400, "INVALID_REQUEST", message, details)


def unprocessable(message: str, details: str | None = None) -> ApiError:
    return ApiError(422, "UNPROCESSABLE_ENTITY", message, details)


def not_found(message: str = "Requested resource is Not Found") -> ApiError:
    return ApiError(404, "MISSING_RESOURCE", message)


def unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    return ApiError(403, "FORBIDDEN_ACCESS", message)


def too_large(limit: int) -> ApiError:
    return ApiError(413, "FILE_SIZE_EXCEEDED", f"Provided file is too big (at most {limit} bytes)")

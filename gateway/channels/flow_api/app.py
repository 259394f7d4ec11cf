"""The Flow Service app: `/auth/token` and the OpenAPI's paths under `/flow-service`.

Every answer is the OpenAPI's: bodies and status codes of XP Z12-013 v1.3.0
(schemas/france-rfe-api/), errors as its `Error` object, never a raw
exception. A partner sees only its own flows and webhooks; another's are
"not found". FastAPI is imported here only, when the channel starts.
"""
from __future__ import annotations

import logging
import uuid
from typing import Any, Optional

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.channels.flow_api import flows, webhooks
from gateway.channels.flow_api.auth import Caller, Tokens
from gateway.channels.flow_api.errors import ApiError, bad_request, error_body, forbidden
from gateway.channels.flow_api.limits import BodyLimit
from gateway.channels.flow_api.rights import may_act_for
from gateway.core.config import MB, Settings
from gateway.store.repository import Store

log = logging.getLogger("gateway.api")
SERVICE = "/flow-service"
_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def create_app(settings: Settings, tokens: Tokens | None = None) -> FastAPI:
    tokens = tokens or Tokens(settings)
    app = FastAPI(title="AFNOR Flow Service (einvoice-gateway)", version="1.3.0", docs_url=None, redoc_url=None,
                  openapi_url=None)  # the published OpenAPI file is the contract, not one generated here
    app.add_middleware(BodyLimit, limit=settings.max_file_bytes + MB)
    _errors(app)

    def caller(authorization: Optional[str] = Header(None)) -> Caller:
        return tokens.caller(authorization)

    def acting(who: Caller = Depends(caller), organization_id: Optional[str] = Header(None)) -> Caller:
        """The caller, once its `Organization-Id` (if any) is one it may act for."""
        if organization_id is not None and not may_act_for(settings, who.partner, organization_id.strip()):
            raise forbidden(f"Not allowed to act for organization {organization_id[:64]!r}")
        return who

    @app.post("/auth/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form(max_files=0, max_fields=8, max_part_size=4096)
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, "UNSUPPORTED_GRANT_TYPE", "grant_type must be client_credentials")
        address = request.client.host if request.client else "?"
        answer = await run_in_threadpool(tokens.issue, address, str(form.get("client_id") or ""),
                                         str(form.get("client_secret") or ""))
        return JSONResponse(answer, headers={**_HEADERS, "Pragma": "no-cache"})

    api = APIRouter(prefix=SERVICE + "/v1", dependencies=[Depends(_request_id)])

    @api.get("/healthcheck")
    def health() -> Response:
        try:
            Store(settings).queued()
        except Exception:  # noqa: BLE001 - any store failure is "unavailable", said without details
            log.exception("healthcheck: the store does not answer")
            return JSONResponse(error_body("RESOURCE_ERROR", "The store does not answer"), status_code=503)
        return Response(status_code=200)

    @api.post("/flows", status_code=202)
    async def create_flow(request: Request, who: Caller = Depends(acting),
                          organization_id: Optional[str] = Header(None)) -> JSONResponse:
        body = await flows.create(settings, who, request, organization_id)
        return JSONResponse(body, status_code=202, headers=_HEADERS)

    @api.post("/flows/search")
    async def search(request: Request, who: Caller = Depends(acting)) -> JSONResponse:
        params = await _json(request)
        return JSONResponse(await run_in_threadpool(flows.search, settings, who, params), headers=_HEADERS)

    @api.get("/flows/{flow_id}")
    def get_flow(flow_id: str, docType: str = "Metadata", docIndex: int = 1,  # noqa: N803 - the OpenAPI's names
                 who: Caller = Depends(acting)) -> Response:
        found = flows.get(settings, who, flow_id, docType, docIndex)
        if isinstance(found, dict):
            return JSONResponse(found, headers=_HEADERS)
        path, name, media = found
        return FileResponse(path, media_type=media, headers={
            **_HEADERS, "Content-Disposition": f'attachment;filename="{flows.header_name(name)}"'})

    @api.get("/webhooks")
    def list_webhooks(who: Caller = Depends(acting)) -> JSONResponse:
        return JSONResponse(webhooks.listing(settings, who), headers=_HEADERS)

    @api.post("/webhooks", status_code=201)
    async def create_webhook(request: Request, who: Caller = Depends(acting)) -> JSONResponse:
        params = await _json(request)
        return JSONResponse(await run_in_threadpool(webhooks.create, settings, who, params), status_code=201,
                            headers=_HEADERS)

    @api.get("/webhooks/{webhook_uid}")
    def get_webhook(webhook_uid: str, who: Caller = Depends(acting)) -> JSONResponse:
        return JSONResponse(webhooks.one(settings, who, webhook_uid), headers=_HEADERS)

    @api.put("/webhooks/{webhook_uid}")
    async def update_webhook(webhook_uid: str, request: Request, who: Caller = Depends(acting)) -> JSONResponse:
        params = await _json(request)
        return JSONResponse(await run_in_threadpool(webhooks.update, settings, who, webhook_uid, params),
                            headers=_HEADERS)

    @api.delete("/webhooks/{webhook_uid}", status_code=204)
    def delete_webhook(webhook_uid: str, who: Caller = Depends(acting)) -> Response:
        webhooks.delete(settings, who, webhook_uid)
        return Response(status_code=204)

    app.include_router(api)
    app.state.routes = list(api.routes)  # for the Allow header of a 405
    return app


def _request_id(request: Request, request_id: Optional[str] = Header(None)) -> None:
    """`Request-Id`, when sent, is a UUID (the OpenAPI's format): it correlates logs. The healthcheck, whose
    only answers are 200, 500 and 503, ignores it."""
    if request_id is not None and not request.url.path.endswith("/healthcheck"):
        try:
            uuid.UUID(request_id)
        except ValueError:
            raise bad_request("Invalid Request-Id", "Request-Id: a UUID") from None


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise bad_request("The body is not JSON") from None


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers={**_HEADERS, **exc.headers})

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(".".join(str(x) for x in e.get("loc", ())) + ": " + str(e.get("msg", ""))
                          for e in exc.errors()[:5])
        return JSONResponse(error_body("INVALID_REQUEST", "Invalid request format", where[:1000]),
                            status_code=400, headers=_HEADERS)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "MISSING_RESOURCE", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "INVALID_REQUEST")
        headers = {**_HEADERS, **(exc.headers or {})}
        if exc.status_code == 405:  # every method of the path, not only those of the first route matched
            found = [r for r in request.app.state.routes if r.path_regex.match(request.url.path)]
            fixed = [r for r in found if not r.param_convertors]  # /flows/search before /flows/{flowId}
            methods = {m for r in fixed or found for m in getattr(r, "methods", ())}
            headers["Allow"] = ", ".join(sorted(methods))
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("flow api: unexpected error", exc_info=exc)
        return JSONResponse(error_body("INTERNAL_ERROR", "Internal error"), status_code=500, headers=_HEADERS)

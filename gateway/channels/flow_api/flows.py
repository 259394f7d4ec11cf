"""The flow operations: deposit (createFlow), search (searchFlows), get (getFlow)."""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from gateway.channels.flow_api import views
from gateway.channels.flow_api.auth import Caller
from gateway.channels.flow_api.errors import bad_request, not_found, unprocessable
from gateway.channels.flow_api.intake import FlowInfo, check_name, deposit_flow
from gateway.core.clock import as_utc
from gateway.core.config import Settings
from gateway.store import api_clients
from gateway.store.repository import Store

SYNTAXES = ("CII", "UBL", "Factur-X", "CDAR")  # FlowSyntax values the gateway accepts (not FRR e-reporting)
PROFILES = ("Basic", "CIUS", "Extended-CTC-FR", "Undefined")
RULES = ("B2B", "B2BInt", "B2C", "B2G", "B2GInt", "OutOfScope", "B2GOutOfScope", "ArchiveOnly", "NotApplicable",
         "Undefined")
SHA256_RE = re.compile(r"^[a-f0-9]{64}\Z")
DEFAULT_LIMIT, MAX_LIMIT = 25, 100


def _flow_info(raw: Any) -> FlowInfo:
    if isinstance(raw, UploadFile):
        raw = raw.file.read(65536)
    try:
        info = json.loads(raw) if raw is not None else None
    except (ValueError, UnicodeError):
        info = None
    if not isinstance(info, dict):
        raise bad_request("flowInfo must be a JSON object", "flowInfo: {\"name\": ..., \"flowSyntax\": ...}")
    name, syntax = info.get("name"), info.get("flowSyntax")
    if not isinstance(name, str) or not isinstance(syntax, str):
        raise bad_request("Invalid request format", "flowInfo.name and flowInfo.flowSyntax are required strings")
    if syntax not in SYNTAXES:
        raise unprocessable(f"flowSyntax {syntax[:20]!r} is not accepted", f"accepted: {', '.join(SYNTAXES)}")
    optional = {}
    for key, allowed in (("flowProfile", PROFILES), ("processingRule", RULES)):
        value = info.get(key)
        if value is not None and value not in allowed:
            raise bad_request(f"Invalid {key}", f"flowInfo.{key}: one of {', '.join(allowed)}")
        optional[key] = value
    tracking, sha = info.get("trackingId"), info.get("sha256")
    if tracking is not None and (not isinstance(tracking, str) or len(tracking) > 64):
        raise bad_request("Invalid trackingId", "flowInfo.trackingId: a string of at most 64 characters")
    if sha is not None and (not isinstance(sha, str) or not SHA256_RE.match(sha)):
        raise bad_request("Invalid sha256", "flowInfo.sha256: 64 lower-case hexadecimal digits")
    return FlowInfo(check_name(name), syntax, optional["flowProfile"], optional["processingRule"], tracking, sha)


async def create(settings: Settings, who: Caller, request: Request, organization_id: str | None) -> dict[str, Any]:
    try:
        form = await request.form(max_files=1, max_fields=4, max_part_size=65536)
    except ValueError:  # not multipart, or malformed
        raise bad_request("Expected multipart/form-data with the parts flowInfo and file") from None
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise bad_request("Invalid request format", "file: the flow's file is required (a file part)")
    info = _flow_info(form.get("flowInfo"))
    dep = await run_in_threadpool(deposit_flow, settings, who.partner, who.client_id, info, file.file,
                                  organization_id.strip() if organization_id else None)
    out = {"flowId": dep.id, "submittedAt": views._iso(dep.created_at), "name": dep.name,
           "flowSyntax": dep.flow_syntax, "sha256": dep.sha256}
    for key, value in (("trackingId", dep.tracking_id), ("flowProfile", dep.flow_profile),
                       ("processingRule", dep.processing_rule)):
        if value:
            out[key] = value
    return out


def _where(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request("Invalid request format", "where: an object of criteria is required")
    where: dict[str, Any] = {}
    for key in ("updatedAfter", "updatedBefore"):
        if raw.get(key) is not None:
            try:
                where[key] = as_utc(datetime.fromisoformat(str(raw[key])))
            except ValueError:
                raise bad_request(f"Invalid {key}", f"where.{key}: an ISO 8601 date-time") from None
    lists = {"processingRule": RULES, "flowType": views.FLOW_TYPES, "flowDirection": ("In", "Out")}
    for key, allowed in lists.items():
        value = raw.get(key)
        if value is not None:
            if not isinstance(value, list) or not all(v in allowed for v in value):
                raise bad_request(f"Invalid {key}", f"where.{key}: a list of {', '.join(allowed)}")
            where[key] = value
    if raw.get("ackStatus") is not None:
        if raw["ackStatus"] not in ("Pending", "Ok", "Error"):
            raise bad_request("Invalid ackStatus", "where.ackStatus: Pending, Ok or Error")
        where["ackStatus"] = raw["ackStatus"]
    if raw.get("trackingId") is not None:
        if not isinstance(raw["trackingId"], str) or len(raw["trackingId"]) > 64:
            raise bad_request("Invalid trackingId", "where.trackingId: a string of at most 64 characters")
        where["trackingId"] = raw["trackingId"]
    return where


def search(settings: Settings, who: Caller, params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise bad_request("Invalid request format", "a SearchFlowParams object is required")
    where = _where(params.get("where"))
    limit = params.get("limit", DEFAULT_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise bad_request("Invalid limit", f"limit: a whole number from 1 to {MAX_LIMIT}")
    after = None
    if params.get("cursor") is not None:
        after = views.decode_cursor(params["cursor"]) if isinstance(params["cursor"], str) else None
        if after is None:
            raise bad_request("Invalid cursor", "cursor: the nextCursor of an earlier answer")
    api_clients.link_flows(settings)
    results: list[dict[str, Any]] = []
    more = False
    while True:  # criteria the store cannot apply are applied here, page after page
        page = api_clients.partner_flows(settings, who.partner, after, limit + 1)
        pieces = Store(settings).pieces_of(flow.id for flow, _dep in page if flow is not None)  # one read a page
        for flow, dep in page:
            at = as_utc(flow.received_at) if flow is not None else dep.created_at
            key = flow.id if flow is not None else dep.id
            if len(results) == limit:
                more = True
                break
            after = (at, key)
            body = views.flow_view(settings, flow, dep, pieces.get(flow.id, []) if flow is not None else []).body
            if views.matches(body, where):
                results.append(body)
        if more or len(page) <= limit:
            break
    out: dict[str, Any] = {"limit": limit, "filters": params["where"], "results": results}
    if more and after is not None:
        out["nextCursor"] = views.encode_cursor(*after)
    return out


def find(settings: Settings, who: Caller, flow_id: str) -> views.FlowView:
    """A flow of the caller's partner by its API flowId or gateway id; 404 for anything else."""
    if len(flow_id) > 64:
        raise bad_request("Invalid flowId", "flowId: at most 64 characters")
    dep = api_clients.get_deposit(settings, flow_id)
    flow = None
    if dep is not None:
        if dep.partner != who.partner:
            raise not_found()
        if dep.flow_id is None and api_clients.link_flows(settings):
            dep = api_clients.get_deposit(settings, flow_id) or dep
        flow = Store(settings).flow(dep.flow_id) if dep.flow_id else None
    else:
        flow = Store(settings).flow(flow_id)
        if flow is None or flow.partner != who.partner:
            raise not_found()
        dep = api_clients.deposits_of_flows(settings, [flow.id]).get(flow.id)
    return views.flow_view(settings, flow, dep)


def get(settings: Settings, who: Caller, flow_id: str, doc_type: str, doc_index: int
        ) -> dict[str, Any] | tuple[Path, str, str]:
    view = find(settings, who, flow_id)
    if doc_type == "Metadata":
        return view.body
    if doc_type == "Original":
        path = Path(view.archive_path) if view.archive_path else None
        if path is None or not path.is_file() or path.is_symlink():
            raise not_found("The original is not available yet (the flow is waiting to be received)")
        return path, view.body["name"], "application/octet-stream"
    if doc_type in ("Converted", "ReadableView"):
        raise not_found(f"No {doc_type} document: the gateway produces none for this flow")
    if doc_type not in (views.REPORT, views.REPORT_XML, views.STATUS):
        raise bad_request("Invalid docType", "docType: Metadata, Original, Converted, ReadableView, "
                          "or the gateway's Report, ReportXml, Status (with docIndex)")
    flow = Store(settings).flow(view.gateway_flow) if view.gateway_flow else None
    files = views.documents(settings, flow).get(doc_type, []) if flow is not None else []
    if not 1 <= doc_index <= len(files):
        raise not_found(f"No {doc_type} document {doc_index} for this flow (yet)")
    path = files[doc_index - 1]
    media = "application/json" if path.suffix == ".json" else "application/xml"
    return path, path.name, media


def header_name(name: str) -> str:
    """A file name safe inside a Content-Disposition header."""
    return re.sub(r'[^A-Za-z0-9._-]', "_", name)[:200] or "flow"

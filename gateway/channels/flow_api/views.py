"""The gateway's flows as the OpenAPI's `Flow` objects, and their documents.

A flow deposited through the API is known by its API flowId (a UUID) from
the deposit on; other flows of the partner (folder, SFTP) by the gateway's
flow id. The words of the two models are matched here, in tables: what is
uncertain in the standard's vocabulary ([U] below) is data to revise.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.core.clock import as_utc
from gateway.core.codes import CODES
from gateway.core.config import Settings
from gateway.store.api_clients import Deposit
from gateway.store.repository import Store
from gateway.store.tables import Flow, Piece

# detected format -> FlowSyntax
SYNTAX = {"ubl-invoice": "UBL", "ubl-creditnote": "UBL", "cii": "CII", "facturx": "Factur-X", "status": "CDAR",
          "pdf": "Factur-X", "pdf-signed": "Factur-X"}
ACK = {"IN_RECU": "Pending", "IN_INTEGRE": "Ok", "IN_INTEGRE_PARTIEL": "Ok", "IN_REJETE": "Error"}
# [U] a partner's deposit leaves it ("Out") toward the platform; an invoice deposited is the invoice of its
# customer ("CustomerInvoice", the supplier's view), a status message deposited is a life-cycle message
FLOW_TYPE = {"CDAR": "CustomerInvoiceLC"}
DEFAULT_FLOW_TYPE = "CustomerInvoice"
FLOW_TYPES = ("CustomerInvoice", "SupplierInvoice", "CustomerInvoiceLC", "SupplierInvoiceLC", "StateCustomerInvoiceLC",
              "StateSupplierInvoiceLC", "AggregatedCustomerTransactionReport", "UnitaryCustomerTransactionReport",
              "AggregatedCustomerPaymentReport", "UnitaryCustomerPaymentReport", "UnitarySupplierTransactionReport",
              "MultiFlowReport", "StateCustomerInvoice", "StateSupplierInvoice", "StateTransactionReport",
              "StateTransactionReportLC", "StatePaymentReport", "StatePaymentReportLC", "Undefined")
DIRECTION = "Out"
DEFAULT_RULE = "B2G"  # [U] the gateway routes to public structures (Chorus Pro's B2G exchanges)
REASONS = {"DOUBLON": "AlreadyExistingFlow", "IRR_TAILLE_F": "FileSizeExceeded", "IRR_VIDE_F": "EmptyFlow",
           "IRR_TYPE_F": "FlowTypeError", "IRR_XSD": "InvalidSchema"}
# the extra documents a flow offers beside the OpenAPI's (docType values the gateway adds)
REPORT, REPORT_XML, STATUS = "Report", "ReportXml", "Status"


@dataclass(frozen=True)
class FlowView:
    """One flow as the API shows it: its `Flow` object, where its files are."""

    flow_id: str  # the API's id for it
    body: dict[str, Any]
    partner: str
    gateway_flow: str | None
    archive_path: str | None


def encode_cursor(at: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([as_utc(at).isoformat(), key]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str] | None:
    try:
        at, key = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        return as_utc(datetime.fromisoformat(at)), str(key)
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        return None


def _iso(dt: datetime) -> str:
    return as_utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _details(flow: Flow, pieces: list[Piece]) -> list[dict[str, str]]:
    out = []
    if flow.duplicate_of:
        out.append({"level": "Error", "item": flow.file_name, "reasonCode": "AlreadyExistingFlow",
                    "reasonMessage": f"The same file was received before as flow {flow.duplicate_of}"})
    for p in pieces:
        for code in filter(None, (p.error_codes or "").split(",")):
            known = CODES.get(code)
            out.append({"level": "Error", "item": p.name or p.id, "reasonCode": REASONS.get(code, code),
                        "reasonMessage": f"{code}: {known.en if known else code}"})
    return out


def flow_view(settings: Settings, flow: Flow | None, dep: Deposit | None,
              pieces: Sequence[Piece] | None = None) -> FlowView:
    """The `Flow` object of a gateway flow and/or an API deposit (at least
    one); `pieces`: the flow's, when the caller read them for many flows at once."""
    if pieces is None:
        pieces = Store(settings).pieces(flow.id) if flow is not None else []
    if flow is None:
        assert dep is not None
        status = "Error" if dep.failed else "Pending"
        updated, syntax = dep.deposited_at or dep.created_at, dep.flow_syntax
    else:
        status = "Error" if flow.duplicate_of else ACK.get(flow.state, "Pending")
        times = [as_utc(flow.updated_at or flow.received_at)] + [as_utc(p.status_at) for p in pieces if p.status_at]
        updated = max(times)
        syntax = dep.flow_syntax if dep else SYNTAX.get(flow.format or "", "CII")
    body: dict[str, Any] = {
        "flowId": dep.id if dep else flow.id,
        "name": dep.name if dep else flow.file_name,
        "submittedAt": _iso(dep.created_at if dep else flow.received_at),
        "updatedAt": _iso(updated),
        "flowSyntax": syntax,
        "flowProfile": (dep and dep.flow_profile) or ("Basic" if status == "Ok" else "Undefined"),
        "processingRule": (dep and dep.processing_rule) or DEFAULT_RULE,
        "processingRuleSource": "Input" if dep and dep.processing_rule else "Computed",
        "flowType": FLOW_TYPE.get(syntax, DEFAULT_FLOW_TYPE),
        "flowDirection": DIRECTION,
        "acknowledgement": {"status": status},
        "sha256": dep.sha256 if dep else flow.sha256,
    }
    if dep and dep.tracking_id:
        body["trackingId"] = dep.tracking_id
    details = _details(flow, pieces) if flow is not None else []
    if dep and dep.failed:
        details.append({"level": "Error", "item": dep.name, "reasonCode": "OtherTechnicalError",
                        "reasonMessage": dep.failed})
    if details:
        body["acknowledgement"]["details"] = details
    if flow is not None:  # extensions (the schema allows more properties): the gateway's own id, its documents
        body["gatewayFlowId"] = flow.id
        body["documents"] = [{"docType": t, "docIndex": i, "name": p.name}
                             for t, files in documents(settings, flow).items() for i, p in enumerate(files, 1)]
    return FlowView(body["flowId"], body, dep.partner if dep else flow.partner, flow.id if flow else None,
                    flow.archive_path if flow is not None else None)


def documents(settings: Settings, flow: Flow) -> dict[str, list[Path]]:
    """The return documents of a flow in its partner's outbox: its report (JSON,
    CPPStatut XML) and the status files of its pieces, oldest first."""
    out: dict[str, list[Path]] = {}
    reports = settings.reports_dir(flow.partner)
    for doc, suffix in ((REPORT, ".json"), (REPORT_XML, ".xml")):
        path = reports / f"{flow.id}{suffix}"
        if path.is_file():
            out[doc] = [path]
    statuses = settings.outbox / flow.partner / "statuses"
    if statuses.is_dir():
        found = sorted(p for p in statuses.glob(f"{flow.id}-*") if p.is_file() and not p.name.startswith("."))
        if found:
            out[STATUS] = found
    return out


def matches(body: dict[str, Any], where: dict[str, Any]) -> bool:
    """Whether a `Flow` object meets the search criteria (lists: any of them)."""
    updated = body["updatedAt"]
    if where.get("updatedAfter") and not as_utc(datetime.fromisoformat(updated)) > where["updatedAfter"]:
        return False
    if where.get("updatedBefore") and not as_utc(datetime.fromisoformat(updated)) < where["updatedBefore"]:
        return False
    for key, field in (("processingRule", "processingRule"), ("flowType", "flowType"),
                       ("flowDirection", "flowDirection")):
        if where.get(key) and body[field] not in where[key]:
            return False
    if where.get("trackingId") and body.get("trackingId") != where["trackingId"]:
        return False
    return not (where.get("ackStatus") and body["acknowledgement"]["status"] != where["ackStatus"])

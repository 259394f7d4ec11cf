"""A flow report's refusals as the reform's life-cycle message (CDAR D22B,
CDV), beside the JSON and CPPStatut reports of a partner that receives
"cdar" (`[statuses] formats`, or its own `[statuses.parties]` entry).

The reform has a code for two intake outcomes: 213 Rejetée (an invoice read,
refused by the rules) and 501 Irrecevable (a file, or a lot member, that
could not be read as an invoice: an IRR_ code). Each refused piece is one
AcknowledgementDocument; a flow refused whole before any piece is one 501
about the file. A 213 names the invoice's number and date (MDT-87, MDG-35):
a piece refused by the rules is still read for them (pipeline/stages.py);
one whose number or date cannot be read at all is told by the report alone. Accepted pieces are told by their status files (200
Déposée...). Reasons and what is not told: cdar.toml [reports].
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from gateway.outputs import cdar_codes as cc

_NOT_XML = re.compile(r"[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: Any, most: int = 200) -> str:
    """A partner-given text made safe for an XML text node (names are hostile)."""
    return _NOT_XML.sub("?", str(value))[:most] or "?"


def _reason(codes: cc.CdarCodes, c: cc.CdvCode, code: str) -> str | None:
    if codes.allowed(c, code):
        return code
    mapped = dict(codes.report_reasons).get(code)
    return mapped if mapped and codes.allowed(c, mapped) else c.reason


def _refusals(report: dict[str, Any], codes: cc.CdarCodes) -> list[dict[str, Any]]:
    """What is told: one entry per refused piece (or the file), in order."""
    out = []
    file_errors = [e for e in report.get("errors", []) if e.get("severity", "error") == "error"]
    if file_errors and not report.get("pieces"):
        first = file_errors[0]
        if first["code"] not in codes.report_skip:
            out.append({"code": 501, "error": first, "id": report["file"], "date": None, "seller": None})
    for piece in report.get("pieces", []):
        errors = piece.get("errors") or []
        if piece.get("valid") or not errors or errors[0]["code"] in codes.report_skip:
            continue
        first = errors[0]
        inv = piece.get("invoice") or {}
        if first["code"].startswith("IRR_"):  # not readable as an invoice
            out.append({"code": 501, "error": first, "id": piece.get("name") or report["file"], "date": None,
                        "seller": None})
        elif inv.get("number") and inv.get("date"):
            out.append({"code": 213, "error": first, "id": inv["number"], "date": inv["date"],
                        "seller": inv.get("supplier")})
        # else: its number or date could not be read at all; a 213 must name both
        # (MDT-87, MDG-35): the report alone says why
    return out


def report_cdar(report: dict[str, Any], *, platform_id: str = "GTW001",
                codes: cc.CdarCodes | None = None) -> bytes | None:
    """The report's refusals as one CDAR, or None when it has none the reform
    names (every piece accepted, a status file's flow, a skipped code)."""
    if report.get("format") == "status":
        return None  # a party's status changes: answered by the report alone
    codes = codes or cc.load()
    told = [(r, codes.code(r["code"])) for r in _refusals(report, codes)]
    told = [(r, c) for r, c in told if c is not None]
    if not told:
        return None
    at = datetime.fromisoformat(report["processed_at"].replace("Z", "+00:00"))
    platform = codes.role("platform")
    root, doc = cc.new_message(codes, message_id=f"{report['flow_id']}-CDV",
                               name=f"{_text(report['file'], 150)}_CDV-{told[0][1].code}", at=at)
    cc.party(doc, "SenderTradeParty", platform, label=platform_id)
    cc.party(doc, "IssuerTradeParty", platform, label=platform_id)
    cc.party(doc, "RecipientTradeParty", platform, label=_text(report["partner"]))
    for r, c in told:
        ack = cc.el(root, "rsm", "AcknowledgementDocument")
        cc.el(cc.el(ack, "ram", "MultipleReferencesIndicator"), "udt", "Indicator", "false")
        cc.el(ack, "ram", "TypeCode", c.type_code)
        cc.stamp(ack, "IssueDateTime", at)
        ref = cc.el(ack, "ram", "ReferenceReferencedDocument")
        cc.el(ref, "ram", "IssuerAssignedID", _text(r["id"]))
        if c.status_code:
            cc.el(ref, "ram", "StatusCode", c.status_code)
        if r["date"]:
            cc.el(cc.el(ref, "ram", "FormattedIssueDateTime"), "qdt", "DateTimeString",
                  str(r["date"]).replace("-", "")[:8], format="102")
        cc.el(ref, "ram", "ProcessConditionCode", str(c.code))
        cc.el(ref, "ram", "ProcessCondition", "Rejetée" if c.code == 213 else "Irrecevable")
        seller = cc.legal_ids(r["seller"])
        if seller:
            cc.party(ref, "IssuerTradeParty", "SE", ids=seller)
        st = cc.el(ref, "ram", "SpecifiedDocumentStatus")
        reason = _reason(codes, c, r["error"]["code"])
        if reason:
            cc.el(st, "ram", "ReasonCode", reason)
        err = r["error"]
        cc.el(st, "ram", "Reason", _text(f"{err['code']}: {err.get('message_fr') or err['message']}", 4000))
        cc.el(st, "ram", "SequenceNumeric", "1")
    return cc.to_bytes(root)

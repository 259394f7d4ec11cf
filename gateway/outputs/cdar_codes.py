"""The reform's life-cycle messages (CDV) in CDAR D22B: their namespaces,
the codes the gateway writes and reads (cdar.toml beside this module, data
with its unconfirmed points marked), and the small builders the status
files and the flow reports share. The CDV code of each of the platform's
statuses is the machine's (lifecycle.toml `cdv =`), never repeated here.
"""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.core.clock import as_utc

RSM = "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
ROOT = "CrossDomainAcknowledgementAndResponse"
CDAR_XSD = "cdar-d22b/CrossDomainAcknowledgementAndResponse_100pD22B.xsd"  # under schemas/
CDV_RULES = "br-fr-cdv/xslt/BR-FR-CDV-Schematron-CDAR.xslt"  # under schemas/
FILE_NAME = "cdar.toml"
TRANSMISSION, PROCESSING = "305", "23"  # MDT-77
SIREN_SCHEME, SIRET_SCHEME = "0002", "0009"  # ISO 6523 ICD of GlobalID/@schemeID


class CdarCodesError(ValueError):
    """cdar.toml says something the writers cannot use."""


@dataclass(frozen=True)
class CdvCode:
    """What the gateway writes for one CDV code."""

    code: int
    type_code: str  # MDT-77: "305" or "23"
    status_code: str | None  # MDT-88, optional
    reason: str | None  # MDT-113 written when the status needs one and the motif is free text
    reasons: tuple[str, ...]  # the MDT-113 codes the rules allow for it; () = the whole list


@dataclass(frozen=True)
class CdarCodes:
    guideline: str
    business_process: str
    roles: tuple[tuple[str, str], ...]  # gateway role -> UNTDID 3035 code
    codes: tuple[CdvCode, ...]
    reasons: frozenset[str]  # the closed list of MDT-113
    report_reasons: tuple[tuple[str, str], ...]  # gateway return code -> MDT-113
    report_skip: frozenset[str]
    source: str
    platform_processing_as: str = "recipient"  # whose name a processing status the platform sets is issued in

    def code(self, cdv: int | None) -> CdvCode | None:
        return next((c for c in self.codes if c.code == cdv), None)

    def role(self, role: str) -> str:
        return dict(self.roles).get(role, dict(self.roles).get("platform", "WK"))

    def allowed(self, c: CdvCode, reason: str) -> bool:
        """A reason code the rules accept for that status."""
        return reason in (c.reasons or self.reasons)

    def reason_code(self, c: CdvCode, given: str | None) -> str | None:
        """MDT-113 for a status: the motif when it is one of the reform's codes
        the status allows, else the status's default when it needs one."""
        word = (given or "").strip().split(" ", 1)[0].rstrip(":").upper()
        if word and self.allowed(c, word):
            return word
        return c.reason


def packaged_file() -> Path:
    return Path(__file__).resolve().with_name(FILE_NAME)


@functools.lru_cache(maxsize=4)
def load(path: Path | None = None) -> CdarCodes:
    """cdar.toml (the shipped one by default), read once per process."""
    p = path or packaged_file()
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
        return _parse(raw, str(p))
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CdarCodesError(f"{p}: {exc}") from exc


def _parse(raw: dict[str, Any], source: str) -> CdarCodes:
    closed = frozenset(str(r) for r in raw["reasons"]["codes"])
    codes = []
    for key, c in raw["codes"].items():
        type_code = str(c["type_code"])
        if type_code not in (TRANSMISSION, PROCESSING):
            raise CdarCodesError(f"[codes.{key}] type_code must be 305 or 23, not {type_code}")
        reasons = tuple(str(r) for r in c.get("reasons", ()))
        reason = c.get("reason")
        for r in (*reasons, *([reason] if reason else [])):
            if r not in closed:
                raise CdarCodesError(f"[codes.{key}] {r!r} is not in [reasons] codes")
        if reason and reasons and reason not in reasons:
            raise CdarCodesError(f"[codes.{key}] reason {reason!r} is not among its reasons")
        codes.append(CdvCode(int(key), type_code, str(c["status_code"]) if "status_code" in c else None,
                             str(reason) if reason else None, reasons))
    reports = raw.get("reports", {})
    roles = dict(raw["roles"])
    stand_in = str(roles.pop("platform_processing_as", "recipient"))
    return CdarCodes(str(raw["guideline"]), str(raw["business_process"]),
                     tuple((str(k), str(v)) for k, v in roles.items()), tuple(codes), closed,
                     tuple((str(k), str(v)) for k, v in reports.get("reasons", {}).items()),
                     frozenset(str(s) for s in reports.get("skip", ())), source, stand_in)


# --- building ---------------------------------------------------------------------

def el(parent: etree._Element, prefix: str, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    e = etree.SubElement(parent, f"{{{NSMAP[prefix]}}}{name}", {k: v for k, v in attrs.items()})
    if text is not None:
        e.text = text
    return e


def stamp(parent: etree._Element, name: str, at: datetime) -> None:
    """A udt:DateTimeString in format 204 (CCYYMMDDHHMMSS, UTC), as the reform's examples."""
    el(el(parent, "ram", name), "udt", "DateTimeString", as_utc(at).strftime("%Y%m%d%H%M%S"), format="204")


def new_message(codes: CdarCodes, *, message_id: str, name: str, at: datetime) -> tuple[etree._Element, etree._Element]:
    """The root and its ExchangedDocument (without its parties yet)."""
    root = etree.Element(f"{{{RSM}}}{ROOT}", nsmap=NSMAP)
    ctx = el(root, "rsm", "ExchangedDocumentContext")
    el(el(ctx, "ram", "BusinessProcessSpecifiedDocumentContextParameter"), "ram", "ID", codes.business_process)
    el(el(ctx, "ram", "GuidelineSpecifiedDocumentContextParameter"), "ram", "ID", codes.guideline)
    doc = el(root, "rsm", "ExchangedDocument")
    el(doc, "ram", "ID", message_id[:200])
    el(doc, "ram", "Name", name[:200])
    stamp(doc, "IssueDateTime", at)
    return root, doc


def party(parent: etree._Element, name: str, role: str, *, ids: tuple[tuple[str, str], ...] = (),
          label: str | None = None) -> etree._Element | None:
    """A TradeParty: GlobalIDs (scheme, value), name, role code, in the XSD's order;
    its Name element, if it has one."""
    p = el(parent, "ram", name)
    for scheme, value in ids:
        el(p, "ram", "GlobalID", value, schemeID=scheme)
    named = el(p, "ram", "Name", label[:200]) if label else None
    el(p, "ram", "RoleCode", role)
    return named


def legal_ids(ident: str | None) -> tuple[tuple[str, str], ...]:
    """A French company's GlobalIDs from its SIRET or SIREN: the SIREN (BT-30's
    legal id, scheme 0002) first, and the SIRET (0009) that names the
    establishment; () for anything else (a foreign VAT id)."""
    v = (ident or "").strip()
    if len(v) == 14 and v.isdigit():
        return ((SIREN_SCHEME, v[:9]), (SIRET_SCHEME, v))
    if len(v) == 9 and v.isdigit():
        return ((SIREN_SCHEME, v),)
    return ()


def to_bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

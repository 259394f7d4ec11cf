"""Status files as the reform's life-cycle messages: a CDAR D22B
CrossDomainAcknowledgementAndResponse (guideline urn.cpro.gouv.fr:1p0:CDV:invoice),
one AcknowledgementDocument per status told, valid against the CDAR XSD and
the BR-FR-CDV rules (schemas/cdar-d22b, schemas/br-fr-cdv).

A status is told with its CDV code (the machine's `cdv`, lifecycle.toml),
its phase, document status and reason as cdar.toml says. A status without a
CDV code is not told in CDAR. The rules forbid one message mixing the
transmission phase (305, set by the platform) and the processing phase (23,
set by a party): a change that sets statuses of both (a validation the
platform then routes) tells those of the phase of its last status, the
piece's status now; the party gets all of them in its other formats.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from gateway.core.clock import as_utc, iso
from gateway.outputs import cdar_codes as cc
from gateway.outputs.status_files import ForReceiver, StatusFileError, StatusNotice, Statuses

# BT-3 type codes the French rules allow in MDT-91 (BR-FR-04)
_TYPE_CODES = frozenset("380 389 393 501 386 500 384 471 472 473 261 262 381 396 502 503".split())


@dataclass(frozen=True)
class _Told:
    notice: StatusNotice
    code: cc.CdvCode
    label: str


def _tellable(notices: Sequence[StatusNotice], machine: Statuses, codes: cc.CdarCodes) -> list[_Told]:
    told = []
    for n in notices:
        info = machine.info(n.status)
        c = codes.code(info.cdv)
        if c is not None:
            told.append(_Told(n, c, info.cdv_label or info.label_fr))
    if not told:
        raise StatusFileError("no status of this change has a CDV code the gateway writes in CDAR: "
                              + ", ".join(n.status for n in notices))
    phase = told[-1].code.type_code  # the piece's status now decides the message's phase
    return [t for t in told if t.code.type_code == phase]


def _issuer(told: list[_Told], codes: cc.CdarCodes) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(role code, GlobalIDs) of whoever set the statuses: the platform for
    transmission; for processing, the party (BR-FR-CDV-07 wants its id)."""
    last = told[-1].notice
    if told[-1].code.type_code == cc.TRANSMISSION:
        return codes.role("platform"), ()
    role = last.by_role if last.by_role != "platform" else codes.platform_processing_as
    given = last.by_id if last.by_role == role else None
    fallback = {"recipient": last.debtor_siret, "moa": last.debtor_siret, "supplier": last.supplier_id}.get(role)
    ids = cc.legal_ids(given or fallback)
    if not ids:
        raise StatusFileError(f"piece {last.piece_id}: {last.status} was set by {role}, whose SIRET is not known; "
                              "a processing status (23) names its issuer")
    code = codes.role(role)
    if code == codes.role("platform"):
        raise StatusFileError(f"cdar.toml gives role {role} the platform's code {code}; a processing status needs "
                              "a business party")
    return code, ids


def _acknowledgement(root: etree._Element, t: _Told, codes: cc.CdarCodes) -> None:
    n, c = t.notice, t.code
    ack = cc.el(root, "rsm", "AcknowledgementDocument")
    cc.el(cc.el(ack, "ram", "MultipleReferencesIndicator"), "udt", "Indicator", "false")
    cc.el(ack, "ram", "TypeCode", c.type_code)
    cc.stamp(ack, "IssueDateTime", n.at)  # MDT-78: when the status was set
    ref = cc.el(ack, "ram", "ReferenceReferencedDocument")
    cc.el(ref, "ram", "IssuerAssignedID", (n.invoice_number or n.piece_id)[:200])  # MDT-87: BT-1
    if c.status_code:
        cc.el(ref, "ram", "StatusCode", c.status_code)
    if n.type_code in _TYPE_CODES:
        cc.el(ref, "ram", "TypeCode", n.type_code)
    if n.invoice_date is None and c.code != 501:
        raise StatusFileError(f"piece {n.piece_id}: no invoice date, which a CDV names (MDG-35)")
    if n.invoice_date is not None:
        cc.el(cc.el(ref, "ram", "FormattedIssueDateTime"), "qdt", "DateTimeString",
              n.invoice_date.strftime("%Y%m%d"), format="102")
    cc.el(ref, "ram", "Status", n.status)  # the gateway's own status, exact where a CDV code covers several
    cc.el(ref, "ram", "ProcessConditionCode", str(c.code))
    cc.el(ref, "ram", "ProcessCondition", t.label)
    seller = cc.legal_ids(n.supplier_id)
    if seller:  # MDT-129; a foreign seller (VAT id) has no legal id the rules know
        cc.party(ref, "IssuerTradeParty", "SE", ids=seller)
    reason_code = codes.reason_code(c, n.reason)
    text = (n.reason or "").strip()
    comment = (n.comment or "").strip()
    if reason_code or text or comment:
        st = cc.el(ref, "ram", "SpecifiedDocumentStatus")
        if reason_code:
            cc.el(st, "ram", "ReasonCode", reason_code)
        if text and text != reason_code:
            cc.el(st, "ram", "Reason", text[:4000])
        cc.el(st, "ram", "SequenceNumeric", "1")  # BR-FR-CDV-16
        if comment:
            cc.el(cc.el(st, "ram", "IncludedNote"), "ram", "Content", comment[:4000])


def status_cdar_for(notices: Sequence[StatusNotice], machine: Statuses, *, platform_id: str,
                    flow_id: str | None = None, produced_at: datetime | None = None,
                    codes: cc.CdarCodes | None = None) -> ForReceiver:
    """One CDAR for several receivers: built once, then written for each
    (receiver id, receiver name) as its RecipientTradeParty. Raises
    StatusFileError when no status can be told, or a party's id is missing."""
    if not notices:
        raise StatusFileError("a CDAR needs at least one status")
    codes = codes or cc.load()
    told = _tellable(notices, machine, codes)
    role, ids = _issuer(told, codes)
    produced = produced_at or max(as_utc(n.at) for n in notices)
    mid = flow_id or "CDV" + hashlib.sha256("|".join(
        f"{n.piece_id}/{n.status}/{iso(n.at)}" for n in notices).encode()).hexdigest()[:16].upper()
    last = told[-1]
    name = f"{last.notice.invoice_number or last.notice.piece_id}_CDV-{last.code.code}_{last.label}"

    root, doc = cc.new_message(codes, message_id=mid, name=name, at=produced)
    cc.party(doc, "SenderTradeParty", codes.role("platform"), label=platform_id)
    cc.party(doc, "IssuerTradeParty", role, ids=ids, label=platform_id if role == codes.role("platform") else None)
    # the receiving party's software, as platforms address each other (WK needs no address, BR-FR-CDV-08);
    # its name is the one thing that differs between receivers
    recipient = cc.party(doc, "RecipientTradeParty", codes.role("platform"), label=platform_id)
    for t in told:
        _acknowledgement(root, t, codes)

    def for_receiver(receiver_id: str, receiver_name: str) -> bytes:
        recipient.text = (receiver_name or receiver_id or platform_id)[:200]
        return cc.to_bytes(root)

    return for_receiver


@dataclass(frozen=True)
class CdarOutput:
    """Status files as the reform's CDAR (CDV) messages, each naming its receiver."""

    name: str = "cdar"
    suffix: str = ".cdar.xml"

    def render(self, notices: Sequence[StatusNotice], machine: Statuses, *, platform_id: str,
               flow_id: str | None = None) -> ForReceiver:
        return status_cdar_for(notices, machine, platform_id=platform_id, flow_id=flow_id)

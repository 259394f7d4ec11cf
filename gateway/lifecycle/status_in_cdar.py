"""Status files in, the reform's form: a CDAR D22B life-cycle message (CDV,
guideline urn.cpro.gouv.fr:1p0:CDV:invoice), as a party's software or
platform sends it. Read with the locked-down parser, validated against the
CDAR XSD (schemas/cdar-d22b) and, when the home runs rules, the BR-FR-CDV
rules (schemas/br-fr-cdv); a message failing either is refused whole, with
each error's XPath and line.

Each ReferenceReferencedDocument becomes a StatusRequest: its status code
(MDT-105) read back through the machine's `cdv` (lifecycle.toml). A code
several of the platform's statuses share (205, 210...) names the one in
ram:Status when it gives one of them (the gateway's own CDARs do), else
all of them: the piece's state and the sender's role choose (status_apply).
The piece is its invoice number (MDT-87) and seller SIRET (GlobalID 0009),
or a gateway piece id in MDT-87.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.core import codes, xmlsafe
from gateway.core.records import Finding, Location, Severity
from gateway.lifecycle.machine import Machine
from gateway.lifecycle.status_in_base import (
    MAX_ENTRIES, MAX_ID, MAX_TEXT, PIECE_ID, STAGE, StatusRequest, syntax_problem, xs_datetime,
)
from gateway.outputs import cdar_codes as cc
from gateway.rules import manifest
from gateway.rules import xsd as schemas
from gateway.rules.rulesets import RuleSet
from gateway.rules.schematron import shared_engine

log = logging.getLogger("gateway.status_files")

_NS = {"rsm": cc.RSM, "ram": cc.RAM, "udt": cc.UDT, "qdt": cc.QDT}
_ACK = "/rsm:CrossDomainAcknowledgementAndResponse/rsm:AcknowledgementDocument"


def cdar_xsd(settings: Any) -> Path:
    """The shipped CDAR D22B XSD (checked against schemas/MANIFEST.toml); a
    path that does not exist when the artefacts are refused, so every CDAR is
    then refused with ERR_VALIDATEUR, never read unchecked."""
    root = manifest.root_of(settings)
    try:
        return manifest.locate(root, cc.CDAR_XSD).path
    except manifest.ArtefactError:
        return root / f"{cc.CDAR_XSD} (does not match {manifest.MANIFEST})"


def cdv_rules(settings: Any, data: bytes) -> list[Finding]:
    """The BR-FR-CDV rules on a CDAR, run by Saxon as the EN 16931 rules are:
    their errors, or ERR_VALIDATEUR when they could not run."""
    try:
        found = manifest.locate(manifest.root_of(settings), cc.CDV_RULES)
    except manifest.ArtefactError as exc:
        return [codes.finding("ERR_VALIDATEUR", f"The BR-FR-CDV rules cannot be trusted: {exc}",
                              f"Les règles BR-FR-CDV ne sont pas fiables : {exc}", stage=STAGE)]
    rs = RuleSet(found.path.stem, found.path, found.source, role="br-fr-cdv")
    result = shared_engine(settings).check("cdar", data, ruleset=rs)
    if not result.ran:
        return [codes.finding("ERR_VALIDATEUR", f"The BR-FR-CDV rules could not be checked: "
                              f"{'; '.join(f.message for f in result.findings)}",
                              "Les règles BR-FR-CDV n'ont pas pu être vérifiées", stage=STAGE)]
    return [f for f in result.findings if f.severity >= Severity.ERROR]


def _text(el: etree._Element, path: str) -> str | None:
    hit = el.find(path, _NS)
    return (hit.text or "").strip() if hit is not None else None


def _when(el: etree._Element | None) -> datetime | None:
    """A udt:DateTimeType: a DateTimeString in format 204 (CCYYMMDDHHMMSS, UTC) or a DateTime."""
    if el is None:
        return None
    s = _text(el, "udt:DateTimeString")
    if s is not None:
        try:
            return datetime.strptime(s, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
        except ValueError:
            return None
    d = _text(el, "udt:DateTime")
    return xs_datetime(d) if d else None


def parse_cdar(data: bytes, machine: Machine, xsd: Path | None,
               rules: Any = None) -> tuple[list[StatusRequest], list[Finding]]:
    """`rules`: data -> the BR-FR-CDV findings (cdv_rules), or None to skip them."""
    tree, problems = xmlsafe.parse(data, stage=STAGE)
    if tree is None:
        return [], problems
    root = tree.getroot()
    if root.tag != f"{{{cc.RSM}}}{cc.ROOT}":
        return [], [syntax_problem(f"The root element must be {cc.ROOT} in {cc.RSM}, not {root.tag}",
                                   f"L'élément racine doit être {cc.ROOT} dans {cc.RSM}, et non {root.tag}",
                                   "/", root.sourceline, value=root.tag)]
    refused = _schema_problems(root, xsd) if xsd else []
    if refused:
        return [], refused
    guideline = _text(root, "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID")
    if guideline != cc.load().guideline:
        return [], [codes.finding(
            "REJ_SEMAN", f"This CDAR's guideline (MDT-3) is {guideline!r}; status messages to the gateway use "
            f"{cc.load().guideline!r}", f"Le profil de ce CDAR (MDT-3) est « {guideline} » ; les statuts envoyés à "
            f"la passerelle utilisent « {cc.load().guideline} »", rule="BR-FR-CDV-02", value=guideline,
            location=Location(xpath="/rsm:CrossDomainAcknowledgementAndResponse/rsm:ExchangedDocumentContext"),
            stage=STAGE)]
    refs = [(i, j, ref) for i, ack in enumerate(root.findall("rsm:AcknowledgementDocument", _NS), 1)
            for j, ref in enumerate(ack.findall("ram:ReferenceReferencedDocument", _NS), 1)]
    if len(refs) > MAX_ENTRIES:
        return [], [codes.finding("IRR_TAILLE_F", f"{len(refs)} status changes in one file; at most {MAX_ENTRIES}",
                                  f"{len(refs)} changements de statut dans un fichier ; {MAX_ENTRIES} au plus",
                                  value=str(len(refs)), stage=STAGE)]
    if rules is not None:
        broken = rules(data)
        if broken:
            return [], broken
    requests, findings = [], []
    for index, (i, j, ref) in enumerate(refs, 1):
        req, p = _request(index, f"{_ACK}[{i}]/ram:ReferenceReferencedDocument[{j}]", ref, machine)
        findings += p
        if req is not None:
            requests.append(req)
    return requests, findings


def _request(index: int, path: str, ref: etree._Element, machine: Machine) -> tuple[StatusRequest | None, list[Finding]]:
    loc = Location(xpath=path, line=ref.sourceline)
    code = _text(ref, "ram:ProcessConditionCode") or ""
    ident = _text(ref, "ram:IssuerAssignedID") or ""
    if not ident or len(ident) > MAX_ID:
        return None, [syntax_problem(f"{path}/ram:IssuerAssignedID: the invoice number (MDT-87) is 1 to {MAX_ID} "
                                     "characters", f"{path}/ram:IssuerAssignedID : le numéro de facture (MDT-87) fait "
                                     f"1 à {MAX_ID} caractères", path, ref.sourceline, value=ident[:200])]
    shared = [s.name for s in machine.statuses() if code.isdigit() and s.cdv == int(code)]
    if not shared:
        return None, [codes.finding(
            "STATUT_INCONNU", f"CDV status {code} (MDT-105) is not one a party may give this gateway's pieces "
            f"(known: {', '.join(sorted({str(s.cdv) for s in machine.statuses() if s.cdv}))})",
            f"Le statut CDV {code} (MDT-105) n'est pas un statut que cette passerelle reçoit",
            location=loc, value=code, stage=STAGE)]
    named = _text(ref, "ram:Status")
    first = named if named in shared else shared[0]
    reason_code = _text(ref, "ram:SpecifiedDocumentStatus/ram:ReasonCode")
    text = _text(ref, "ram:SpecifiedDocumentStatus/ram:Reason")
    reason = ": ".join(t for t in (reason_code, text) if t) or None
    notes = [(n.text or "").strip() for n in ref.iterfind("ram:SpecifiedDocumentStatus/ram:IncludedNote/ram:Content",
                                                           _NS)]
    comment = " / ".join(n for n in notes if n) or None
    if len(reason or "") > MAX_TEXT or len(comment or "") > MAX_TEXT:
        return None, [syntax_problem(f"{path}: a reason or a comment is at most {MAX_TEXT} characters",
                                     f"{path} : un motif ou un commentaire fait {MAX_TEXT} caractères au plus",
                                     path, ref.sourceline)]
    sirets = [(g.text or "").strip() for g in ref.iterfind("ram:IssuerTradeParty/ram:GlobalID", _NS)
              if g.get("schemeID") == cc.SIRET_SCHEME]
    is_piece = PIECE_ID.fullmatch(ident) is not None
    ack = ref.getparent()
    return StatusRequest(
        index=index, status=first, piece_id=ident if is_piece else None,
        invoice_number=None if is_piece else ident, supplier_id=sirets[0] if sirets else None,
        reason=reason, comment=comment, at=_when(ack.find("ram:IssueDateTime", _NS)), location=loc,
        alternatives=() if first == named else tuple(shared[1:])), []


def _schema_problems(root: etree._Element, path: Path) -> list[Finding]:
    """The CDAR XSD's errors, each at its line, or ERR_VALIDATEUR when it cannot be loaded."""
    try:
        errors = schemas.schema_errors(Path(path).resolve(), root)
    except (etree.LxmlError, OSError) as exc:
        log.error("CDAR XSD %s cannot be loaded: %s", path, exc)
        return [codes.finding("ERR_VALIDATEUR", f"The CDAR schema {path} cannot be loaded: {exc}",
                              f"Le schéma CDAR {path} ne peut être chargé : {exc}", value=str(path), stage=STAGE)]
    return [syntax_problem(f"Schema {Path(path).name}: {e.message}", f"Schéma {Path(path).name} : {e.message}",
                           e.path or None, e.line, rule=e.type_name) for e in errors[:100]]

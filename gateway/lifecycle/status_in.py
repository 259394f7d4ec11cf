"""Status files in: the status changes a party asks for in a file.

Two forms (docs/lifecycle.md): the platform's `CPPStatut` holding
`CPPFactureStatuts` (AIFE CPPStatutPivot V1.19), as public recipients' software
sends it (status_in_xml.py), and a JSON object `{"statuses": [...]}`
(status_in_json.py). Each change asked becomes a `StatusRequest`; an entry
that cannot be read becomes Findings with its location while the others
still parse. Whether a change is allowed is not decided here
(gateway.lifecycle.machine.Machine.check does, once the piece is found).
The status files the gateway writes are gateway.outputs' (status_files.py).
Nothing here touches the store or the folders.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gateway.core import codes
from gateway.core.records import Finding
from gateway.lifecycle.machine import Machine
from gateway.lifecycle.status_in_cdar import cdar_xsd, cdv_rules, parse_cdar
from gateway.lifecycle.status_in_json import parse_json
from gateway.lifecycle.status_in_xml import parse_xml
from gateway.lifecycle.status_in_base import MAX_BYTES, STAGE, StatusRequest
from gateway.pipeline.attachments import AttachmentLimits
from gateway.rules import manifest

STATUS_XSD = "CPPStatutPivot_V1_19.xsd"
SHIPPED_STATUS_XSD = f"aife/{STATUS_XSD}"  # in schemas/
_SNIFF = 65536
_ROOT = re.compile(rb"^(?:\s|<\?[^>]*\?>|<!--.*?-->)*<CPPStatut[\s>/]", re.S)
_CDAR_ROOT = re.compile(
    rb"^(?:\s|<\?[^>]*\?>|<!--.*?-->)*<(?:[A-Za-z_][\w.-]*:)?CrossDomainAcknowledgementAndResponse[\s>/]", re.S)
_CDAR_NS = b"urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"


# --- sniffing ------------------------------------------------------------------

def _head(data: bytes) -> bytes:
    head = data[:_SNIFF]
    if head.startswith(b"\xef\xbb\xbf"):
        return head[3:]
    for bom, enc in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return head[2:].decode(enc, "ignore").encode("utf-8")
    return head


def is_status_file(data: bytes) -> bool:
    """A CPPStatut root holding CPPFactureStatuts, a CDAR (the reform's
    life-cycle message), or a JSON object with "statuses" (looked for in the
    first 64 KB only)."""
    head = _head(data)
    if _ROOT.match(head):
        return b"<CPPFactureStatuts" in head
    if _CDAR_ROOT.match(head):
        return _CDAR_NS in head
    stripped = head.lstrip()
    return stripped.startswith(b"{") and re.search(rb'"statuses"\s*:', stripped) is not None


# --- reading ---------------------------------------------------------------------

def read_status_file(settings: Any, data: bytes) -> tuple[Machine, list[StatusRequest], list[Finding]]:
    """A party's status file read as its home says: the home's machine, its
    status XSD, its `[attachments]` limits and its file size limit."""
    machine = Machine.load(settings)  # cached per file and modification time
    requests, problems = parse_status_file(data, machine, xsd=status_xsd(settings),
                                           limits=AttachmentLimits.from_settings(settings),
                                           max_bytes=settings.max_file_bytes, cdar=cdar_xsd(settings),
                                           cdar_rules=(lambda d: cdv_rules(settings, d)) if settings.schematron
                                           else None)
    return machine, requests, problems


def parse_status_file(data: bytes, machine: Machine, *, xsd: Path | None = None,
                      limits: AttachmentLimits | None = None,
                      max_bytes: int | None = None, cdar: Path | None = None,
                      cdar_rules: Any = None) -> tuple[list[StatusRequest], list[Finding]]:
    """The status changes a file asks for, and why the others cannot be read.

    `xsd`: CPPStatutPivot_V1_19.xsd, to validate an XML file with it as well
    (see `status_xsd`); the built-in structure checks run in any case.
    `limits`: attachment rules for JSON attachments (default: the platform's).
    `max_bytes`: the largest file read (default MAX_BYTES).
    `cdar`: the CDAR D22B XSD (cdar_xsd), `cdar_rules`: data -> the BR-FR-CDV
    findings (cdv_rules), for a CDAR; None skips each.
    """
    most = MAX_BYTES if max_bytes is None else max_bytes
    if not data.strip():
        return [], [codes.finding("IRR_VIDE_F", "Empty status file", "Fichier de statuts vide", stage=STAGE)]
    if len(data) > most:
        return [], [codes.finding("IRR_TAILLE_F", f"Status file larger than {most} bytes",
                                  f"Fichier de statuts de plus de {most} octets", value=str(len(data)),
                                  stage=STAGE)]
    head = _head(data).lstrip()
    if head.startswith(b"<"):
        if _CDAR_ROOT.match(head):
            return parse_cdar(data, machine, cdar, cdar_rules)
        return parse_xml(data, machine, xsd)
    if head.startswith(b"{") or head.startswith(b"["):
        return parse_json(data, machine, limits or AttachmentLimits())
    return [], [codes.finding(
        "IRR_TYPE_F", "Not a status file: expected a CPPStatut XML, a CDAR or a JSON object with \"statuses\"",
        "Pas un fichier de statuts : attendu un XML CPPStatut, un CDAR ou un objet JSON avec « statuses »", stage=STAGE)]


def status_xsd(settings: Any) -> Path | None:
    """CPPStatutPivot_V1_19.xsd: `[lifecycle] status_xsd` (relative to the
    home), else the first found under `[validation] schema_dirs`, else the
    one shipped in schemas/aife (checked against schemas/MANIFEST.toml). A
    configured path is returned even when missing, and the shipped one even
    when altered: every XML status file is then refused with ERR_VALIDATEUR,
    never read unchecked."""
    given = settings.section("lifecycle").get("status_xsd") if settings is not None else None
    if given:
        p = Path(str(given))
        return p if p.is_absolute() else Path(settings.home) / p
    for d in getattr(settings, "schema_dirs", ()) or ():
        hit = _find_xsd(str(d))
        if hit:
            return hit
    root = manifest.root_of(settings)
    try:
        return manifest.locate(root, SHIPPED_STATUS_XSD).path
    except manifest.ArtefactError:  # a name no file has: the status files are refused, naming why
        return root / f"{SHIPPED_STATUS_XSD} (does not match {manifest.MANIFEST})"


_found: dict[str, Path | None] = {}


def _find_xsd(folder: str) -> Path | None:
    if folder not in _found:
        d = Path(folder)
        hits = [d / STATUS_XSD] if (d / STATUS_XSD).is_file() else sorted(d.rglob(STATUS_XSD)) if d.is_dir() else []
        _found[folder] = hits[0] if hits else None
    return _found[folder]


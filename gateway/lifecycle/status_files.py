"""Status files: status changes asked by partners (in), and status changes
told to partners (out).

In, two forms (docs/lifecycle.md): the platform's `CPPStatut` holding
`CPPFactureStatuts` (AIFE CPPStatutPivot V1.19), as public recipients' software
sends it, and a JSON object `{"statuses": [...]}`. Each change asked becomes a
`StatusRequest`; an entry that cannot be read becomes Findings with its
location while the others still parse. Whether a change is allowed is not
decided here (gateway.lifecycle_rules.Machine.check does, once the piece is
found).

Out, the same two forms, one entry per `StatusNotice`; the XML is valid
against CPPStatutPivot_V1_19.xsd and the JSON adds the reform's CDV code.
Nothing here touches the store or the folders.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.core import codes
from gateway.store import db
from gateway.core import xmlsafe
from gateway.rules import xsd as schemas
from gateway.pipeline.attachments import Attachment, AttachmentLimits, TooBig, check_one, decode_base64
from gateway.core.config import MB
from gateway.lifecycle.machine import CORRECTION_KEYS, Machine
from gateway.core.invoice import siret_error
from gateway.outputs.reports import edi_id
from gateway.core.records import Document, Finding, Location

log = logging.getLogger("gateway.status_files")

STAGE = "status-file"
STATUS_XSD = "CPPStatutPivot_V1_19.xsd"
JSON_VERSION = 1

MAX_BYTES = 120 * MB  # like an invoice file ([intake] max_file_mb): COMPLETEE may carry attachments
MAX_ENTRIES = 10_000  # status changes in one file
MAX_TEXT = 4000  # characters of a reason or a comment
MAX_ID = 100  # characters of an identifier (piece id, invoice number, supplier id, correction value)
MAX_ATTACHMENTS = 20  # per status change

# The gateway's piece ids: <flow id>-<index>, e.g. F20261122091501-1a2b3c4d-001 (gateway/store.py).
PIECE_ID = re.compile(r"F\d{14}-[0-9a-f]{8}-\d{3,}")
_DATETIME = re.compile(r"-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_DATE = re.compile(r"-?\d{4}-\d{2}-\d{2}(Z|[+-]\d{2}:\d{2})?")
_SNIFF = 65536
_ROOT = re.compile(rb"^(?:\s|<\?[^>]*\?>|<!--.*?-->)*<CPPStatut[\s>/]", re.S)


class StatusFileError(ValueError):
    """A notice cannot be written in the platform's format (e.g. no 14-digit debtor SIRET)."""


@dataclass(frozen=True)
class StatusRequest:
    """One status change asked in a file."""

    index: int  # 1-based position in the file
    status: str  # status name (XML IdStatut numbers are mapped to names through the machine)
    piece_id: str | None  # the gateway's piece id
    invoice_number: str | None
    supplier_id: str | None  # with invoice_number, the other way to name a piece
    reason: str | None  # motif
    comment: str | None
    at: datetime | None
    correction: tuple[tuple[str, str], ...] = ()  # recycling / validator correction: (key, new value)
    attachments: tuple[Document, ...] = ()  # completing (COMPLETEE): files given base64 in JSON
    location: Location | None = None  # XPath + line in XML, JSON pointer ("/statuses/0") in JSON
    debtor_siret: str | None = None  # XML Debiteur/Identifiant, JSON debtor_siret: read back, not checked


@dataclass(frozen=True)
class StatusNotice:
    """One status change told to a party."""

    piece_id: str
    invoice_number: str | None
    invoice_date: date | None
    cadre: str
    supplier_id: str | None
    supplier_name: str | None
    supplier_country: str | None
    debtor_siret: str | None
    debtor_name: str | None
    service_code: str | None
    status: str
    previous: str | None
    reason: str | None
    comment: str | None
    at: datetime
    by_role: str


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
    """A CPPStatut root holding CPPFactureStatuts, or a JSON object with "statuses"
    (looked for in the first 64 KB only)."""
    head = _head(data)
    if _ROOT.match(head):
        return b"<CPPFactureStatuts" in head
    stripped = head.lstrip()
    return stripped.startswith(b"{") and re.search(rb'"statuses"\s*:', stripped) is not None


# --- reading ---------------------------------------------------------------------

def read_status_file(settings: Any, data: bytes) -> tuple[Machine, list[StatusRequest], list[Finding]]:
    """A party's status file read as its home says: the home's machine, its
    status XSD, its `[attachments]` limits and its file size limit."""
    machine = Machine.load(settings)  # cached per file and modification time
    requests, problems = parse_status_file(data, machine, xsd=status_xsd(settings),
                                           limits=AttachmentLimits.from_settings(settings),
                                           max_bytes=settings.max_file_bytes)
    return machine, requests, problems


def parse_status_file(data: bytes, machine: Machine, *, xsd: Path | None = None,
                      limits: AttachmentLimits | None = None,
                      max_bytes: int | None = None) -> tuple[list[StatusRequest], list[Finding]]:
    """The status changes a file asks for, and why the others cannot be read.

    `xsd`: CPPStatutPivot_V1_19.xsd, to validate an XML file with it as well
    (see `status_xsd`); the built-in structure checks run in any case.
    `limits`: attachment rules for JSON attachments (default: the platform's).
    `max_bytes`: the largest file read (default MAX_BYTES).
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
        return _parse_xml(data, machine, xsd)
    if head.startswith(b"{") or head.startswith(b"["):
        return _parse_json(data, machine, limits or AttachmentLimits())
    return [], [codes.finding(
        "IRR_TYPE_F", "Not a status file: expected a CPPStatut XML or a JSON object with \"statuses\"",
        "Pas un fichier de statuts : attendu un XML CPPStatut ou un objet JSON avec « statuses »", stage=STAGE)]


def _syntax(en: str, fr: str, xpath: str | None, line: int | None = None, value: str | None = None,
            rule: str | None = None) -> Finding:
    return codes.finding("IRR_SYNTAX", en, fr, location=Location(xpath=xpath, line=line), value=value,
                         rule=rule, stage=STAGE)


# XML: a small checker for what CPPStatutPivot_V1_19.xsd requires, so the
# default needs no XSD on disk and says plainly what is wrong.

Spec = tuple[tuple[str, int, int | None], ...]  # (element, min, max) in sequence order
_ROOT_SPEC: Spec = (("Enveloppe", 1, 1), ("CPPFactureStatuts", 1, 1))
_ENVELOPE: Spec = (("EnveloppeUnitaire", 1, None),)
_ENV_UNIT: Spec = (("Parametres", 1, 1), ("Partenaires", 1, 1))
_PARAMS: Spec = (("ParametreIndiv", 2, None),)
_PARAM: Spec = (("Code", 1, 1), ("Valeurparametre", 1, 1), ("Note", 0, 1))
_PARTNERS: Spec = (("Recepteur", 1, 1), ("Emetteur", 1, 1))
_PARTNER: Spec = (("Id", 1, 1), ("Libelle", 0, 1), ("Note", 0, 1))
_STATUSES: Spec = (("CPPFactureStatutUnitaire", 1, None),)
_UNIT: Spec = (("Fournisseur", 1, 1), ("Debiteur", 1, 1), ("DonneesStatut", 1, 1))
_SUPPLIER: Spec = (("TypeIdentifiant", 1, 1), ("Identifiant", 1, 1), ("RaisonSociale", 1, 1), ("CodePays", 0, 1))
_DEBTOR: Spec = (("TypeIdentifiant", 1, 1), ("Identifiant", 1, 1), ("Nom", 0, 1), ("CodeService", 0, 1),
                 ("NomService", 0, 1))
_DATA: Spec = (("IdStatut", 1, 1), ("ComplementStatut", 0, 1), ("Commentaire", 0, 1), ("Horodatage", 1, 1),
               ("Producteur", 0, 1), ("IdFacture", 1, 1), ("DateFacture", 0, 1), ("IdMandatDP", 0, 1))


def _elements(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _sequence(el: etree._Element, spec: Spec, path: str) -> tuple[dict[str, list[etree._Element]], list[Finding]]:
    """Match `el`'s children against a sequence; the children by name, and what
    is wrong (the first misplaced element stops the walk: one clear message)."""
    found: dict[str, list[etree._Element]] = {name: [] for name, _, _ in spec}
    problems: list[Finding] = []
    if (el.text or "").strip() or any((c.tail or "").strip() for c in el):
        problems.append(_syntax(f"{path}: text is not allowed here, only elements",
                                f"{path} : texte interdit ici, seulement des éléments", path, el.sourceline))
    children = _elements(el)
    names = [n for n, _, _ in spec]
    k = 0
    for pos, child in enumerate(children):
        name = child.tag
        if xmlsafe.namespace(name):
            problems.append(_syntax(
                f"{path}: element {name} has a namespace; CPPStatut elements have none",
                f"{path} : l'élément {name} a un espace de noms ; les éléments CPPStatut n'en ont pas",
                path, child.sourceline, value=name))
            return found, problems
        if name not in names[k:]:
            if name in names[:k]:
                en = f"{path}: {name} is out of order (expected, in this order: {', '.join(names)})"
                fr = f"{path} : {name} n'est pas à sa place (ordre attendu : {', '.join(names)})"
            else:
                en = f"{path}: unexpected element {name} (expected, in this order: {', '.join(names)})"
                fr = f"{path} : élément {name} inattendu (attendus, dans cet ordre : {', '.join(names)})"
            problems.append(_syntax(en, fr, f"{path}/{name}", child.sourceline, value=name))
            return found, problems
        later = {c.tag for c in children[pos:]}
        while names[k] != name:
            req, got = spec[k][1], len(found[names[k]])
            if got < req:
                if names[k] in later:  # present, but after this one
                    problems.append(_syntax(
                        f"{path}: {names[k]} must come before {name} (expected, in this order: {', '.join(names)})",
                        f"{path} : {names[k]} doit précéder {name} (ordre attendu : {', '.join(names)})",
                        f"{path}/{names[k]}", child.sourceline, value=names[k]))
                    return found, problems
                problems.append(_missing(names[k], req, got, path, child.sourceline, before=name))
            k += 1
        found[name].append(child)
        most = spec[k][2]
        if most is not None and len(found[name]) > most:
            problems.append(_syntax(
                f"{path}: {name} may appear at most {most} time(s)",
                f"{path} : {name} ne peut apparaître que {most} fois au plus",
                f"{path}/{name}[{len(found[name])}]", child.sourceline, value=name))
            return found, problems
    for name, req, _ in spec[k:]:
        if len(found[name]) < req:
            problems.append(_missing(name, req, len(found[name]), path, el.sourceline))
    return found, problems


def _missing(name: str, req: int, got: int, path: str, line: int | None, before: str | None = None) -> Finding:
    where_en = f" before {before}" if before else ""
    where_fr = f" avant {before}" if before else ""
    if req == 1:
        return _syntax(f"{path}: element {name} is missing{where_en}", f"{path} : élément {name} absent{where_fr}",
                       path, line, value=name)
    return _syntax(f"{path}: {name} must appear at least {req} times, found {got}",
                   f"{path} : {name} doit apparaître au moins {req} fois, trouvé {got}", path, line, value=name)


def _leaf(el: etree._Element, path: str) -> tuple[str, list[Finding]]:
    if _elements(el):
        return "", [_syntax(f"{path}: {el.tag} holds elements; a value was expected",
                            f"{path} : {el.tag} contient des éléments ; une valeur était attendue", path, el.sourceline)]
    return (el.text or "").strip(), []


def _value_problem(path: str, el: etree._Element, en: str, fr: str, value: str) -> Finding:
    return _syntax(f"{path}: {en}, not '{value}'", f"{path} : {fr}, et non « {value} »", path, el.sourceline,
                   value=value[:200], rule="xsd-value")


def _check_envelope(env: etree._Element) -> list[Finding]:
    base = "/CPPStatut/Enveloppe"
    found, problems = _sequence(env, _ENVELOPE, base)
    for i, unit in enumerate(found["EnveloppeUnitaire"], 1):
        up = f"{base}/EnveloppeUnitaire[{i}]"
        parts, p = _sequence(unit, _ENV_UNIT, up)
        problems += p
        for params in parts["Parametres"]:
            got, p = _sequence(params, _PARAMS, f"{up}/Parametres")
            problems += p
            for j, param in enumerate(got["ParametreIndiv"], 1):
                pp = f"{up}/Parametres/ParametreIndiv[{j}]"
                fields, p = _sequence(param, _PARAM, pp)
                problems += p
                for code in fields["Code"]:
                    text, p = _leaf(code, f"{pp}/Code")
                    problems += p
                    if not p and len(code.text or "") != 5:
                        problems.append(_value_problem(f"{pp}/Code", code, "a parameter code is 5 characters",
                                                       "un code de paramètre fait 5 caractères", code.text or ""))
        for partners in parts["Partenaires"]:
            got, p = _sequence(partners, _PARTNERS, f"{up}/Partenaires")
            problems += p
            for role in ("Recepteur", "Emetteur"):
                for partner in got[role]:
                    fields, p = _sequence(partner, _PARTNER, f"{up}/Partenaires/{role}")
                    problems += p
                    for ident in fields["Id"]:
                        raw = ident.text or ""
                        if not 3 <= len(raw) <= 8:
                            problems.append(_value_problem(
                                f"{up}/Partenaires/{role}/Id", ident, "a partner id is 3 to 8 characters",
                                "un identifiant de partenaire fait 3 à 8 caractères", raw))
    return problems


def _parse_xml(data: bytes, machine: Machine, xsd: Path | None) -> tuple[list[StatusRequest], list[Finding]]:
    tree, problems = xmlsafe.parse(data, stage=STAGE)
    if tree is None:
        return [], problems
    root = tree.getroot()
    if root.tag != "CPPStatut":
        return [], [_syntax(f"The root element must be CPPStatut (no namespace), not {root.tag}",
                            f"L'élément racine doit être CPPStatut (sans espace de noms), et non {root.tag}",
                            "/", root.sourceline, value=root.tag)]
    if any(c.tag == "CPPFluxStatuts" for c in _elements(root)):
        return [], [_syntax(
            "This CPPStatut holds CPPFluxStatuts (a flow report); status changes go in CPPFactureStatuts",
            "Ce CPPStatut contient CPPFluxStatuts (compte rendu de flux) ; les changements de statut vont dans "
            "CPPFactureStatuts", "/CPPStatut/CPPFluxStatuts", root.sourceline, value="CPPFluxStatuts")]
    found, problems = _sequence(root, _ROOT_SPEC, "/CPPStatut")
    for env in found["Enveloppe"]:
        problems += _check_envelope(env)
    units: list[etree._Element] = []
    for statuses in found["CPPFactureStatuts"]:
        got, p = _sequence(statuses, _STATUSES, "/CPPStatut/CPPFactureStatuts")
        problems += p
        units = got["CPPFactureStatutUnitaire"]
    if problems:  # the envelope or the frame is wrong: nothing in the file can be trusted
        return [], problems
    if len(units) > MAX_ENTRIES:
        return [], [codes.finding("IRR_TAILLE_F", f"{len(units)} status changes in one file; at most {MAX_ENTRIES}",
                                  f"{len(units)} changements de statut dans un fichier ; {MAX_ENTRIES} au plus",
                                  value=str(len(units)), stage=STAGE)]
    xsd_problems = _xsd_problems(root, xsd, units) if xsd else {}
    if None in xsd_problems:
        return [], xsd_problems[None]
    requests: list[StatusRequest] = []
    findings: list[Finding] = []
    for i, unit in enumerate(units, 1):
        req, p = _xml_unit(i, unit, machine)
        p = p or xsd_problems.get(i, [])
        findings += p
        if req is not None and not p:
            requests.append(req)
    return requests, findings


def _xml_unit(index: int, unit: etree._Element, machine: Machine) -> tuple[StatusRequest | None, list[Finding]]:
    path = f"/CPPStatut/CPPFactureStatuts/CPPFactureStatutUnitaire[{index}]"
    parts, problems = _sequence(unit, _UNIT, path)
    if problems:
        return None, problems
    values: dict[str, tuple[str, etree._Element]] = {}
    for part, spec in (("Fournisseur", _SUPPLIER), ("Debiteur", _DEBTOR), ("DonneesStatut", _DATA)):
        el = parts[part][0]
        fields, p = _sequence(el, spec, f"{path}/{part}")
        problems += p
        for name, els in fields.items():
            for child in els:
                text, p = _leaf(child, f"{path}/{part}/{name}")
                problems += p
                values[f"{part}/{name}"] = (text, child)
    if problems:
        return None, problems

    def check(key: str, ok: bool, en: str, fr: str) -> None:
        text, el = values[key]
        if not ok:
            problems.append(_value_problem(f"{path}/{key}", el, en, fr, text))

    v = {k: t for k, (t, _) in values.items()}
    check("Fournisseur/TypeIdentifiant", v["Fournisseur/TypeIdentifiant"] in set("1234567"),
          "the supplier id type is 1 to 7", "le type d'identifiant du fournisseur va de 1 à 7")
    check("Fournisseur/Identifiant", 0 < len(v["Fournisseur/Identifiant"]) <= MAX_ID,
          f"the supplier id is 1 to {MAX_ID} characters", f"l'identifiant du fournisseur fait 1 à {MAX_ID} caractères")
    if "Fournisseur/CodePays" in v:
        check("Fournisseur/CodePays", len(v["Fournisseur/CodePays"]) == 2, "a country code is 2 letters",
              "un code pays fait 2 lettres")
    check("Debiteur/TypeIdentifiant", v["Debiteur/TypeIdentifiant"] == "1", "the debtor id type is 1 (SIRET)",
          "le type d'identifiant du débiteur est 1 (SIRET)")
    check("Debiteur/Identifiant", len(v["Debiteur/Identifiant"]) == 14, "the debtor SIRET is 14 characters",
          "le SIRET du débiteur fait 14 caractères")
    if "Debiteur/CodeService" in v:
        check("Debiteur/CodeService", len(v["Debiteur/CodeService"]) <= 100, "a service code is at most 100 characters",
              "un code service fait 100 caractères au plus")
    id_status = v["DonneesStatut/IdStatut"]
    check("DonneesStatut/IdStatut", id_status.isdigit() and 1 <= int(id_status) <= 41,
          "IdStatut is a number from 01 to 41", "IdStatut est un nombre de 01 à 41")
    check("DonneesStatut/Horodatage", _datetime(v["DonneesStatut/Horodatage"]) is not None,
          "Horodatage is an xs:dateTime (2026-01-31T14:05:00Z)", "Horodatage est un xs:dateTime (2026-01-31T14:05:00Z)")
    check("DonneesStatut/IdFacture", 0 < len(v["DonneesStatut/IdFacture"]) <= MAX_ID,
          f"IdFacture is 1 to {MAX_ID} characters", f"IdFacture fait 1 à {MAX_ID} caractères")
    if "DonneesStatut/DateFacture" in v:
        check("DonneesStatut/DateFacture", _is_date(v["DonneesStatut/DateFacture"]),
              "DateFacture is an xs:date (2026-01-31)", "DateFacture est un xs:date (2026-01-31)")
    if "DonneesStatut/Commentaire" in v:
        check("DonneesStatut/Commentaire", len(v["DonneesStatut/Commentaire"]) <= MAX_TEXT,
              f"a comment is at most {MAX_TEXT} characters", f"un commentaire fait {MAX_TEXT} caractères au plus")
    if problems:
        return None, problems

    status_el = values["DonneesStatut/IdStatut"][1]
    status = machine.by_pivot(id_status)
    if status is None:
        return None, [codes.finding(
            "STATUT_INCONNU", f"IdStatut {id_status} is not a status of this gateway",
            f"IdStatut {id_status} n'est pas un statut de cette passerelle",
            location=Location(xpath=f"{path}/DonneesStatut/IdStatut", line=status_el.sourceline), value=id_status,
            stage=STAGE)]
    complement = v.get("DonneesStatut/ComplementStatut", "")
    if machine.known(complement) and complement != status:
        return None, [codes.finding(
            "STATUT_INCONNU", f"IdStatut {id_status} is {status} but ComplementStatut says {complement}",
            f"IdStatut {id_status} correspond à {status} mais ComplementStatut indique {complement}",
            location=Location(xpath=f"{path}/DonneesStatut/ComplementStatut", line=status_el.sourceline),
            value=complement, stage=STAGE)]
    # One text in the XML: the motif when the status needs one, else a comment.
    text = v.get("DonneesStatut/Commentaire") or None
    needs_reason = machine.info(status).needs_reason
    ident = v["DonneesStatut/IdFacture"]
    is_piece = PIECE_ID.fullmatch(ident) is not None
    return StatusRequest(
        index=index, status=status, piece_id=ident if is_piece else None,
        invoice_number=None if is_piece else ident, supplier_id=v["Fournisseur/Identifiant"],
        reason=text if needs_reason else None, comment=None if needs_reason else text,
        at=_datetime(v["DonneesStatut/Horodatage"]),
        location=Location(xpath=path, line=unit.sourceline), debtor_siret=v["Debiteur/Identifiant"]), []


def _datetime(text: str) -> datetime | None:
    """An xs:dateTime as an aware datetime (no zone: UTC); None when it is not one."""
    m = _DATETIME.fullmatch(text)
    if not m or text.startswith("-"):
        return None
    if m.group(1):  # fromisoformat keeps at most microseconds
        text = text.replace(m.group(1), m.group(1)[:7].ljust(7, "0"), 1)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:  # 2026-13-45T25:00:00
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _is_date(text: str) -> bool:
    if not _DATE.fullmatch(text) or text.startswith("-"):
        return False
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        return False
    return True


def _xsd_problems(root: etree._Element, path: Path, units: list[etree._Element]) -> dict[int | None, list[Finding]]:
    """XSD errors by unit index (1-based), None for errors outside any unit
    (or a schema that cannot be loaded: ERR_VALIDATEUR, as for invoices)."""
    try:
        errors = schemas.schema_errors(Path(path).resolve(), root)
    except (etree.LxmlError, OSError) as exc:
        log.error("status XSD %s cannot be loaded: %s", path, exc)
        return {None: [codes.finding(
            "ERR_VALIDATEUR", f"The status schema {path} cannot be loaded: {exc}",
            f"Le schéma des statuts {path} ne peut être chargé : {exc}", value=str(path), stage=STAGE)]}
    starts = [(u.sourceline or 0, i) for i, u in enumerate(units, 1)]
    out: dict[int | None, list[Finding]] = {}
    for err in errors:
        owner = None
        for line, i in starts:
            if err.line >= line:
                owner = i
        if starts and err.line < starts[0][0]:
            owner = None
        out.setdefault(owner, []).append(_syntax(
            f"Schema {path.name}: {err.message}", f"Schéma {path.name} : {err.message}", err.path or None, err.line,
            rule=err.type_name))
    return out


def status_xsd(settings: Any) -> Path | None:
    """CPPStatutPivot_V1_19.xsd when the deployment gives one: `[lifecycle]
    status_xsd` (relative to the home), else the first found under
    `[validation] schema_dirs`. A configured path is returned even when
    missing: every XML status file is then refused with ERR_VALIDATEUR, never
    read unchecked."""
    given = settings.section("lifecycle").get("status_xsd") if settings is not None else None
    if given:
        p = Path(str(given))
        return p if p.is_absolute() else Path(settings.home) / p
    for d in getattr(settings, "schema_dirs", ()) or ():
        hit = _find_xsd(str(d))
        if hit:
            return hit
    return None


_found: dict[str, Path | None] = {}


def _find_xsd(folder: str) -> Path | None:
    if folder not in _found:
        d = Path(folder)
        hits = [d / STATUS_XSD] if (d / STATUS_XSD).is_file() else sorted(d.rglob(STATUS_XSD)) if d.is_dir() else []
        _found[folder] = hits[0] if hits else None
    return _found[folder]


# JSON ----------------------------------------------------------------------------

def _parse_json(data: bytes, machine: Machine, limits: AttachmentLimits) -> tuple[list[StatusRequest], list[Finding]]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        return [], [_syntax(f"JSON must be UTF-8: {exc.reason} at byte {exc.start}",
                            f"Le JSON doit être en UTF-8 : {exc.reason} à l'octet {exc.start}", "/", None, rule="json")]
    except json.JSONDecodeError as exc:
        return [], [_syntax(f"Not valid JSON: {exc.msg}", f"JSON invalide : {exc.msg}", "/", exc.lineno, rule="json")]
    except (RecursionError, ValueError) as exc:  # nesting too deep, numbers too long
        return [], [_syntax(f"Unreadable JSON: {exc}", f"JSON illisible : {exc}", "/", None, rule="json")]
    if not isinstance(doc, dict) or not isinstance(doc.get("statuses"), list):
        return [], [_syntax('A JSON status file is an object {"statuses": [...]}',
                            'Un fichier de statuts JSON est un objet {"statuses": [...]}', "/statuses", None,
                            rule="json")]
    entries = doc["statuses"]
    if not entries:
        return [], [codes.finding("IRR_VIDE_F", "The status file holds no status change",
                                  "Le fichier ne contient aucun changement de statut",
                                  location=Location(xpath="/statuses"), stage=STAGE)]
    if len(entries) > MAX_ENTRIES:
        return [], [codes.finding("IRR_TAILLE_F", f"{len(entries)} status changes in one file; at most {MAX_ENTRIES}",
                                  f"{len(entries)} changements de statut dans un fichier ; {MAX_ENTRIES} au plus",
                                  value=str(len(entries)), location=Location(xpath="/statuses"), stage=STAGE)]
    requests: list[StatusRequest] = []
    findings: list[Finding] = []
    for i, entry in enumerate(entries, 1):
        req, problems = _json_entry(i, entry, machine, limits)
        findings += problems
        if req is not None:
            requests.append(req)
    return requests, findings


class _Entry:
    """Reads one JSON entry, gathering every problem with its JSON pointer."""

    def __init__(self, index: int, entry: dict[str, Any]) -> None:
        self.index = index
        self.entry = entry
        self.pointer = f"/statuses/{index - 1}"
        self.problems: list[Finding] = []

    def loc(self, key: str | None = None) -> Location:
        return Location(xpath=f"{self.pointer}/{key}" if key else self.pointer)

    def bad(self, key: str, en: str, fr: str, value: Any = None, code: str = "IRR_SYNTAX") -> None:
        self.problems.append(codes.finding(
            code, f"Status change {self.index}: {en}", f"Changement de statut {self.index} : {fr}",
            location=self.loc(key), value=None if value is None else str(value)[:200], stage=STAGE))

    def of(self, key: str, kind: type, en: str, fr: str) -> Any:
        """The entry's `key` if it is a `kind` (None if absent; None and a problem if another type)."""
        raw = self.entry.get(key)
        if raw is not None and not isinstance(raw, kind):
            self.bad(key, f'"{key}" must be {en}', f"« {key} » doit être {fr}")
            return None
        return raw

    def text(self, key: str, limit: int, alias: str | None = None) -> str | None:
        used = key if key in self.entry or alias is None else alias
        v = self.entry.get(used)
        if v is None:
            return None
        if isinstance(v, (int, float)) and not isinstance(v, bool) and limit == MAX_ID:
            v = str(v)  # a number given as an identifier
        if not isinstance(v, str):
            self.bad(used, f'"{used}" must be a string', f"« {used} » doit être une chaîne", type(v).__name__)
            return None
        v = v.strip()
        if len(v) > limit:
            self.bad(used, f'"{used}" is longer than {limit} characters', f"« {used} » dépasse {limit} caractères",
                     len(v))
            return None
        return v or None


def _json_entry(index: int, entry: Any, machine: Machine,
                limits: AttachmentLimits) -> tuple[StatusRequest | None, list[Finding]]:
    if not isinstance(entry, dict):
        e = _Entry(index, {})
        e.bad("", "must be an object", "doit être un objet", type(entry).__name__)
        return None, e.problems
    e = _Entry(index, entry)
    status = e.text("status", MAX_ID)
    if status is None and entry.get("pivot_id") is not None:
        pivot = e.text("pivot_id", MAX_ID)
        status = machine.by_pivot(pivot) if pivot else None
        if status is None and pivot:
            e.bad("pivot_id", f"pivot_id {pivot} is not a status of this gateway",
                  f"pivot_id {pivot} n'est pas un statut de cette passerelle", pivot, code="STATUT_INCONNU")
    elif status is not None:
        status = status.upper()
        if not machine.known(status):
            e.bad("status", f"unknown status {status}", f"statut inconnu {status}", status, code="STATUT_INCONNU")
    elif not e.problems:
        e.bad("status", '"status" is missing', "« status » absent", code="STATUT_INCONNU")
    piece_id = e.text("piece_id", MAX_ID)
    number = e.text("invoice_number", MAX_ID)
    supplier = e.text("supplier", MAX_ID, alias="supplier_id")
    if not piece_id and not (number and supplier):
        e.bad("piece_id", 'name the piece with "piece_id", or "invoice_number" and "supplier"',
              "désignez la pièce par « piece_id », ou « invoice_number » et « supplier »", code="PIECE_INCONNUE")
    debtor = e.text("debtor_siret", MAX_ID)
    reason = e.text("reason", MAX_TEXT)
    comment = e.text("comment", MAX_TEXT)
    at = None
    raw_at = e.text("at", MAX_ID)
    if raw_at is not None:
        at = _datetime(raw_at)
        if at is None:
            e.bad("at", '"at" must be an ISO 8601 date-time (2026-01-31T14:05:00Z)',
                  "« at » doit être une date-heure ISO 8601 (2026-01-31T14:05:00Z)", raw_at)
    correction = _correction(e)
    attachments = _attachments(e, limits)
    if e.problems or status is None:
        return None, e.problems
    return StatusRequest(index=index, status=status, piece_id=piece_id, invoice_number=number,
                         supplier_id=supplier, reason=reason, comment=comment, at=at, correction=correction,
                         attachments=attachments, location=e.loc(), debtor_siret=debtor), []


def _correction(e: _Entry) -> tuple[tuple[str, str], ...]:
    raw = e.of("correction", dict, "an object", "un objet")
    if raw is None:
        return ()
    out = []
    for key, value in raw.items():
        if key not in CORRECTION_KEYS:
            e.bad(f"correction/{key}", f"unknown correction {key}; allowed: {', '.join(CORRECTION_KEYS)}",
                  f"correction {key} inconnue ; permises : {', '.join(CORRECTION_KEYS)}", key)
        elif not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
            e.bad(f"correction/{key}", f"correction {key} must be a string of 1 to {MAX_ID} characters",
                  f"la correction {key} doit être une chaîne de 1 à {MAX_ID} caractères", value)
        else:
            out.append((key, value.strip()))
    return tuple(out)


def _attachments(e: _Entry, limits: AttachmentLimits) -> tuple[Document, ...]:
    raw = e.of("attachments", list, "a list", "une liste")
    if raw is None:
        return ()
    if len(raw) > MAX_ATTACHMENTS:
        e.bad("attachments", f"at most {MAX_ATTACHMENTS} attachments", f"{MAX_ATTACHMENTS} pièces jointes au plus",
              len(raw))
        return ()
    out: list[Document] = []
    total = 0
    for j, att in enumerate(raw):
        key = f"attachments/{j}"
        if not isinstance(att, dict) or not isinstance(att.get("name"), str) \
                or not isinstance(att.get("content_base64"), str) \
                or not isinstance(att.get("mime", "application/octet-stream"), str):
            e.bad(key, 'an attachment is {"name", "mime", "content_base64"} (strings)',
                  'une pièce jointe est {"name", "mime", "content_base64"} (chaînes)')
            continue
        name, mime = att["name"], att.get("mime") or "application/octet-stream"
        try:
            data = decode_base64(att["content_base64"], limits.max_bytes)
        except TooBig as big:
            e.problems.append(codes.finding(
                "IRR_TAILLE_PJ", f"Status change {e.index}: attachment '{name}' decodes to {big.size} bytes, more "
                f"than {limits.max_bytes}", f"Changement de statut {e.index} : la pièce jointe « {name} » fait "
                f"{big.size} octets une fois décodée, plus que {limits.max_bytes}", location=e.loc(key),
                value=str(big.size), stage=STAGE))
            continue
        except ValueError as exc:
            e.bad(f"{key}/content_base64", f"attachment '{name}' is not valid base64 ({exc})",
                  f"la pièce jointe « {name} » n'est pas du base64 valide ({exc})")
            continue
        problems = check_one(Attachment(name, data, mime, "json", where=f"{e.pointer}/{key}"), limits)
        if problems:
            e.problems += problems
            continue
        total += len(data)
        out.append(Document(name=name, mime=mime[:100], data=data, kind="02"))
    if total > limits.max_total_bytes:
        e.problems.append(codes.finding(
            "IRR_TAILLE_F", f"Status change {e.index}: attachments total {total} bytes; the limit is "
            f"{limits.max_total_bytes}", f"Changement de statut {e.index} : les pièces jointes font {total} octets ; "
            f"la limite est {limits.max_total_bytes}", location=e.loc("attachments"), value=str(total), stage=STAGE))
    return tuple(out)


# --- writing -----------------------------------------------------------------------

def _xml_text(n: StatusNotice, needs_reason: bool) -> str | None:
    """The XML carries one text: the motif first, then the comment."""
    first, second = (n.reason, n.comment) if needs_reason or n.reason else (n.comment, None)
    parts = [t.strip() for t in (first, second) if t and t.strip()]
    return " / ".join(dict.fromkeys(parts)) or None


def status_json(notices: Sequence[StatusNotice], machine: Machine) -> bytes:
    """{"statuses_version": 1, "statuses": [...]}, one entry per notice, readable
    back by parse_status_file."""
    entries = []
    for n in notices:
        info = machine.info(n.status)
        entries.append({
            "piece_id": n.piece_id,
            "invoice_number": n.invoice_number,
            "invoice_date": n.invoice_date.isoformat() if n.invoice_date else None,
            "cadre": n.cadre,
            "supplier": n.supplier_id,
            "supplier_name": n.supplier_name,
            "supplier_country": n.supplier_country,
            "debtor_siret": n.debtor_siret,
            "debtor_name": n.debtor_name,
            "service_code": n.service_code,
            "status": n.status,
            "label": info.label_fr,
            "final": info.final,
            "pivot_id": info.pivot_id,
            "cdv": info.cdv,
            "cdv_label": info.cdv_label,
            "previous": n.previous,
            "reason": n.reason,
            "comment": n.comment,
            "at": db.iso(n.at),
            "by_role": n.by_role,
        })
    return json.dumps({"statuses_version": JSON_VERSION, "statuses": entries}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")  # one line: the C encoder, 5x faster than indent


def status_xml(notices: Sequence[StatusNotice], machine: Machine, *, platform_id: str, receiver_id: str,
               receiver_name: str, flow_id: str | None = None, produced_at: datetime | None = None) -> bytes:
    """A CPPStatut holding CPPFactureStatuts, one CPPFactureStatutUnitaire per
    notice, valid against CPPStatutPivot_V1_19.xsd. IdStatut is the status's
    pivot number and ComplementStatut its name. StatusFileError when a notice
    lacks what the format requires (a 14-character debtor SIRET, a supplier)."""
    return status_xml_for(notices, machine, platform_id=platform_id, flow_id=flow_id,
                          produced_at=produced_at)(receiver_id, receiver_name)


def status_xml_for(notices: Sequence[StatusNotice], machine: Machine, *, platform_id: str,
                   flow_id: str | None = None,
                   produced_at: datetime | None = None) -> Callable[[str, str], bytes]:
    """The same CPPStatut for several receivers: built once, then written
    for each (receiver id, receiver name); only the envelope's Recepteur
    differs. Raises StatusFileError at once, as status_xml does."""
    from gateway.outputs.pivot import EU_COUNTRIES  # noqa: PLC0415 - only the writer needs it

    if not notices:
        raise StatusFileError("a CPPStatut needs at least one status")
    produced = produced_at or max(db.as_utc(n.at) for n in notices)
    fid = flow_id or "ST" + db.iso(produced)[:19].replace("-", "").replace(":", "").replace("T", "")
    root = etree.Element("CPPStatut", Version="1.19")
    env = etree.SubElement(etree.SubElement(root, "Enveloppe"), "EnveloppeUnitaire", NumOrdre="1")
    params = etree.SubElement(env, "Parametres")
    for i, (code, val) in enumerate((("DtPrd", db.iso(produced)[:10]), ("IdFlx", fid)), 1):
        p = etree.SubElement(params, "ParametreIndiv", NumOrdre=f"{i:04d}")
        etree.SubElement(p, "Code").text = code
        etree.SubElement(p, "Valeurparametre").text = val
    parts = etree.SubElement(env, "Partenaires")
    rec = etree.SubElement(parts, "Recepteur")
    rec_id, rec_name = etree.SubElement(rec, "Id"), etree.SubElement(rec, "Libelle")
    em = etree.SubElement(parts, "Emetteur")
    etree.SubElement(em, "Id").text = edi_id(platform_id)

    statuts = etree.SubElement(root, "CPPFactureStatuts", compteur=str(len(notices)))
    for i, n in enumerate(notices, 1):
        info = machine.info(n.status)
        unit = etree.SubElement(statuts, "CPPFactureStatutUnitaire", NumOrdre=str(i))
        sup = etree.SubElement(unit, "Fournisseur")
        ident = (n.supplier_id or "").strip()
        country = (n.supplier_country or "FR").strip().upper()
        if not ident:
            raise StatusFileError(f"piece {n.piece_id}: the supplier has no identifier")
        if len(ident) == 14 and ident.isdigit() and not siret_error(ident):
            kind = "1"
        else:  # 2: EU VAT id, 3: outside the EU (as the invoice pivot, gateway/pivot.py)
            kind = "2" if country in EU_COUNTRIES else "3"
        etree.SubElement(sup, "TypeIdentifiant").text = kind
        etree.SubElement(sup, "Identifiant").text = ident
        etree.SubElement(sup, "RaisonSociale").text = (n.supplier_name or ident).strip() or ident
        if len(country) == 2 and country.isalpha():
            etree.SubElement(sup, "CodePays").text = country
        deb = etree.SubElement(unit, "Debiteur")
        siret = (n.debtor_siret or "").strip()
        if len(siret) != 14:
            raise StatusFileError(f"piece {n.piece_id}: the debtor SIRET must be 14 characters, not {siret!r}")
        etree.SubElement(deb, "TypeIdentifiant").text = "1"
        etree.SubElement(deb, "Identifiant").text = siret
        if n.debtor_name:
            etree.SubElement(deb, "Nom").text = n.debtor_name
        if n.service_code:
            if len(n.service_code) > 100:
                raise StatusFileError(f"piece {n.piece_id}: the service code is longer than 100 characters")
            etree.SubElement(deb, "CodeService").text = n.service_code
        data = etree.SubElement(unit, "DonneesStatut")
        etree.SubElement(data, "IdStatut").text = info.pivot_id
        etree.SubElement(data, "ComplementStatut").text = info.name
        text = _xml_text(n, info.needs_reason)
        if text:
            etree.SubElement(data, "Commentaire").text = text
        etree.SubElement(data, "Horodatage").text = db.iso(n.at)
        etree.SubElement(data, "Producteur", Id=n.by_role)
        etree.SubElement(data, "IdFacture").text = n.invoice_number or n.piece_id
        if n.invoice_date:
            etree.SubElement(data, "DateFacture").text = n.invoice_date.isoformat()

    def for_receiver(receiver_id: str, receiver_name: str) -> bytes:
        rec_id.text, rec_name.text = edi_id(receiver_id), receiver_name
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    return for_receiver


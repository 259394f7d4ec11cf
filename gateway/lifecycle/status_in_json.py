"""Status files in, as JSON: an object `{"statuses": [...]}`, each entry one
StatusRequest; an entry that cannot be read becomes Findings with its JSON
pointer ("/statuses/0/at") while the others still parse. Attachments
(COMPLETEE) come base64, checked against the home's attachment rules.
"""
from __future__ import annotations

import json
from typing import Any

from gateway.core import codes
from gateway.core.records import Document, Finding, Location
from gateway.lifecycle.machine import Machine
from gateway.lifecycle.terms import CORRECTION_KEYS
from gateway.lifecycle.status_in_base import (
    MAX_ATTACHMENTS, MAX_ENTRIES, MAX_ID, MAX_TEXT, STAGE, StatusRequest, syntax_problem, xs_datetime,
)
from gateway.pipeline.attachments import Attachment, AttachmentLimits, TooBig, check_one, decode_base64


def parse_json(data: bytes, machine: Machine, limits: AttachmentLimits) -> tuple[list[StatusRequest], list[Finding]]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        return [], [syntax_problem(f"JSON must be UTF-8: {exc.reason} at byte {exc.start}",
                                   f"Le JSON doit être en UTF-8 : {exc.reason} à l'octet {exc.start}", "/", None,
                                   rule="json")]
    except json.JSONDecodeError as exc:
        return [], [syntax_problem(f"Not valid JSON: {exc.msg}", f"JSON invalide : {exc.msg}", "/", exc.lineno,
                                   rule="json")]
    except (RecursionError, ValueError) as exc:  # nesting too deep, numbers too long
        return [], [syntax_problem(f"Unreadable JSON: {exc}", f"JSON illisible : {exc}", "/", None, rule="json")]
    if not isinstance(doc, dict) or not isinstance(doc.get("statuses"), list):
        return [], [syntax_problem('A JSON status file is an object {"statuses": [...]}',
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
        at = xs_datetime(raw_at)
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


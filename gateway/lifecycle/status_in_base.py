"""A status change asked in a party's status file (`StatusRequest`), and
what the readers of its two forms share (status_in_xml.py, status_in_json.py):
the limits of what is read, the gateway's piece ids, the findings' form,
xs:dateTime and xs:date read as the platform's schema means them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

from gateway.core import codes
from gateway.core.config import MB
from gateway.core.records import Document, Finding, Location

STAGE = "status-file"

MAX_BYTES = 120 * MB  # like an invoice file ([intake] max_file_mb): COMPLETEE may carry attachments
MAX_ENTRIES = 10_000  # status changes in one file
MAX_TEXT = 4000  # characters of a reason or a comment
MAX_ID = 100  # characters of an identifier (piece id, invoice number, supplier id, correction value)
MAX_ATTACHMENTS = 20  # per status change

# The gateway's piece ids: <flow id>-<index>, e.g. F20261122091501-1a2b3c4d-001 (runtime/worker.py).
PIECE_ID = re.compile(r"F\d{14}-[0-9a-f]{8}-\d{3,}")
_DATETIME = re.compile(r"-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_DATE = re.compile(r"-?\d{4}-\d{2}-\d{2}(Z|[+-]\d{2}:\d{2})?")


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
    # CDAR: the other statuses the same CDV code names (205, 210...); the first the
    # sender may set on the piece applies (status_apply), else `status`, refused with its reason
    alternatives: tuple[str, ...] = ()


def syntax_problem(en: str, fr: str, xpath: str | None, line: int | None = None, value: str | None = None,
                   rule: str | None = None) -> Finding:
    """IRR_SYNTAX at an XPath (XML) or a JSON pointer, and a line when known."""
    return codes.finding("IRR_SYNTAX", en, fr, location=Location(xpath=xpath, line=line), value=value,
                         rule=rule, stage=STAGE)


def xs_datetime(text: str) -> datetime | None:
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


def is_xs_date(text: str) -> bool:
    if not _DATE.fullmatch(text) or text.startswith("-"):
        return False
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        return False
    return True


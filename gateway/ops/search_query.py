"""The search's query language, shared by `gateway search`, `gateway pieces`,
`gateway replay` and the web's /search page: one filter per name, the same
names on the command line (`--cadre A4`) and in the page's address
(`?cadre=A4`). Values are checked here, and an unknown one is refused with
the list of valid ones (a typo must not look like "nothing found").
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.invoice import PIECE_TYPES
from gateway.lifecycle.machine import Machine
from gateway.ops.query_names import FILTERS, Filter  # noqa: F401 - Filter: the callers' name
from gateway.store import db
from gateway.store.search import FoundPiece, PieceQuery

REFUSED = "IRRECEVABLE"  # the status of a piece refused at intake (routing.parties.new_piece)


class QueryError(ValueError):
    """A filter value the search does not know; the message lists the valid ones."""


FILTER_NAMES = tuple(f.name for f in FILTERS)


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in (value or "").split(",") if v.strip()))


def _known(name: str, given: Iterable[str], valid: Iterable[str], *, fold: bool = True) -> tuple[str, ...]:
    valid = list(valid)
    index = {v.upper() if fold else v: v for v in valid}
    out = []
    for g in given:
        key = g.upper() if fold else g
        if key not in index:
            raise QueryError(f"unknown {name} {g!r}; valid: {', '.join(valid)}")
        out.append(index[key])
    return tuple(out)


def _moment(name: str, value: str | None, *, end: bool = False) -> datetime | None:
    """A deposit bound: a day (until: the end of it) or an ISO datetime (UTC when naive)."""
    if not value:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day)
            return db.as_utc(start + timedelta(days=1) if end else start)
        return db.as_utc(datetime.fromisoformat(text))
    except ValueError:
        raise QueryError(f"{name}: not a date (YYYY-MM-DD) or ISO datetime: {value!r}") from None


def _day(name: str, value: str | None) -> str | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise QueryError(f"{name}: not a date (YYYY-MM-DD): {value!r}") from None


def statuses(machine: Machine) -> tuple[str, ...]:
    return (*(s.name for s in machine.statuses()), REFUSED)


def piece_types() -> tuple[str, ...]:
    return tuple(dict.fromkeys(("facture", "avoir", "facture d'acompte", *PIECE_TYPES.values())))


def build_query(settings: Settings, values: Mapping[str, str | None], *, accepted: bool = False,
                rejected: bool = False, due: bool = False, machine: Machine | None = None) -> PieceQuery:
    """The query the filters say (names as in FILTERS; empty values ignored).
    QueryError for an unknown name or value."""
    unknown = [k for k, v in values.items() if v and k not in FILTER_NAMES]
    if unknown:
        raise QueryError(f"unknown filter {unknown[0]!r}; valid: {', '.join(FILTER_NAMES)}")
    if accepted and rejected:
        raise QueryError("accepted and rejected pieces are exclusive: give one or neither")
    machine = machine or Machine.load(settings)
    v = {k: (values.get(k) or "").strip() or None for k in FILTER_NAMES}
    since, until = _moment("since", v["since"]), _moment("until", v["until"], end=True)
    if since and until and until <= since:
        raise QueryError("until comes before since")
    return PieceQuery(
        cadres=_known("cadre", _list(v["cadre"]), machine.cadres()),
        piece_types=_known("type", _list(v["type"]), piece_types(), fold=False),
        statuses=_known("status", _list(v["status"]), statuses(machine)),
        codes=_known("code", _list(v["code"]), sorted(codes.CODES)),
        partners=_list(v["partner"]),
        number=v["number"], billing_file=v["billing_file"], supplier=v["supplier"], recipient=v["recipient"],
        service=v["service"], file_name=v["file"], flow_id=v["flow"], since=since, until=until,
        issued_since=_day("issued_since", v["issued_since"]), issued_until=_day("issued_until", v["issued_until"]),
        valid=True if accepted else (False if rejected else None), due=due)


# --- one found piece as the exports give it ------------------------------------------------------

EXPORT_COLUMNS = ("piece_id", "flow_id", "partner", "file", "received_at", "cadre", "piece_type", "invoice_number",
                  "issue_date", "supplier", "recipient", "service", "valid", "status", "error_codes", "status_at",
                  "due_at", "link_id")


def export_row(p: FoundPiece) -> dict[str, object]:
    """A found piece as `--json` (one object a line) and `--csv` give it: the
    columns of EXPORT_COLUMNS, times in ISO UTC, codes a list (CSV: space-separated)."""
    return {"piece_id": p.id, "flow_id": p.flow_id, "partner": p.partner, "file": p.file_name,
            "received_at": db.iso(p.received_at), "cadre": p.cadre, "piece_type": p.piece_type,
            "invoice_number": p.invoice_number, "issue_date": p.issue_date, "supplier": p.supplier_id,
            "recipient": p.recipient_siret, "service": p.service_code, "valid": p.valid, "status": p.status,
            "error_codes": list(p.error_codes), "status_at": db.iso(p.status_at) if p.status_at else None,
            "due_at": db.iso(p.due_at) if p.due_at else None, "link_id": p.link_id}


def csv_cells(p: FoundPiece) -> list[object]:
    """A found piece as one CSV row of EXPORT_COLUMNS. A text a partner chose
    (file name, invoice number) that a spreadsheet would run as a formula is
    quoted with a leading apostrophe."""
    row = export_row(p)
    out: list[object] = []
    for c in EXPORT_COLUMNS:
        v = row[c]
        if v is None:
            v = ""
        elif isinstance(v, list):
            v = " ".join(v)
        if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
            v = "'" + v
        out.append(v)
    return out

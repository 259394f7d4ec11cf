"""Finding pieces: one query record (`PieceQuery`) and its SQL.

The same record answers `gateway search`, the filters of `gateway pieces`,
the web's /search page and `gateway replay`: a filter left empty is no
filter. Values are checked against the known cadres and statuses by the
caller (gateway.ops.search_query); here they are only compared.

The deposit dates are the flow's arrival (flow.received_at); the issue
dates the invoice's own (piece.issue_date, ISO text, so compared as text).
A billing file (dossier de facturation) is named by the invoice number of
its first piece: the pieces linked to it, however deep, belong to it.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, literal, or_, select, text
from sqlalchemy.sql import Select
from sqlmodel import Session

from gateway.store import db
from gateway.store.repository import Store
from gateway.store.rows import detail_codes
from gateway.store.tables import EVENT_REFUSED, Event, Flow, Piece


@dataclass(frozen=True)
class PieceQuery:
    """What to look for; every field narrows, an empty one is ignored.
    Tuples are "any of"; `number` and `file_name` take `*` as a wildcard."""

    cadres: tuple[str, ...] = ()
    piece_types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()  # error codes a piece was refused with (any of)
    partners: tuple[str, ...] = ()
    number: str | None = None  # invoice number
    billing_file: str | None = None  # the first piece's invoice number
    supplier: str | None = None  # supplier SIRET (or other id, as the piece carries it)
    recipient: str | None = None  # recipient SIRET
    service: str | None = None
    file_name: str | None = None
    flow_id: str | None = None
    since: datetime | None = None  # deposited at or after (aware UTC)
    until: datetime | None = None  # deposited before (aware UTC; callers make a day inclusive)
    issued_since: str | None = None  # ISO date, inclusive
    issued_until: str | None = None  # ISO date, inclusive
    valid: bool | None = None  # True: accepted pieces only; False: refused ones only
    due: bool = False  # only pieces waiting on a delay, soonest first

    def is_empty(self) -> bool:
        return self == PieceQuery()

    def described(self) -> str:
        """The filters in words, for reports and logs."""
        parts = []
        for name, value in self.__dict__.items():
            if value in (None, (), False):
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, datetime):
                value = db.iso(value)
            parts.append(f"{name}={value}")
        return " ".join(parts) or "(everything)"


@dataclass(frozen=True)
class FoundPiece:
    """One piece as a search shows it, with its flow's file and arrival."""

    id: str
    flow_id: str
    index: int
    partner: str
    file_name: str
    received_at: datetime
    cadre: str
    piece_type: str
    invoice_number: str | None
    issue_date: str | None
    supplier_id: str | None
    recipient_siret: str | None
    service_code: str | None
    valid: bool
    status: str
    error_codes: tuple[str, ...] = field(default=())
    status_at: datetime | None = None
    due_at: datetime | None = None
    link_id: str | None = None


def _match(column, value: str, *, sqlite: bool):  # noqa: ANN001, ANN202
    """`value` exactly, or with `*` as a wildcard, case-sensitive on both
    databases: SQLite's GLOB (its LIKE ignores case; a prefix GLOB is a
    range of the column's index), PostgreSQL's LIKE."""
    if "*" not in value:
        return column == value
    if sqlite:
        return column.op("GLOB")(value.replace("[", "[[]").replace("?", "[?]"))
    return column.like(_escaped(value).replace("*", "%"), escape="\\")


def _escaped(value: str) -> str:
    """`value` taken literally by LIKE ... ESCAPE '\\'."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _billing_file(s: Session, number: str) -> list[str]:
    """The ids of the pieces of the billing file opened by the piece numbered
    `number` (no earlier piece), found along link_id (ix_piece_link); read
    first, so the search looks them up by id rather than scanning for them."""
    p = Piece.__table__
    dossier = select(p.c.id).where(p.c.invoice_number == number, p.c.link_id.is_(None)).cte("dossier", recursive=True)
    dossier = dossier.union(select(p.c.id).join(dossier, p.c.link_id == dossier.c.id))
    return list(s.execute(select(dossier.c.id)).scalars())


def _where(s: Session, q: PieceQuery) -> list:
    p, f = Piece.__table__, Flow.__table__
    cond = []
    for column, values in ((p.c.cadre, q.cadres), (p.c.piece_type, q.piece_types), (p.c.status, q.statuses),
                           (p.c.partner, q.partners)):
        if values:
            cond.append(column.in_(list(values)) if len(values) > 1 else column == values[0])
    refused = False
    if q.codes:
        # error_codes is a comma list: compare whole codes, not parts of them
        padded = literal(",") + p.c.error_codes + literal(",")
        cond.append(p.c.valid == refused)  # ix_piece_valid_created
        cond.append(or_(*(padded.like(f"%,{c},%") for c in q.codes)))
    sqlite = s.get_bind().dialect.name == "sqlite"
    if q.number:
        cond.append(_match(p.c.invoice_number, q.number, sqlite=sqlite))
    if q.billing_file:
        cond.append(p.c.id.in_(_billing_file(s, q.billing_file)))
    for column, value in ((p.c.supplier_id, q.supplier), (p.c.recipient_siret, q.recipient),
                          (p.c.service_code, q.service), (p.c.flow_id, q.flow_id)):
        if value:
            cond.append(column == value)
    if q.file_name:
        cond.append(_match(f.c.file_name, q.file_name, sqlite=sqlite))
    if q.since is not None:
        # a piece is recorded after its flow arrived: the same bound on the piece's own time lets
        # the search walk the piece indexes from `since` on
        cond += [f.c.received_at >= q.since, p.c.created_at >= q.since]
    if q.until is not None:
        cond.append(f.c.received_at < q.until)
    if q.issued_since:
        cond.append(p.c.issue_date >= q.issued_since)
    if q.issued_until:
        cond.append(p.c.issue_date <= q.issued_until)
    if q.valid is not None:
        cond.append(p.c.valid == q.valid)
    if q.due:
        cond.append(p.c.due_at.is_not(None))
    return cond


def _select(s: Session, q: PieceQuery, *columns, flows: bool = True) -> Select:  # noqa: ANN001
    """`flows`: the columns read the flow's; else it is joined only when a filter needs it."""
    p, f = Piece.__table__, Flow.__table__
    joined = flows or q.file_name or q.since is not None or q.until is not None
    source = p.join(f, f.c.id == p.c.flow_id) if joined else p
    return select(*columns).select_from(source).where(and_(True, *_where(s, q)))


def _columns():  # noqa: ANN202
    p, f = Piece.__table__, Flow.__table__
    return (p.c.id, p.c.flow_id, p.c.index, p.c.partner, f.c.file_name, f.c.received_at, p.c.cadre, p.c.piece_type,
            p.c.invoice_number, p.c.issue_date, p.c.supplier_id, p.c.recipient_siret, p.c.service_code, p.c.valid,
            p.c.status, p.c.error_codes, p.c.status_at, p.c.due_at, p.c.link_id)


def _found(row) -> FoundPiece:  # noqa: ANN001
    (pid, fid, index, partner, name, received, cadre, ptype, number, issued, supplier, recipient, service, valid,
     status, codes, status_at, due_at, link) = row
    return FoundPiece(pid, fid, index, partner, name, db.as_utc(received), cadre, ptype, number, issued, supplier,
                      recipient, service, bool(valid), status, tuple(c for c in (codes or "").split(",") if c),
                      db.as_utc(status_at) if status_at else None, db.as_utc(due_at) if due_at else None, link)


def search_pieces(store: Store, q: PieceQuery, *, limit: int = 50, offset: int = 0) -> list[FoundPiece]:
    """The pieces `q` matches, newest first (with `q.due`, soonest due first)."""
    p = Piece.__table__
    order = (p.c.due_at, p.c.id) if q.due else (p.c.created_at.desc(), p.c.id.desc())
    with store.reading() as s:
        stmt = _select(s, q, *_columns()).order_by(*order).limit(limit).offset(offset)
        return [_found(r) for r in s.execute(stmt)]


def iter_pieces(store: Store, q: PieceQuery, *, batch: int = 1000) -> Iterator[FoundPiece]:
    """Every piece `q` matches, oldest first, read `batch` rows at a time
    (keyset pagination: an export of a million rows holds no cursor open)."""
    p = Piece.__table__
    after: tuple[datetime, str] | None = None
    while True:
        with store.reading() as s:
            stmt = _select(s, q, *_columns(), p.c.created_at).order_by(p.c.created_at, p.c.id).limit(batch)
            if after is not None:
                stmt = stmt.where(or_(p.c.created_at > after[0],
                                      and_(p.c.created_at == after[0], p.c.id > after[1])))
            rows = s.execute(stmt).all()
        for r in rows:
            yield _found(r[:-1])
        if len(rows) < batch:
            return
        after = (rows[-1][-1], rows[-1][0])


def count_pieces(store: Store, q: PieceQuery) -> int:
    with store.reading() as s:
        return s.execute(_select(s, q, func.count(), flows=False)).scalar_one()


def matching_flows(store: Store, q: PieceQuery) -> list[str]:
    """The flows holding a piece `q` matches, and the flows refused whole
    that `q`'s filters fit (see `_refused_whole`), in the order received."""
    f = Flow.__table__
    with store.reading() as s:
        stmt = _select(s, q, f.c.id, f.c.received_at).distinct()
        whole = _refused_whole(s, q)
        if whole is not None:
            stmt = stmt.union(select(f.c.id, f.c.received_at).where(*whole))
        stmt = stmt.subquery()
        return [fid for fid, _ in s.execute(select(stmt.c.id, stmt.c.received_at)
                                            .order_by(stmt.c.received_at, stmt.c.id))]


# What only a piece has: a query naming one of these finds no flow refused whole.
_PIECE_ONLY = ("cadres", "piece_types", "statuses", "number", "billing_file", "supplier", "recipient", "service",
               "issued_since", "issued_until", "due")


@dataclass(frozen=True)
class RefusedFlow:
    """A flow refused whole, without a piece, as a search lists it."""

    id: str
    partner: str
    file_name: str
    received_at: datetime
    codes: tuple[str, ...]


def refused_flows(store: Store, q: PieceQuery, *, limit: int = 50) -> list[RefusedFlow]:
    """The flows refused whole that `q` fits (`_refused_whole`), newest first,
    with the codes they were refused with."""
    f, e = Flow.__table__, Event.__table__
    with store.reading() as s:
        cond = _refused_whole(s, q)
        if cond is None:
            return []
        rows = s.execute(select(f.c.id, f.c.partner, f.c.file_name, f.c.received_at).where(*cond)
                         .order_by(f.c.received_at.desc(), f.c.id.desc()).limit(limit)).all()
        details = dict(s.execute(select(e.c.flow_id, e.c.detail_json).where(
            text(EVENT_REFUSED), e.c.flow_id.in_([r[0] for r in rows]))).all()) if rows else {}
    return [RefusedFlow(fid, partner, name, db.as_utc(at), detail_codes(details.get(fid)))
            for fid, partner, name, at in rows]


def _refused_whole(s: Session, q: PieceQuery) -> list | None:
    """The conditions on a flow refused whole, without a piece (ERR_INTERROMPU,
    an internal error...), matching `q` when it names only what such a
    flow has: its id, partner, file name, arrival, and the codes it was
    refused with (its validation event's). None when `q` cannot match one."""
    if q.valid is True or any(getattr(q, name) not in (None, (), False) for name in _PIECE_ONLY):
        return None
    f, e = Flow.__table__, Event.__table__
    cond = [f.c.pieces_total == 0, f.c.state == "IN_REJETE", f.c.queue == "done"]
    if not q.flow_id:  # named, any; found, never a status file (its old changes applied again) nor a duplicate
        cond += [or_(f.c.format.is_(None), f.c.format != "status"), f.c.duplicate_of.is_(None)]
    sqlite = s.get_bind().dialect.name == "sqlite"
    if q.flow_id:
        cond.append(f.c.id == q.flow_id)
    if q.partners:
        cond.append(f.c.partner.in_(list(q.partners)))
    if q.file_name:
        cond.append(_match(f.c.file_name, q.file_name, sqlite=sqlite))
    if q.since is not None:
        cond.append(f.c.received_at >= q.since)
    if q.until is not None:
        cond.append(f.c.received_at < q.until)
    if q.codes:  # the event's detail is {"format": ..., "errors": ["CODE", ...]}: whole codes, quoted
        cond.append(f.c.id.in_(select(e.c.flow_id).where(
            text(EVENT_REFUSED),  # as its partial index says it (ix_event_refused)
            or_(*(e.c.detail_json.like(f'%"{_escaped(c)}"%', escape="\\") for c in q.codes)))))
    return cond

"""The directory of public structures in the store: what an import writes, what a look-up reads.

The tables are `DirectoryStructure` and `DirectoryService` (store/tables.py).
Reading and checking the files, and caching the look-ups, is the rules'
(gateway.rules.directory); every query is here. Records in and out are
frozen `Structure` and `Service`, never ORM rows.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import SQLModel

from gateway.core.config import Settings
from gateway.store import db
from gateway.store.tables import DirectoryService, DirectoryStructure

CHUNK = 1000  # rows per INSERT ... ON CONFLICT statement


# --- the records (plain frozen records, not ORM rows) ---------------------------

@dataclass(frozen=True)
class Service:
    identifiant: str
    code: str
    name: str = ""
    active: bool = True
    engagement_required: bool = False


@dataclass(frozen=True)
class Structure:
    identifiant: str
    type_identifiant: str = "SIRET"
    raison_sociale: str = ""
    edi_emitter: bool = False
    edi_receiver: bool = False
    manages_payment_status: bool = False
    engagement_required: bool = False
    service_required: bool = False
    service_or_engagement: bool = False
    is_moa: bool = False
    moa_only: bool = False
    active: bool = True
    address: str = ""
    address2: str = ""
    address3: str = ""
    postal_code: str = ""
    city: str = ""
    phone: str = ""
    email: str = ""
    country_code: str = ""
    country_name: str = ""
    services: tuple[Service, ...] = ()

    def service(self, code: str) -> Service | None:
        """Its service with this code; None if the directory does not list it."""
        return next((s for s in self.services if s.code == code), None)


# a structure's services are rows of their own table
_STRUCTURE_COLUMNS = tuple(f.name for f in fields(Structure) if f.name != "services")
_SERVICE_COLUMNS = tuple(f.name for f in fields(Service))


# --- import -------------------------------------------------------------------

def structure_ids(settings: Settings) -> set[str]:
    """The identifiers of every structure in the directory."""
    with db.engine(settings).connect() as conn:
        return set(conn.execute(select(DirectoryStructure.identifiant)).scalars())


def service_keys(settings: Settings) -> set[tuple[str, str]]:
    """(identifiant, code) of every service in the directory."""
    with db.engine(settings).connect() as conn:
        return {tuple(row) for row in conn.execute(select(DirectoryService.identifiant, DirectoryService.code))}


def save_structures(settings: Settings, structures: Sequence[Structure]) -> None:
    """Insert or update (by identifiant) these structures, in one transaction; their services are not touched."""
    _save(settings, DirectoryStructure, _STRUCTURE_COLUMNS, structures)


def save_services(settings: Settings, services: Sequence[Service]) -> None:
    """Insert or update (by identifiant and code) these services, in one transaction."""
    _save(settings, DirectoryService, _SERVICE_COLUMNS, services)


def _save(settings: Settings, table: type[SQLModel], columns: Sequence[str], records: Sequence[Any]) -> None:
    now = db.utcnow()
    batch = [{**{c: getattr(r, c) for c in columns}, "updated_at": now} for r in records]
    with db.engine(settings).begin() as conn:
        for start in range(0, len(batch), CHUNK):
            _upsert(conn, table, batch[start:start + CHUNK])


def _upsert(conn, table: type[SQLModel], rows: list[dict[str, Any]]) -> None:  # noqa: ANN001
    """INSERT ... ON CONFLICT DO UPDATE, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    t = table.__table__
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(t)
    keys = [c.name for c in t.primary_key.columns]
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={c.name: stmt.excluded[c.name] for c in t.columns if c.name not in keys})
    conn.execute(stmt, rows)


# --- look-ups -----------------------------------------------------------------

def get_structure(settings: Settings, identifiant: str) -> Structure | None:
    """The structure with this identifier, with its services; None if unknown."""
    with db.engine(settings).connect() as conn:
        row = conn.execute(select(DirectoryStructure).where(DirectoryStructure.identifiant == identifiant)).first()
        if row is None:
            return None
        services = conn.execute(select(DirectoryService).where(DirectoryService.identifiant == identifiant)
                                .order_by(DirectoryService.code)).all()
    data = {k: v for k, v in row._mapping.items() if k != "updated_at"}
    return Structure(**data, services=tuple(_service(s) for s in services))


def _service(row: Any) -> Service:
    return Service(identifiant=row.identifiant, code=row.code, name=row.name, active=row.active,
                   engagement_required=row.engagement_required)


def has_structures(settings: Settings) -> bool:
    """True once at least one structure was imported."""
    if settings.db_url.startswith("sqlite:///") and not Path(settings.db_url[len("sqlite:///"):]).exists():
        return False  # no store in this home (e.g. `gateway validate` outside one): none created
    with db.engine(settings).connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(DirectoryStructure)).scalar())

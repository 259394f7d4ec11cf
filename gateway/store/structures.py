"""Structures, the partners that act for them, their roles in contracts and
the deposits the actors of a contract agreed one makes for another (#16).

A partner account acts for one or more structures (SIRET), in all their
services or only some; a structure takes part in a contract (numéro de
marché, BT-12) with a role (gateway.core.roles). Routing reads them to say
who may deposit which piece; `gateway structure ...` and `gateway partner
acts-for` write them.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from gateway.core.roles import role_id
from gateway.store.repository import Store
from gateway.store.tables import ContractActor, DepositAgreement, PartnerStructure, Structure

EVERY_CONTRACT = "*"  # an agreement that holds for every contract
_SIRET = re.compile(r"^[0-9]{14}\Z")
_TEXT = re.compile(r"^[^\x00-\x1f\x7f]{1,50}\Z")


@dataclass(frozen=True)
class StructureInfo:
    siret: str
    name: str


@dataclass(frozen=True)
class ActsFor:
    """A partner acts for a structure; `services` empty: in every service."""

    partner: str
    siret: str
    services: tuple[str, ...] = ()

    def covers(self, service: str | None) -> bool:
        return not self.services or not service or service in self.services


@dataclass(frozen=True)
class Actor:
    contract: str
    siret: str
    role: str
    service: str = ""


@dataclass(frozen=True)
class Agreement:
    contract: str  # EVERY_CONTRACT: all of them
    by_role: str
    for_role: str


def check_siret(siret: str) -> str:
    siret = (siret or "").strip()
    if not _SIRET.match(siret):
        raise ValueError(f"not a SIRET (14 digits): {siret!r}")
    return siret


def check_contract(number: str) -> str:
    number = (number or "").strip()
    if not _TEXT.match(number):
        raise ValueError(f"not a contract number (1-50 printable characters): {number!r}")
    return number


# --- writing ---------------------------------------------------------------------
def add_structure(store: Store, siret: str, name: str = "") -> StructureInfo:
    siret = check_siret(siret)
    with store.session() as s:
        row = s.get(Structure, siret) or Structure(siret=siret)
        if name or not row.name:
            row.name = name[:512]
        s.add(row)
        s.commit()
        return StructureInfo(row.siret, row.name)


def remove_structure(store: Store, siret: str) -> bool:
    """Remove a structure with its partners' rights and its roles in contracts."""
    with store.session() as s:
        row = s.get(Structure, siret)
        if row is None:
            return False
        s.execute(delete(PartnerStructure).where(PartnerStructure.siret == siret))
        s.execute(delete(ContractActor).where(ContractActor.siret == siret))
        s.delete(row)
        s.commit()
    forget_snapshot()
    return True


def set_acts_for(store: Store, partner: str, siret: str, services: Sequence[str] = ()) -> ActsFor:
    siret = check_siret(siret)
    clean = tuple(sorted({x.strip() for x in services if x.strip()}))
    with store.session() as s:
        if s.get(Structure, siret) is None:
            s.add(Structure(siret=siret))
        row = s.get(PartnerStructure, (partner, siret)) or PartnerStructure(partner=partner, siret=siret)
        row.services = ",".join(clean)[:1024]
        s.add(row)
        s.commit()
    forget_snapshot()
    return ActsFor(partner, siret, clean)


def drop_acts_for(store: Store, partner: str, siret: str) -> bool:
    with store.session() as s:
        n = s.execute(delete(PartnerStructure).where(PartnerStructure.partner == partner,
                                                     PartnerStructure.siret == siret)).rowcount
        s.commit()
    forget_snapshot()
    return bool(n)


def add_actor(store: Store, contract: str, siret: str, role: str, service: str = "") -> Actor:
    contract, siret, role = check_contract(contract), check_siret(siret), role_id(role)
    with store.session() as s:
        if s.get(Structure, siret) is None:
            s.add(Structure(siret=siret))
        row = s.get(ContractActor, (contract, siret, role)) or ContractActor(contract=contract, siret=siret, role=role)
        row.service = (service or "").strip()[:100]
        s.add(row)
        s.commit()
    return Actor(contract, siret, role, (service or "").strip())


def remove_actor(store: Store, contract: str, siret: str, role: str) -> bool:
    with store.session() as s:
        n = s.execute(delete(ContractActor).where(ContractActor.contract == contract, ContractActor.siret == siret,
                                                  ContractActor.role == role_id(role))).rowcount
        s.commit()
        return bool(n)


def add_agreement(store: Store, contract: str, by_role: str, for_role: str) -> Agreement:
    contract = contract if contract == EVERY_CONTRACT else check_contract(contract)
    by, for_ = role_id(by_role), role_id(for_role)
    if by == for_:
        raise ValueError(f"an agreement lets one role deposit for another: {by} twice")
    with store.session() as s:
        if s.get(DepositAgreement, (contract, by, for_)) is None:
            s.add(DepositAgreement(contract=contract, by_role=by, for_role=for_))
            s.commit()
    return Agreement(contract, by, for_)


# --- reading ---------------------------------------------------------------------
def structures(store: Store) -> list[StructureInfo]:
    with store.session() as s:
        return [StructureInfo(r.siret, r.name) for r in s.execute(select(Structure).order_by(Structure.siret)).scalars()]


def structure(store: Store, siret: str) -> StructureInfo | None:
    with store.session() as s:
        r = s.get(Structure, siret)
        return StructureInfo(r.siret, r.name) if r else None


def _acts(r: PartnerStructure) -> ActsFor:
    return ActsFor(r.partner, r.siret, tuple(x for x in r.services.split(",") if x))


def acts_for(store: Store, partner: str | None = None, siret: str | None = None) -> list[ActsFor]:
    q = select(PartnerStructure)
    if partner is not None:
        q = q.where(PartnerStructure.partner == partner)
    if siret is not None:
        q = q.where(PartnerStructure.siret == siret)
    with store.session() as s:
        return [_acts(r) for r in s.execute(q.order_by(PartnerStructure.partner, PartnerStructure.siret)).scalars()]


def actors(store: Store, contract: str | None = None, siret: str | None = None) -> list[Actor]:
    q = select(ContractActor)
    if contract is not None:
        q = q.where(ContractActor.contract == contract)
    if siret is not None:
        q = q.where(ContractActor.siret == siret)
    with store.session() as s:
        return [Actor(r.contract, r.siret, r.role, r.service) for r in s.execute(
            q.order_by(ContractActor.contract, ContractActor.role, ContractActor.siret)).scalars()]


def agreements(store: Store, contract: str | None = None) -> list[Agreement]:
    """The agreements of a contract, and those of every contract; all without one."""
    q = select(DepositAgreement)
    if contract is not None:
        q = q.where(DepositAgreement.contract.in_([contract, EVERY_CONTRACT]))
    with store.session() as s:
        return [Agreement(r.contract, r.by_role, r.for_role) for r in s.execute(
            q.order_by(DepositAgreement.contract, DepositAgreement.by_role)).scalars()]


def import_rows(store: Store, structures_: Iterable[tuple[str, str]], acts: Iterable[tuple[str, str, Sequence[str]]],
                actors_: Iterable[tuple[str, str, str, str]], agreements_: Iterable[tuple[str, str, str]]) -> dict[str, int]:
    """Everything a declaration file gives, added or updated (nothing removed)."""
    n = {"structures": 0, "acts_for": 0, "actors": 0, "agreements": 0}
    for siret, name in structures_:
        add_structure(store, siret, name)
        n["structures"] += 1
    for partner, siret, services in acts:
        set_acts_for(store, partner, siret, services)
        n["acts_for"] += 1
    for contract, siret, role, service in actors_:
        add_actor(store, contract, siret, role, service)
        n["actors"] += 1
    for contract, by, for_ in agreements_:
        add_agreement(store, contract, by, for_)
        n["agreements"] += 1
    return n


# --- who a partner's folder serves, for routing's hot path -----------------------------
_SNAPSHOT_SECONDS = 2.0  # a change made by `gateway structure` elsewhere is seen within this
_snap_lock = threading.Lock()
_snapshots: dict[str, tuple[float, dict[str, tuple[ActsFor, ...]]]] = {}


def partners_by_siret(store: Store) -> dict[str, tuple[ActsFor, ...]]:
    """SIRET -> the partners acting for it, read at most every two seconds per
    database (deliveries and status files ask it for every party of every change)."""
    key = str(store.engine.url)
    now = time.monotonic()
    with _snap_lock:
        hit = _snapshots.get(key)
    if hit is not None and now - hit[0] < _SNAPSHOT_SECONDS:
        return hit[1]
    out: dict[str, list[ActsFor]] = {}
    for a in _acts_for_outside_transactions(store):
        out.setdefault(a.siret, []).append(a)
    snap = {k: tuple(v) for k, v in out.items()}
    with _snap_lock:
        _snapshots[key] = (now, snap)
    return snap


def _acts_for_outside_transactions(store: Store) -> list[ActsFor]:
    """Read on a connection of its own, without the session's BEGIN (IMMEDIATE
    on SQLite): a status change asks for folders while it holds the write lock,
    and a reader never waits for it (WAL)."""
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SELECT partner, siret, services FROM partner_structure ORDER BY partner, siret")
        rows = cur.fetchall()
        cur.close()
        raw.rollback()
    finally:
        raw.close()
    return [ActsFor(p, s, tuple(x for x in (v or "").split(",") if x)) for p, s, v in rows]


def forget_snapshot() -> None:
    """After a change made in this process (the CLI, tests): read again next time."""
    with _snap_lock:
        _snapshots.clear()


def partners_by_siret_now(store: Store) -> dict[str, tuple[ActsFor, ...]]:
    """The same, read now (the CLI)."""
    forget_snapshot()
    return partners_by_siret(store)

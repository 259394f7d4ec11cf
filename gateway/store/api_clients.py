"""The Flow Service API's clients and the flows deposited through it.

A client belongs to a partner; its secret is shown once and kept only as an
scrypt hash (store.partners' scheme). A deposit is recorded once per partner
and bytes (the API's idempotence), before its file is renamed into the
inbox, and linked to the gateway's flow once the folder watcher claims it.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.core.clock import as_utc, utcnow
from gateway.core.config import Settings
from gateway.store.partners import hash_password, verify_password
from gateway.store.repository import Store
from gateway.store.tables import ApiClient, ApiDeposit, Flow, PartnerAccount

CLIENT_PREFIX = "gwc_"


@dataclass(frozen=True)
class Client:
    id: str
    partner: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Deposit:
    """A flow deposited through the API (the `api_deposit` row)."""

    id: str
    partner: str
    sha256: str
    size: int
    name: str
    flow_syntax: str
    flow_profile: str | None
    processing_rule: str | None
    tracking_id: str | None
    organization_id: str | None
    client_id: str
    temp_name: str
    inbox_name: str | None
    created_at: datetime
    deposited_at: datetime | None
    flow_id: str | None
    failed: str | None


def _client(row: ApiClient) -> Client:
    return Client(row.id, row.partner, as_utc(row.created_at), row.revoked_at and as_utc(row.revoked_at))


def _deposit(row: ApiDeposit) -> Deposit:
    values = {f.name: getattr(row, f.name) for f in fields(Deposit)}
    for key in ("created_at", "deposited_at"):
        values[key] = values[key] and as_utc(values[key])
    return Deposit(**values)


# --- clients -------------------------------------------------------------------
def add_client(settings: Settings, partner: str) -> tuple[Client, str]:
    """A new client for an existing partner account, and its secret (shown once)."""
    with Store(settings).session() as s:
        if s.get(PartnerAccount, partner) is None:
            raise LookupError(f"no partner {partner!r} (create it with `gateway partner add {partner}`)")
        secret = secrets.token_urlsafe(32)
        row = ApiClient(id=CLIENT_PREFIX + secrets.token_hex(12), partner=partner,
                        secret_hash=hash_password(secret), created_at=utcnow())
        s.add(row)
        s.commit()
        return _client(row), secret


def list_clients(settings: Settings) -> list[Client]:
    with Store(settings).session() as s:
        return [_client(r) for r in s.execute(select(ApiClient).order_by(ApiClient.partner, ApiClient.created_at))
                .scalars()]


def revoke_client(settings: Settings, client_id: str) -> Client:
    """Revoke a client: its tokens stop working at once. LookupError if unknown."""
    with Store(settings).session() as s:
        row = s.get(ApiClient, client_id)
        if row is None:
            raise LookupError(f"no API client {client_id!r}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            s.add(row)
            s.commit()
        return _client(row)


def check_client(settings: Settings, client_id: str, secret: str) -> Client | None:
    """The active client these credentials name, else None (one scrypt either way)."""
    with Store(settings).session() as s:
        row = s.get(ApiClient, client_id) if len(client_id) <= 64 else None
    ok = verify_password(secret, row.secret_hash if row is not None else None)
    return _client(row) if ok and row is not None and row.revoked_at is None else None


def active_client(settings: Settings, client_id: str) -> Client | None:
    """The client a token names, if it is still active (tokens of revoked clients stop at once)."""
    with Store(settings).session() as s:
        row = s.get(ApiClient, client_id)
    return _client(row) if row is not None and row.revoked_at is None else None


# --- deposits ------------------------------------------------------------------
def record_deposit(settings: Settings, new: Deposit) -> tuple[Deposit, bool]:
    """Record a deposit; (the row, True) if new, (the earlier row of the same
    partner and bytes, False) if they were deposited before."""
    store = Store(settings)
    with store.session() as s:
        s.add(ApiDeposit(**{f.name: getattr(new, f.name) for f in fields(Deposit)}))
        try:
            s.commit()
            return new, True
        except IntegrityError:
            s.rollback()
    found = deposit_of_bytes(settings, new.partner, new.sha256)
    if found is None:  # the unique index held, yet no row: cannot happen unless deleted meanwhile
        raise RuntimeError("api deposit vanished")
    return found, False


def deposit_of_bytes(settings: Settings, partner: str, sha256: str) -> Deposit | None:
    with Store(settings).session() as s:
        row = s.execute(select(ApiDeposit).where(ApiDeposit.partner == partner, ApiDeposit.sha256 == sha256)
                        ).scalar_one_or_none()
    return _deposit(row) if row is not None else None


def get_deposit(settings: Settings, deposit_id: str) -> Deposit | None:
    with Store(settings).session() as s:
        row = s.get(ApiDeposit, deposit_id)
    return _deposit(row) if row is not None else None


def mark_deposited(settings: Settings, deposit_id: str, inbox_name: str | None, *, temp_name: str | None = None,
                   failed: str | None = None) -> None:
    """The file is in the inbox under `inbox_name` (or never will be: `failed`)."""
    changes: dict = {"inbox_name": inbox_name, "deposited_at": utcnow(), "failed": failed}
    if temp_name is not None:
        changes["temp_name"] = temp_name
    with Store(settings).session() as s:
        s.execute(update(ApiDeposit).where(ApiDeposit.id == deposit_id).values(**changes))
        s.commit()


def undeposited(settings: Settings) -> list[Deposit]:
    """Deposits recorded whose file was not yet renamed into the inbox (a crash in between)."""
    with Store(settings).session() as s:
        rows = s.execute(select(ApiDeposit).where(ApiDeposit.deposited_at.is_(None))).scalars().all()
    return [_deposit(r) for r in rows]


def link_flows(settings: Settings, slack: timedelta = timedelta(seconds=5)) -> int:
    """Give every deposited, unlinked deposit its gateway flow: the first flow of
    the same partner and bytes received after it was recorded (less `slack`,
    for clocks of several hosts). Returns how many were linked."""
    linked = 0
    with Store(settings).session() as s:
        waiting = s.execute(select(ApiDeposit).where(ApiDeposit.flow_id.is_(None),
                                                     ApiDeposit.deposited_at.is_not(None),
                                                     ApiDeposit.failed.is_(None))).scalars().all()
        for d in waiting:
            fid = s.execute(select(Flow.id).where(
                Flow.partner == d.partner, Flow.sha256 == d.sha256,
                Flow.received_at >= as_utc(d.created_at) - slack).order_by(Flow.received_at, Flow.id).limit(1)
            ).scalar_one_or_none()
            if fid is not None:
                s.execute(update(ApiDeposit).where(ApiDeposit.id == d.id).values(flow_id=fid))
                linked += 1
        s.commit()
    return linked


def deposits_of_flows(settings: Settings, flow_ids: Iterable[str]) -> dict[str, Deposit]:
    """The API deposits behind these gateway flows, by flow id."""
    ids = list(set(flow_ids))
    if not ids:
        return {}
    with Store(settings).session() as s:
        rows = s.execute(select(ApiDeposit).where(ApiDeposit.flow_id.in_(ids))).scalars().all()
    return {r.flow_id: _deposit(r) for r in rows}


def partner_flows(settings: Settings, partner: str, after: tuple[datetime, str] | None,
                  limit: int) -> list[tuple[Flow | None, Deposit | None]]:
    """A page of a partner's flows, in the order received: each gateway flow (with
    its API deposit if it came that way), and deposits no flow took yet, merged."""
    def newer(at_col, id_col):  # noqa: ANN001, ANN202
        if after is None:
            return True
        return or_(at_col > after[0], and_(at_col == after[0], id_col > after[1]))

    with Store(settings).session() as s:
        flows = s.execute(select(Flow).where(Flow.partner == partner, newer(Flow.received_at, Flow.id))
                          .order_by(Flow.received_at, Flow.id).limit(limit)).scalars().all()
        waiting = s.execute(select(ApiDeposit).where(ApiDeposit.partner == partner, ApiDeposit.flow_id.is_(None),
                                                     newer(ApiDeposit.created_at, ApiDeposit.id))
                            .order_by(ApiDeposit.created_at, ApiDeposit.id).limit(limit)).scalars().all()
    by_flow = deposits_of_flows(settings, [f.id for f in flows])
    items: list[tuple[datetime, str, Flow | None, Deposit | None]] = [
        (as_utc(f.received_at), f.id, f, by_flow.get(f.id)) for f in flows]
    items += [(as_utc(d.created_at), d.id, None, _deposit(d)) for d in waiting]
    items.sort(key=lambda t: (t[0], t[1]))
    return [(f, d) for _, _, f, d in items[:limit]]

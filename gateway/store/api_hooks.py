"""The Flow Service API's webhooks and the calls to make to them.

A call is recorded (in the same transaction that moves the dispatcher's mark
over the events it stems from) before it is made, then retried with back-off
until it is delivered or given up: a crash loses none and repeats at most the
call in flight.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from gateway.core.clock import as_utc, utcnow
from gateway.core.config import Settings
from gateway.store.repository import Store
from gateway.store.tables import ApiMark, ApiWebhook, ApiWebhookDelivery, Event, Flow, Piece

MARK = "webhooks"


@dataclass(frozen=True)
class Webhook:
    id: str
    partner: str
    callback_url: str
    flow_types: tuple[str, ...]
    flow_direction: str | None
    ack_status: str | None
    signing_key: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Call:
    """One delivery of a webhook, due now."""

    id: int
    webhook_id: str
    callback_url: str
    signing_key: str
    flow_id: str
    payload: str
    attempts: int


def _hook(r: ApiWebhook) -> Webhook:
    return Webhook(r.id, r.partner, r.callback_url, tuple(json.loads(r.flow_types or "[]")), r.flow_direction,
                   r.ack_status, r.signing_key, as_utc(r.created_at), as_utc(r.updated_at))


def save_webhook(settings: Settings, hook: Webhook) -> Webhook:
    """Create or replace (same id) a webhook."""
    with Store(settings).session() as s:
        s.merge(ApiWebhook(id=hook.id, partner=hook.partner, callback_url=hook.callback_url,
                           flow_types=json.dumps(list(hook.flow_types)), flow_direction=hook.flow_direction,
                           ack_status=hook.ack_status, signing_key=hook.signing_key, created_at=hook.created_at,
                           updated_at=hook.updated_at))
        s.commit()
    return hook


def webhooks(settings: Settings, partner: str | None = None) -> list[Webhook]:
    with Store(settings).session() as s:
        q = select(ApiWebhook).order_by(ApiWebhook.created_at, ApiWebhook.id)
        if partner is not None:
            q = q.where(ApiWebhook.partner == partner)
        return [_hook(r) for r in s.execute(q).scalars()]


def webhook(settings: Settings, partner: str, hook_id: str) -> Webhook | None:
    with Store(settings).session() as s:
        r = s.get(ApiWebhook, hook_id)
    return _hook(r) if r is not None and r.partner == partner else None


def delete_webhook(settings: Settings, partner: str, hook_id: str) -> bool:
    with Store(settings).session() as s:
        r = s.get(ApiWebhook, hook_id)
        if r is None or r.partner != partner:
            return False
        s.delete(r)
        s.execute(delete(ApiWebhookDelivery).where(ApiWebhookDelivery.webhook_id == hook_id,
                                                   ApiWebhookDelivery.state == "pending"))
        s.commit()
    return True


# --- what changed ------------------------------------------------------------------
def changed_flows(settings: Settings, *, settle: timedelta, limit: int = 500) -> tuple[int, int, list[str]]:
    """Gateway flows touched by events after the dispatcher's mark: (mark, new
    mark, flow ids). Events younger than `settle` wait, so that one committed
    late with a smaller id is not passed over."""
    with Store(settings).session() as s:
        row = s.get(ApiMark, MARK)
        if row is None:  # the first turn ever: from now on, kept from the start
            row = ApiMark(name=MARK, event_id=_start_mark(s))
            s.add(row)
            try:
                s.commit()
            except IntegrityError:  # another dispatcher made it first
                s.rollback()
                row = s.get(ApiMark, MARK)
        mark = row.event_id
        rows = s.execute(select(Event.id, Event.flow_id, Event.piece_id).where(
            Event.id > mark, Event.at <= utcnow() - settle).order_by(Event.id).limit(limit)).all()
        if not rows:
            return mark, mark, []
        flows = {r.flow_id for r in rows}
        pieces = {r.piece_id for r in rows if r.piece_id}
        if pieces:  # a piece's status change is its own flow's change too
            flows |= set(s.execute(select(Piece.flow_id).where(Piece.id.in_(pieces))).scalars())
    return mark, rows[-1].id, sorted(flows)


def _start_mark(s) -> int:  # noqa: ANN001
    """A first start reads from now on: no calls for the history before webhooks existed."""
    return s.execute(select(func.max(Event.id))).scalar() or 0


def flows_by_id(settings: Settings, flow_ids: Iterable[str]) -> dict[str, Flow]:
    """The gateway flows of these ids, in one query."""
    ids = list(flow_ids)
    if not ids:
        return {}
    with Store(settings).session() as s:
        return {f.id: f for f in s.execute(select(Flow).where(Flow.id.in_(ids))).scalars()}


def enqueue(settings: Settings, mark: tuple[int, int], calls: Iterable[tuple[str, str, str]]) -> bool:
    """Record calls (webhook id, API flow id, payload) and move the mark from
    mark[0] to mark[1], together; False if another dispatcher moved it first."""
    now = utcnow()
    with Store(settings).session() as s:
        row = s.get(ApiMark, MARK)
        if row is None:
            s.add(ApiMark(name=MARK, event_id=mark[1]))
        elif row.event_id != mark[0]:
            return False
        else:
            row.event_id = mark[1]
        s.add_all(ApiWebhookDelivery(webhook_id=w, flow_id=f, payload=p, state="pending", attempts=0,
                                     next_at=now, created_at=now) for w, f, p in calls)
        s.commit()
    return True


def due_calls(settings: Settings, limit: int = 50) -> list[Call]:
    with Store(settings).session() as s:
        rows = s.execute(select(ApiWebhookDelivery, ApiWebhook).join(
            ApiWebhook, ApiWebhook.id == ApiWebhookDelivery.webhook_id).where(
            ApiWebhookDelivery.state == "pending", ApiWebhookDelivery.next_at <= utcnow())
            .order_by(ApiWebhookDelivery.next_at, ApiWebhookDelivery.id).limit(limit)).all()
    return [Call(d.id, d.webhook_id, w.callback_url, w.signing_key, d.flow_id, d.payload, d.attempts)
            for d, w in rows]


def call_done(settings: Settings, call_id: int, *, error: str | None, retry_in: float | None) -> None:
    """Record an attempt: delivered (no error), due again in `retry_in` s, or given up (None)."""
    now = utcnow()
    if error is None:
        values = dict(state="delivered", delivered_at=now)
    elif retry_in is None:
        values = dict(state="failed", last_error=error[:512])
    else:
        values = dict(next_at=now + timedelta(seconds=retry_in), last_error=error[:512])
    with Store(settings).session() as s:
        s.execute(update(ApiWebhookDelivery).where(ApiWebhookDelivery.id == call_id)
                  .values(attempts=ApiWebhookDelivery.attempts + 1, **values))
        s.commit()


def calls_of(settings: Settings, hook_id: str) -> list[tuple[str, str, int, str | None]]:
    """(API flow id, state, attempts, last error) of a webhook's calls, oldest first."""
    with Store(settings).session() as s:
        return [tuple(r) for r in s.execute(select(
            ApiWebhookDelivery.flow_id, ApiWebhookDelivery.state, ApiWebhookDelivery.attempts,
            ApiWebhookDelivery.last_error).where(ApiWebhookDelivery.webhook_id == hook_id)
            .order_by(ApiWebhookDelivery.id)).all()]

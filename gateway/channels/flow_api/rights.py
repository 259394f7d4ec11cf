"""Who a partner may act for through the `Organization-Id` header.

A partner acts for itself, for the SIRETs `[parties]` gives it in
gateway.toml, and for the structures `gateway partner acts-for` gives it
(gateway.routing.parties.identities), as its deposits and status files do.
"""
from __future__ import annotations

from gateway.core.config import Settings
from gateway.routing.parties import identities
from gateway.store.repository import Store


def may_act_for(settings: Settings, partner: str, organization_id: str) -> bool:
    """Whether `partner` may act for `organization_id` (a SIRET, or its own name)."""
    return organization_id in identities(settings, partner, Store(settings))

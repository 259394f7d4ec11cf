"""Who a partner may act for through the `Organization-Id` header.

One function, so that a richer model of structures and roles can replace it:
today a partner acts for itself and for the SIRETs `[parties]` gives it in
gateway.toml (gateway.routing.parties.identities), as its status files do.
"""
from __future__ import annotations

from gateway.core.config import Settings
from gateway.routing.parties import identities


def may_act_for(settings: Settings, partner: str, organization_id: str) -> bool:
    """Whether `partner` may act for `organization_id` (a SIRET, or its own name)."""
    return organization_id in identities(settings, partner)

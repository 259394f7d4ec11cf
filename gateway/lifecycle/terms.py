"""The words of the life-cycle file and the records it compiles to: the
roles, the corrections a move may carry, a status, a cadre's rules and its
link to an earlier piece. Shared by the machine and its compiler.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

ROLES = ("supplier", "recipient", "validator1", "validator2", "moe", "moa", "platform")
PARTIES = ROLES[:-1]  # roles that are someone (not the platform itself)
DEPOSITOR = "depositor"  # in the file: the role that deposited a piece of the cadre
ROUTE = "@route"  # in the file: the cadre's route

# What a correction (a status file's "correction") may change: the piece's
# routing columns, checked like a new recipient, and a party named wrongly.
# Which move may carry which of them is data: `correction` on a move.
CORRECTION_FIELDS = ("recipient_siret", "service_code", "engagement_number")
CORRECTION_PARTIES: Mapping[str, tuple[str, str]] = {  # key -> (role, attribute of the party)
    "validator_siret": ("validator1", "siret"), "validator_service": ("validator1", "service"),
    "validator2_siret": ("validator2", "siret"), "validator2_service": ("validator2", "service"),
    "moe_siret": ("moe", "siret"), "moe_service": ("moe", "service")}
CORRECTION_KEYS = CORRECTION_FIELDS + tuple(CORRECTION_PARTIES)

ROLE_FR = {
    "supplier": "le fournisseur", "recipient": "le destinataire", "validator1": "le premier valideur",
    "validator2": "le second valideur", "moe": "la maîtrise d'œuvre", "moa": "la maîtrise d'ouvrage",
    "platform": "la plateforme",
}


@dataclass(frozen=True)
class StatusInfo:
    name: str
    pivot_id: str  # CPPFactureStatuts/IdStatut, "01".."41"
    cdv: int | None  # 2026 reform code 200-213, None when none fits
    label_fr: str
    final: bool
    needs_reason: bool = False  # a motif is mandatory to set it
    cdv_label: str | None = None


@dataclass(frozen=True)
class LinkRule:
    """A piece of `cadre` continues an earlier piece of one of `links_to`
    (same billing file); the earlier piece, when in one of `from_statuses`,
    gets `linked_status`."""

    cadre: str
    links_to: tuple[str, ...]
    linked_status: str
    from_statuses: tuple[str, ...] = ()


ByLevels = tuple[tuple[int, tuple[str, ...]], ...]  # ((levels, statuses), ...) sorted by levels


@dataclass(frozen=True, eq=False)
class CadreRules:
    cadre: str
    depositor: str
    entry: ByLevels
    follow: Mapping[str, ByLevels]
    holders: Mapping[str, str]
    deadlines: Mapping[str, str]  # status -> status the platform sets when its delay runs out
    notify: Mapping[str, tuple[str, ...]]
    moves: Mapping[str, Mapping[str, frozenset[str]]]  # current -> new -> roles
    corrections: Mapping[tuple[str, str, str], frozenset[str]]  # (current, new, role) -> correction keys
    link: LinkRule | None

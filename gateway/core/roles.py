"""The roles a structure holds in a contract (marché, BT-12), one word each.

A contract role is who a structure is in a contract; a party role
(supplier, moe, moa, recipient, validator1...) is who it is on one piece.
`PARTY_OF` says which party of a piece a contract role deposits as.
"""
from __future__ import annotations

# id -> (English, French)
CONTRACT_ROLES: dict[str, tuple[str, str]] = {
    "titulaire": ("titulaire (holder of the contract)", "titulaire"),
    "cotraitant": ("co-contractor", "cotraitant"),
    "mandataire": ("mandataire of the co-contractors", "mandataire"),
    "sous_traitant": ("subcontractor", "sous-traitant"),
    "maitrise_oeuvre": ("maîtrise d'œuvre (MOE)", "maîtrise d'œuvre (MOE)"),
    "maitrise_ouvrage": ("maîtrise d'ouvrage (MOA)", "maîtrise d'ouvrage (MOA)"),
    "service_financier": ("financial service", "service financier"),
}

# What a user may type for a role (case and accents aside)
ALIASES: dict[str, str] = {
    "moe": "maitrise_oeuvre", "maitrise_d_oeuvre": "maitrise_oeuvre", "maîtrise_d_œuvre": "maitrise_oeuvre",
    "moa": "maitrise_ouvrage", "maitrise_d_ouvrage": "maitrise_ouvrage",
    "sous-traitant": "sous_traitant", "soustraitant": "sous_traitant", "co-traitant": "cotraitant",
    "service-financier": "service_financier", "financier": "service_financier",
}

# The party of a piece each contract role deposits as (the machine's depositor roles)
PARTY_OF: dict[str, str] = {
    "titulaire": "supplier", "cotraitant": "supplier", "mandataire": "supplier", "sous_traitant": "supplier",
    "maitrise_oeuvre": "moe", "maitrise_ouvrage": "moa", "service_financier": "recipient",
}

# Roles that deposit pieces of their own account: the piece's seller is the depositing structure
SELLER_ROLES = frozenset({"titulaire", "cotraitant", "mandataire", "sous_traitant"})


def role_id(text: str) -> str:
    """The role `text` names, or ValueError listing the known roles."""
    key = (text or "").strip().lower().replace(" ", "_").replace("'", "_")
    key = ALIASES.get(key, key)
    if key not in CONTRACT_ROLES:
        raise ValueError(f"unknown role {text!r}: use one of {', '.join(CONTRACT_ROLES)} (or moe, moa)")
    return key


def role_en(role: str) -> str:
    return CONTRACT_ROLES.get(role, (role, role))[0]


def role_fr(role: str) -> str:
    return CONTRACT_ROLES.get(role, (role, role))[1]

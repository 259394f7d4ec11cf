"""Who may deposit a piece: the depositing partner must act for a structure
holding, in the piece's contract (BT-12), a role that deposits its cadre
(`deposit_rights.toml`), or one the contract's actors agreed may deposit for
that role. Refused otherwise (REJ_ROLE), naming the role needed.

A contract nobody declared is the simple case: a partner `[parties]` or
`gateway partner acts-for` declares deposits only as the SIRETs it acts for;
a partner declared nowhere is taken at its word, as before structures existed.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.invoice import Invoice
from gateway.core.records import Check, Verdict
from gateway.core.roles import PARTY_OF, SELLER_ROLES, role_en, role_fr
from gateway.routing.checks import STAGE, with_check
from gateway.routing.parties import configured_sirets
from gateway.store import structures as st
from gateway.store.repository import Store


@dataclass(frozen=True)
class Deposit:
    """Who a new piece is deposited as. `sirets`: the structures the deposit is
    made as (a continuation must continue a piece deposited to one of them);
    `taken_at_word`: the partner is declared nowhere, the piece's data say who it is."""

    piece_id: str
    partner: str
    sirets: frozenset[str]
    taken_at_word: bool = False
    deposited_as: str | None = None  # the partner's role, when it deposited for another actor
    deposited_for: str | None = None  # the role it deposited for
    for_siret: str | None = None  # the actor deposited for: it stays a party of the piece
    for_service: str | None = None


def siret_as(inv: Invoice, party: str) -> str | None:
    """The SIRET a piece gives for one of its parties."""
    if party == "supplier":
        return inv.supplier.siret
    if party in ("moa", "recipient"):
        return inv.recipient.siret
    if party == "moe":
        return inv.moe.siret if inv.moe is not None else None
    return None


def _words(roles: Sequence[str], fr: bool = False) -> str:
    return (" ou " if fr else " or ").join((role_fr if fr else role_en)(r) for r in roles)


def _refused(v: Verdict, en: str, fr: str, value: str | None) -> Verdict:
    inv = v.invoice
    where = inv.location("contract_number") or inv.location("cadre.bt23") or inv.location("cadre.extension")
    return with_check(v, codes.finding("REJ_ROLE", en, fr, location=where, value=value, stage=STAGE),
                      Check("deposit_right", "failed", en))


def check_deposits(settings: Settings, store: Store, verdicts: Sequence[Verdict], piece_ids: Sequence[str],
                   partner: str, machine: Any) -> tuple[list[Verdict], dict[str, Deposit]]:
    """Each accepted piece's deposit right; a refused piece changes nothing."""
    out: list[Verdict] = []
    deposits: dict[str, Deposit] = {}
    mine = st.acts_for(store, partner)
    configured = configured_sirets(settings, partner)
    casts: dict[str, list[st.Actor]] = {}  # a lot's pieces mostly share one contract: read its actors once
    for v, pid in zip(verdicts, piece_ids):
        if not (v.valid and v.invoice is not None):
            out.append(v)
            continue
        inv = v.invoice
        needed = machine.rights.roles(inv.cadre)
        contract = (inv.contract_number or "").strip()
        if contract and contract not in casts:
            casts[contract] = st.actors(store, contract)
        cast = casts.get(contract, [])
        if cast and needed:
            v, dep = _in_contract(store, v, pid, partner, mine, configured, needed, contract, cast, machine)
        elif (mine or configured) and needed:
            v, dep = _simple(v, pid, partner, {a.siret for a in mine} | configured, needed)
        else:
            dep = Deposit(pid, partner, frozenset({partner}), taken_at_word=True)
        if dep is not None:
            deposits[pid] = dep
        out.append(v)
    return out, deposits


def _simple(v: Verdict, pid: str, partner: str, ids: set[str], needed: Sequence[str]) -> tuple[Verdict, Deposit | None]:
    """No declared contract: the piece's SIRET for the depositor's party must be one the partner acts for."""
    inv = v.invoice
    party = PARTY_OF[needed[0]]
    siret = siret_as(inv, party)
    if siret and siret not in ids:
        en = (f"Cadre {inv.cadre} is deposited by the {_words(needed)}: the piece names {siret} as its {party}, "
              f"and partner {partner} acts only for {', '.join(sorted(ids))}")
        fr = (f"Le cadre {inv.cadre} est déposé par le {_words(needed, True)} : la pièce indique {siret} comme "
              f"{party}, et le partenaire {partner} n'agit que pour {', '.join(sorted(ids))}")
        return _refused(v, en, fr, siret), None
    return with_check(v, None, Check("deposit_right", "passed", f"{partner} acts for {siret or '-'}")), \
        Deposit(pid, partner, frozenset(ids | {partner}))


def _in_contract(store: Store, v: Verdict, pid: str, partner: str, mine: list[st.ActsFor], configured: set[str],
                 needed: Sequence[str], contract: str, cast: list[st.Actor],
                 machine: Any) -> tuple[Verdict, Deposit | None]:
    inv = v.invoice

    def acts(a: st.Actor) -> bool:
        return a.siret in configured or any(m.siret == a.siret and m.covers(a.service) for m in mine)

    held = [a for a in cast if acts(a)]
    right = [a for a in held if a.role in needed
             and (a.role not in SELLER_ROLES or a.siret == inv.supplier.siret)]  # a seller deposits its own pieces
    dep: Deposit | None = None
    if right:
        dep = Deposit(pid, partner, frozenset(a.siret for a in right))
        detail = f"{partner} acts for {right[0].siret}, {right[0].role} of contract {contract}"
    else:
        agreed = st.agreements(store, contract)
        for a in held:
            ag = next((g for g in agreed if g.by_role == a.role and g.for_role in needed), None)
            if ag is None:
                continue
            named = siret_as(inv, PARTY_OF[ag.for_role])
            others = [x for x in cast if x.role == ag.for_role]
            them = next((x for x in others if x.siret == named), others[0] if others else None)
            if them is not None:
                dep = Deposit(pid, partner, frozenset({them.siret}), deposited_as=a.role, deposited_for=ag.for_role,
                              for_siret=them.siret, for_service=them.service or None)
                detail = (f"{partner} ({a.role} {a.siret}) deposits for the {ag.for_role} {them.siret}, "
                          f"as agreed for contract {ag.contract}")
                break
    if dep is None:
        held_en = ", ".join(f"{a.siret} as {role_en(a.role)}" for a in held) or "no structure of it"
        held_fr = ", ".join(f"{a.siret} comme {role_fr(a.role)}" for a in held) or "aucune de ses structures"
        en = (f"Cadre {inv.cadre} is deposited by the {_words(needed)} of contract {contract}: partner {partner} "
              f"acts for {held_en}" + (f" (the piece's seller is {inv.supplier.siret})" if held else ""))
        fr = (f"Le cadre {inv.cadre} est déposé par le {_words(needed, True)} du marché {contract} : le partenaire "
              f"{partner} agit pour {held_fr}" + (f" (le vendeur de la pièce est {inv.supplier.siret})" if held else ""))
        return _refused(v, en, fr, contract), None
    wanted = machine.rights.validator_roles(inv.cadre)
    val = inv.validator.siret if inv.validator is not None else None
    if wanted and val and not any(a.siret == val and a.role in wanted for a in cast):
        en = (f"Cadre {inv.cadre}'s validator must be the {_words(wanted)} of contract {contract}: {val} is not")
        fr = (f"Le valideur d'un cadre {inv.cadre} doit être le {_words(wanted, True)} du marché {contract} : "
              f"{val} ne l'est pas")
        return _refused(v, en, fr, val), None
    return with_check(v, None, Check("deposit_right", "passed", detail)), dep

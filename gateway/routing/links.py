"""A piece that continues an earlier one (public works: an A15 settles an
A4) is linked to it at deposit, or refused. Billing files cannot be crossed:
the earlier piece must have the same supplier and contract (BT-12) and the
number BT-25 gives, and be one the new piece's depositor may continue (the
A4 deposited to the MOE now depositing the A15, the A20 to the titulaire
signing it with its A8)."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.invoice import Invoice
from gateway.core.records import Check, Verdict
from gateway.routing.checks import STAGE, with_check
from gateway.routing.rights import Deposit, siret_as
from gateway.rules.controls import invoice_key
from gateway.store.pieces import earlier_pieces
from gateway.store.rows import PieceRow, piece_row
from gateway.store.repository import Store
from gateway.store.tables import Piece

# what did not match, in both languages, in the order they are checked
_SUPPLIER = ("the supplier SIRET", "le SIRET du fournisseur")
_CONTRACT = ("the contract number (BT-12)", "le numéro de marché (BT-12)")
_ACTOR = ("the actor it was deposited to", "l'acteur à qui elle a été déposée")


@dataclass(frozen=True)
class Link:
    piece_id: str  # the new piece
    earlier_id: str  # the piece it continues
    earlier_status: str
    linked_status: str
    earlier: PieceRow | None = field(default=None, compare=False)  # its row, as read here


def _miss(e: Piece, inv: Invoice, supplier: str, contract: str, depositor: str,
          dep: Deposit | None) -> tuple[str, str] | None:
    """What of an earlier piece does not match the new one (None: it matches)."""
    if (e.supplier_id or "") != supplier:
        return _SUPPLIER
    if e.contract_number is not None and e.contract_number != contract:  # NULL: recorded before contracts were
        return _CONTRACT
    if dep is None:  # `gateway validate --home` without --partner: nobody to compare with
        return None
    party = json.loads(e.parties_json or "{}").get(depositor, {})
    if party.get("partner") == dep.partner or party.get("siret") in dep.sirets:
        return None
    if dep.taken_at_word and party.get("siret") and party.get("siret") == siret_as(inv, depositor):
        return None  # a partner declared nowhere is the party the piece names, as before structures
    return _ACTOR


def resolve_links(settings: Settings, store: Store, verdicts: Sequence[Verdict], piece_ids: Sequence[str],
                  machine: Any, deposits: Mapping[str, Deposit] | None = None) -> tuple[list[Verdict], list[Link]]:
    """A piece whose cadre continues an earlier one (an A15 settles an A4)
    names it in BT-25; without it, if no piece of its supplier and contract
    deposited to its depositor has that number, if several do, or if that
    piece cannot be linked now, the new piece is refused (REJ_COH) and the
    earlier one is left as is. `deposits` (routing.rights): who each piece is
    deposited as; None: that part is not checked (a preview without partner)."""
    out, links = [], []
    for v, pid in zip(verdicts, piece_ids):
        rule = machine.link(v.invoice.cadre) if (v.valid and v.invoice is not None) else None
        if rule is None:
            out.append(v)
            continue
        inv = v.invoice
        ref = inv.original_invoice
        supplier, contract = invoice_key(inv)[0], (inv.contract_number or "").strip()
        dep = deposits.get(pid) if deposits is not None else None
        cadres = "/".join(rule.links_to)
        found = earlier_pieces(store, ref, rule.links_to) if ref else []
        misses = [_miss(e, inv, supplier, contract, machine.depositor(inv.cadre), dep) for e in found]
        matched = [e for e, m in zip(found, misses) if m is None]
        problem = None
        if not found:
            problem = (f"Cadre {inv.cadre} continues a piece of cadre {cadres}: name it in the "
                       f"preceding invoice reference (BT-25); {'none given' if not ref else f'{ref!r} not found'}",
                       f"Le cadre {inv.cadre} fait suite à une pièce de cadre {cadres} : "
                       f"indiquez-la en référence de facture antérieure (BT-25) ; "
                       f"{'aucune indiquée' if not ref else f'{ref!r} introuvable'}")
        elif not matched:
            first = next(m for m in (_SUPPLIER, _CONTRACT, _ACTOR) if m in misses)  # the closest miss
            problem = (f"No piece {ref!r} ({cadres}) of this billing file: {ref!r} exists, but {first[0]} does not "
                       f"match (supplier {supplier or '-'}, contract {contract or 'none'})",
                       f"Aucune pièce {ref!r} ({cadres}) de ce dossier de facturation : {ref!r} existe, mais "
                       f"{first[1]} ne correspond pas (fournisseur {supplier or '-'}, marché {contract or 'aucun'})")
        elif len(matched) > 1:
            problem = (f"{len(matched)} pieces {ref!r} ({cadres}) of supplier {supplier}, contract "
                       f"{contract or 'none'}: the link is ambiguous", f"{len(matched)} pièces {ref!r} ({cadres}) "
                       f"du fournisseur {supplier}, marché {contract or 'aucun'} : le rattachement est ambigu")
        else:
            earlier = matched[0]
            refused = machine.check(cadre=earlier.cadre, current=earlier.status, new=rule.linked_status,
                                    role="platform", reason=None)
            if refused is not None:
                problem = (f"Piece {earlier.invoice_number} ({earlier.cadre}) is {earlier.status}: it cannot be "
                           f"{rule.linked_status} now", f"La pièce {earlier.invoice_number} ({earlier.cadre}) est "
                           f"{earlier.status} : elle ne peut pas passer {rule.linked_status} maintenant")
        if problem:
            out.append(with_check(v, codes.finding("REJ_COH", problem[0], problem[1],
                                                   location=inv.location("original_invoice"), value=ref,
                                                   stage=STAGE),
                                  Check("link", "failed", problem[0])))
            continue
        links.append(Link(pid, earlier.id, earlier.status, rule.linked_status, piece_row(earlier)))
        out.append(with_check(v, None, Check("link", "passed", f"continues {earlier.id} ({earlier.cadre})")))
    return out, links

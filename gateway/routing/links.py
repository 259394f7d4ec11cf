"""A piece that continues an earlier one (public works: an A15 settles an
A4) is linked to it at deposit, or refused."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.records import Check, Verdict
from gateway.routing.checks import STAGE, with_check
from gateway.store.pieces import earlier_piece
from gateway.store.rows import PieceRow, piece_row
from gateway.store.repository import Store


@dataclass(frozen=True)
class Link:
    piece_id: str  # the new piece
    earlier_id: str  # the piece it continues
    earlier_status: str
    linked_status: str
    earlier: PieceRow | None = field(default=None, compare=False)  # its row, as read here


def resolve_links(settings: Settings, store: Store, verdicts: Sequence[Verdict], piece_ids: Sequence[str],
                  machine: Any) -> tuple[list[Verdict], list[Link]]:
    """A piece whose cadre continues an earlier one (an A15 settles an A4)
    names it in BT-25; without it, or if that piece cannot be linked now,
    the new piece is refused (REJ_COH) and the earlier one is left as is."""
    out, links = [], []
    for v, pid in zip(verdicts, piece_ids):
        rule = machine.link(v.invoice.cadre) if (v.valid and v.invoice is not None) else None
        if rule is None:
            out.append(v)
            continue
        ref = v.invoice.original_invoice
        earlier = earlier_piece(store, ref, rule.links_to) if ref else None
        problem = None
        if earlier is None:
            problem = (f"Cadre {v.invoice.cadre} continues a piece of cadre {'/'.join(rule.links_to)}: name it in the "
                       f"preceding invoice reference (BT-25); {'none given' if not ref else f'{ref!r} not found'}",
                       f"Le cadre {v.invoice.cadre} fait suite à une pièce de cadre {'/'.join(rule.links_to)} : "
                       f"indiquez-la en référence de facture antérieure (BT-25) ; "
                       f"{'aucune indiquée' if not ref else f'{ref!r} introuvable'}")
        else:
            refused = machine.check(cadre=earlier.cadre, current=earlier.status, new=rule.linked_status,
                                    role="platform", reason=None)
            if refused is not None:
                problem = (f"Piece {earlier.invoice_number} ({earlier.cadre}) is {earlier.status}: it cannot be "
                           f"{rule.linked_status} now", f"La pièce {earlier.invoice_number} ({earlier.cadre}) est "
                           f"{earlier.status} : elle ne peut pas passer {rule.linked_status} maintenant")
        if problem:
            out.append(with_check(v, codes.finding("REJ_COH", problem[0], problem[1],
                                                   location=v.invoice.location("original_invoice"), value=ref,
                                                   stage=STAGE),
                                  Check("link", "failed", problem[0])))
            continue
        links.append(Link(pid, earlier.id, earlier.status, rule.linked_status, piece_row(earlier)))
        out.append(with_check(v, None, Check("link", "passed", f"continues {earlier.id} ({earlier.cadre})")))
    return out, links

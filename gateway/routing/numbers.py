"""Invoice numbers are unique per supplier and year (REJ_UNI): what each
accepted piece wants registered, and the verdicts once the store answered
who holds each number (gateway.store.pieces.register_numbers)."""
from __future__ import annotations

from collections.abc import Sequence

from gateway.core import codes
from gateway.core.records import Check, Verdict
from gateway.rules.controls import invoice_key
from gateway.routing.checks import STAGE, with_check


def numbers_wanted(verdicts: Sequence[Verdict], piece_ids: Sequence[str]) -> dict[str, tuple[str, str, int]]:
    """(supplier, number, year) of every accepted piece, by piece id."""
    wanted = {}
    for v, pid in zip(verdicts, piece_ids):
        if v.valid and v.invoice is not None:
            supplier, number, year = invoice_key(v.invoice)
            if supplier and number:
                wanted[pid] = (supplier, number, year or 0)
    return wanted


def enforce_uniqueness(verdicts: Sequence[Verdict], piece_ids: Sequence[str],
                       wanted: dict[str, tuple[str, str, int]], holders: dict[str, str]) -> list[Verdict]:
    """REJ_UNI: an invoice number already accepted for the same supplier in
    the same year. The first holder keeps it; its status is never touched.
    `holders` is what `store.pieces.register_numbers` answered for `wanted`."""
    out = []
    for v, pid in zip(verdicts, piece_ids):
        holder = holders.get(pid)
        if pid not in wanted:
            out.append(v)
        elif holder and holder != pid:
            supplier, number, year = wanted[pid]
            out.append(with_check(v, codes.finding(
                "REJ_UNI", f"Invoice number {number} of supplier {supplier} for {year} was already accepted "
                f"(piece {holder}); send a new number", f"Le numéro de facture {number} du fournisseur {supplier} "
                f"pour {year} a déjà été accepté (pièce {holder}) ; émettez un nouveau numéro",
                location=v.invoice.location("invoice_number"), value=number, stage=STAGE),
                Check("uniqueness", "failed", f"already accepted as {holder}")))
        else:
            out.append(with_check(v, None, Check("uniqueness", "passed", f"{wanted[pid][1]} registered")))
    return out

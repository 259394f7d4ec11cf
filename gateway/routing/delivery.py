"""Delivering a piece to a party: the original, its documents, then the
pivot, in `outbox/<party>/<service or _>/`, under names made from the piece
id (a flow run again rewrites the same files)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.core.config import Settings
from gateway.core.files import atomic_write
from gateway.core.records import Format, Verdict
from gateway.outputs.pivot import PivotAttachment, write_pivot
from gateway.routing.parties import folder_of, safe_name
from gateway.rules.directory import find_structure
from gateway.store.repository import ClaimedFlow

RESERVED_FOLDERS = frozenset({"reports", "statuses"})
_EXT = {Format.UBL_INVOICE: ".xml", Format.UBL_CREDITNOTE: ".xml", Format.CII: ".xml",
        Format.FACTURX: ".pdf", Format.PDF: ".pdf", Format.PDF_SIGNED: ".pdf"}


def delivery_dir(settings: Settings, party: dict[str, Any]) -> Path | None:
    folder = folder_of(settings, party)
    if folder is None:
        return None
    service = safe_name(party.get("service") or "_")
    if service in RESERVED_FOLDERS:  # a service code must not land among the party's own return files
        service = f"service-{service}"
    return settings.outbox / folder / service


def delivery_writes(settings: Settings, flow: ClaimedFlow, verdict: Verdict, piece_id: str,
                    party: dict[str, Any], *, renvoi: str = "Non") -> tuple[Path, list[Callable[[], None]]]:
    """What to write to deliver one piece to one party: the original, its
    documents, then the pivot. Returns the folder and the writers."""
    target = delivery_dir(settings, party)
    inv = verdict.invoice
    ext = _EXT.get(verdict.format, Path(verdict.name).suffix or ".bin")
    original = f"{piece_id}{ext}"
    structure = find_structure(settings, inv.recipient.siret) if inv.recipient.siret else None
    service = structure.service(inv.service_code) if inv.service_code and structure else None
    # The pivot lists the invoice document (01: the PDF rendering when one came
    # with the data, else the original) and the supporting documents (02).
    # A Factur-X's own PDF is the original: delivered once.
    docs, attachments = [], []
    for n, d in enumerate(verdict.documents, 1):
        if d.data == verdict.original:
            continue
        name = f"{piece_id}.pj{n}-{safe_name(d.name)}"
        docs.append((name, d.data))
        attachments.append(PivotAttachment(d.name, d.mime, kind=d.kind))
    deposited = (Path(verdict.name).name or original, "application/pdf" if ext == ".pdf" else "application/xml")
    pivot = write_pivot(inv, flow_id=flow.id, piece_id=piece_id, received_at=flow.received_at, structure=structure,
                        service=service, attachments=attachments, original=deposited, renvoi=renvoi,
                        emitter_id=settings.platform_id,
                        receiver_id=party.get("siret") or party.get("partner") or "DEST")
    writes: list[Callable[[], None]] = [lambda: atomic_write(target / original, verdict.original)]
    writes += [lambda n=n, b=b: atomic_write(target / n, b) for n, b in docs]
    return target, writes + [lambda: atomic_write(target / f"{piece_id}.pivot.xml", pivot)]

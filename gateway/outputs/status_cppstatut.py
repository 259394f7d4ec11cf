"""Status files in the platform's format: a CPPStatut holding
CPPFactureStatuts (AIFE CPPStatutPivot V1.19), as public recipients'
software reads them; one CPPFactureStatutUnitaire per notice, valid against
CPPStatutPivot_V1_19.xsd, readable back by gateway.lifecycle's status_in.
"""
from __future__ import annotations

import hashlib

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from gateway.core.clock import as_utc, iso
from gateway.core.invoice import siret_error
from gateway.outputs.cppstatut import CPPStatut
from gateway.outputs.pivot import EU_COUNTRIES
from gateway.outputs.status_files import ForReceiver, StatusFileError, StatusNotice, Statuses


def _xml_text(n: StatusNotice, needs_reason: bool) -> str | None:
    """The XML carries one text: the motif first, then the comment."""
    first, second = (n.reason, n.comment) if needs_reason or n.reason else (n.comment, None)
    parts = [t.strip() for t in (first, second) if t and t.strip()]
    if n.deposited_for and n.status == "DEPOSEE":  # Commentaire is the one free text: say who deposited it for whom
        parts.append(f"déposée par {n.deposited_by} ({n.deposited_as}) pour le rôle {n.deposited_for}")
    return " / ".join(dict.fromkeys(parts)) or None


def status_xml(notices: Sequence[StatusNotice], machine: Statuses, *, platform_id: str, receiver_id: str,
               receiver_name: str, flow_id: str | None = None, produced_at: datetime | None = None) -> bytes:
    """A CPPStatut holding CPPFactureStatuts, one CPPFactureStatutUnitaire per
    notice, valid against CPPStatutPivot_V1_19.xsd. IdStatut is the status's
    pivot number and ComplementStatut its name. StatusFileError when a notice
    lacks what the format requires (a 14-character debtor SIRET, a supplier)."""
    return status_xml_for(notices, machine, platform_id=platform_id, flow_id=flow_id,
                          produced_at=produced_at)(receiver_id, receiver_name)


def status_xml_for(notices: Sequence[StatusNotice], machine: Statuses, *, platform_id: str,
                   flow_id: str | None = None, produced_at: datetime | None = None) -> ForReceiver:
    """The same CPPStatut for several receivers: built once, then written
    for each (receiver id, receiver name); only the envelope's Recepteur
    differs. Raises StatusFileError at once, as status_xml does."""
    if not notices:
        raise StatusFileError("a CPPStatut needs at least one status")
    produced = produced_at or max(as_utc(n.at) for n in notices)
    # without a flow id, one made of what the message says: two messages never share it (a time to the
    # second did), and the same message written again keeps it
    fid = flow_id or "ST" + hashlib.sha256("|".join(
        f"{n.piece_id}/{n.status}/{iso(n.at)}" for n in notices).encode()).hexdigest()[:16].upper()
    msg = CPPStatut(produced_on=iso(produced)[:10], flow_id=fid, emitter_id=platform_id)

    statuts = etree.SubElement(msg.root, "CPPFactureStatuts", compteur=str(len(notices)))
    for i, n in enumerate(notices, 1):
        info = machine.info(n.status)
        unit = etree.SubElement(statuts, "CPPFactureStatutUnitaire", NumOrdre=str(i))
        sup = etree.SubElement(unit, "Fournisseur")
        ident = (n.supplier_id or "").strip()
        country = (n.supplier_country or "FR").strip().upper()
        if not ident:
            raise StatusFileError(f"piece {n.piece_id}: the supplier has no identifier")
        if len(ident) == 14 and ident.isdigit() and not siret_error(ident):
            kind = "1"
        else:  # 2: EU VAT id, 3: outside the EU (as the invoice pivot, outputs/pivot.py)
            kind = "2" if country in EU_COUNTRIES else "3"
        etree.SubElement(sup, "TypeIdentifiant").text = kind
        etree.SubElement(sup, "Identifiant").text = ident
        etree.SubElement(sup, "RaisonSociale").text = (n.supplier_name or ident).strip() or ident
        if len(country) == 2 and country.isalpha():
            etree.SubElement(sup, "CodePays").text = country
        deb = etree.SubElement(unit, "Debiteur")
        siret = (n.debtor_siret or "").strip()
        if len(siret) != 14:
            raise StatusFileError(f"piece {n.piece_id}: the debtor SIRET must be 14 characters, not {siret!r}")
        etree.SubElement(deb, "TypeIdentifiant").text = "1"
        etree.SubElement(deb, "Identifiant").text = siret
        if n.debtor_name:
            etree.SubElement(deb, "Nom").text = n.debtor_name
        if n.service_code:
            if len(n.service_code) > 100:
                raise StatusFileError(f"piece {n.piece_id}: the service code is longer than 100 characters")
            etree.SubElement(deb, "CodeService").text = n.service_code
        data = etree.SubElement(unit, "DonneesStatut")
        etree.SubElement(data, "IdStatut").text = info.pivot_id
        etree.SubElement(data, "ComplementStatut").text = info.name
        text = _xml_text(n, info.needs_reason)
        if text:
            etree.SubElement(data, "Commentaire").text = text
        etree.SubElement(data, "Horodatage").text = iso(n.at)
        etree.SubElement(data, "Producteur", Id=n.by_role)
        etree.SubElement(data, "IdFacture").text = n.invoice_number or n.piece_id
        if n.invoice_date:
            etree.SubElement(data, "DateFacture").text = n.invoice_date.isoformat()

    def for_receiver(receiver_id: str, receiver_name: str) -> bytes:
        msg.address(receiver_id, receiver_name)
        return msg.to_bytes()

    return for_receiver


@dataclass(frozen=True)
class CppStatutOutput:
    """Status files as CPPStatut / CPPFactureStatuts XML, each naming its receiver."""

    name: str = "cppstatut"
    suffix: str = ".xml"

    def render(self, notices: Sequence[StatusNotice], machine: Statuses, *, platform_id: str,
               flow_id: str | None = None) -> ForReceiver:
        return status_xml_for(notices, machine, platform_id=platform_id, flow_id=flow_id)

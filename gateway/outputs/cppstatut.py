"""The platform's status message, CPPStatut (AIFE CPPStatutPivot V1.19): its
envelope, built here once for the two messages the gateway writes in it,
the flow reports (CPPFluxStatuts, outputs/reports.py) and the status files
(CPPFactureStatuts, outputs/status_cppstatut.py).

The envelope carries the production date (DtPrd) and the flow id (IdFlx),
then the receiver and the emitter; the caller adds its statuses after it.
"""
from __future__ import annotations

from lxml import etree

VERSION = "1.19"


def edi_id(code: str) -> str:
    """Partner ids of the platform's envelopes (CPPStatut, CPPFacturePivot) are 3 to 8 characters."""
    c = "".join(ch for ch in code.upper() if ch.isalnum() or ch in "_-")[:8]
    return c.ljust(3, "_")


class CPPStatut:
    """A CPPStatut message being written: the envelope is made here, the
    statuses go under `root`. The receiver is named last, and may be named
    again to write the same message for another receiver (only Recepteur
    differs, so the rest is built once)."""

    def __init__(self, *, produced_on: str, flow_id: str, emitter_id: str, emitter_label: str | None = None) -> None:
        self.root = etree.Element("CPPStatut", Version=VERSION)
        env = etree.SubElement(etree.SubElement(self.root, "Enveloppe"), "EnveloppeUnitaire", NumOrdre="1")
        params = etree.SubElement(env, "Parametres")
        for i, (code, val) in enumerate((("DtPrd", produced_on), ("IdFlx", flow_id)), 1):
            p = etree.SubElement(params, "ParametreIndiv", NumOrdre=f"{i:04d}")
            etree.SubElement(p, "Code").text = code
            etree.SubElement(p, "Valeurparametre").text = val
        parts = etree.SubElement(env, "Partenaires")
        rec = etree.SubElement(parts, "Recepteur")
        self._receiver_id, self._receiver_label = etree.SubElement(rec, "Id"), etree.SubElement(rec, "Libelle")
        em = etree.SubElement(parts, "Emetteur")
        etree.SubElement(em, "Id").text = edi_id(emitter_id)
        if emitter_label is not None:
            etree.SubElement(em, "Libelle").text = emitter_label

    def address(self, receiver_id: str, receiver_label: str) -> None:
        """Name the receiver: its envelope id (edi_id) and its label as given."""
        self._receiver_id.text, self._receiver_label.text = edi_id(receiver_id), receiver_label

    def to_bytes(self) -> bytes:
        return etree.tostring(self.root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

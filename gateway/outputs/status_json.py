"""Status files as JSON: {"statuses_version": 1, "statuses": [...]}, one
entry per notice with the status's label, pivot number and the reform's
CDV code; readable back by gateway.lifecycle's status_in. The same bytes
for every party receiving it.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.core.clock import iso
from gateway.outputs.status_files import ForReceiver, StatusNotice, Statuses

JSON_VERSION = 1


def status_json(notices: Sequence[StatusNotice], machine: Statuses) -> bytes:
    """{"statuses_version": 1, "statuses": [...]}, one entry per notice, readable
    back by parse_status_file."""
    entries = []
    for n in notices:
        info = machine.info(n.status)
        entries.append({
            "piece_id": n.piece_id,
            "invoice_number": n.invoice_number,
            "invoice_date": n.invoice_date.isoformat() if n.invoice_date else None,
            "cadre": n.cadre,
            "supplier": n.supplier_id,
            "supplier_name": n.supplier_name,
            "supplier_country": n.supplier_country,
            "debtor_siret": n.debtor_siret,
            "debtor_name": n.debtor_name,
            "service_code": n.service_code,
            "status": n.status,
            "label": info.label_fr,
            "final": info.final,
            "pivot_id": info.pivot_id,
            "cdv": info.cdv,
            "cdv_label": info.cdv_label,
            "previous": n.previous,
            "reason": n.reason,
            "comment": n.comment,
            "at": iso(n.at),
            "by_role": n.by_role,
        })
        if n.deposited_for:  # "deposited by X for role Y"
            entries[-1].update(deposited_by=n.deposited_by, deposited_as=n.deposited_as, deposited_for=n.deposited_for)
    return json.dumps({"statuses_version": JSON_VERSION, "statuses": entries}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")  # one line: the C encoder, 5x faster than indent


@dataclass(frozen=True)
class JsonOutput:
    """Status files as JSON, the same for every receiver."""

    name: str = "json"
    suffix: str = ".json"

    def render(self, notices: Sequence[StatusNotice], machine: Statuses, *, platform_id: str,
               flow_id: str | None = None) -> ForReceiver:
        body = status_json(notices, machine)
        return lambda _receiver_id, _receiver_name: body

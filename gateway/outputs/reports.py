"""Return files for partners: one report per flow, as JSON and as the
platform's status format (CPPStatut / CPPFluxStatuts, V1.19).

Written atomically (temporary name in the same folder, then rename), so a
partner's software never reads half a report, and named after the flow id,
so a re-run after a crash overwrites rather than adds.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.core import codes
from gateway.store.db import iso
from gateway.core.files import atomic_write
from gateway.core.records import Finding, FlowState, Verdict
from gateway.outputs.cppstatut import CPPStatut
from gateway.outputs.reports_cdar import report_cdar

REPORT_VERSION = 1

# CPPFluxStatuts/IdStatut (chorus-domain.md 2a)
FLUX_STATUS = {
    FlowState.IN_INTEGRE: "90",
    FlowState.IN_INTEGRE_PARTIEL: "96",
    FlowState.IN_REJETE: "93",
}


def report_dict(*, flow_id: str, partner: str, file_name: str, sha256: str, size: int, received_at: datetime,
                fmt: str, state: FlowState, verdicts: tuple[Verdict, ...], file_findings: tuple[Finding, ...],
                duplicate_of: str | None, processed_at: datetime,
                described: list[dict[str, Any]] | None = None, replay_of: str | None = None) -> dict[str, Any]:
    """`described`: the verdicts' as_dict(), when the caller made them already.
    `replay_of`: the earlier flow of the same file this one evaluates again."""
    return {
        "report_version": REPORT_VERSION,
        "flow_id": flow_id,
        "partner": partner,
        "file": file_name,
        "sha256": sha256,
        "size": size,
        "received_at": iso(received_at),
        "processed_at": iso(processed_at),
        "format": fmt,
        "state": state.value,
        "flux_status": FLUX_STATUS[state],
        "duplicate_of": duplicate_of,
        "replay_of": replay_of,
        "errors": [f.as_dict() for f in file_findings],
        "pieces": described if described is not None else [v.as_dict() for v in verdicts],
    }


def flux_status_xml(report: dict[str, Any], *, platform_id: str = "GTW001") -> bytes:
    """The report as a CPPStatut message carrying one CPPFluxStatuts."""
    msg = CPPStatut(produced_on=report["processed_at"][:10], flow_id=report["flow_id"], emitter_id=platform_id,
                    emitter_label="Passerelle")
    msg.address(report["partner"], report["partner"])
    statuts = etree.SubElement(msg.root, "CPPFluxStatuts", compteur="1")
    unit = etree.SubElement(statuts, "CPPFluxStatutUnitaire", NumOrdre="1")
    data = etree.SubElement(unit, "DonneesStatut")
    etree.SubElement(data, "IdStatut").text = report["flux_status"]
    etree.SubElement(data, "ComplementStatut").text = report["state"][:40]
    ok = sum(1 for p in report["pieces"] if p["valid"])
    etree.SubElement(data, "Commentaire").text = (
        f"{report['file']} : {ok}/{len(report['pieces'])} pièce(s) intégrée(s)"
        + (f" ; doublon du flux {report['duplicate_of']}" if report.get("duplicate_of") else ""))
    etree.SubElement(data, "Horodatage").text = report["processed_at"]  # UTC with its Z, as everywhere
    etree.SubElement(data, "IdFlux").text = report["flow_id"]
    lines = list(_error_lines(report))
    if lines:
        det = etree.SubElement(data, "Details", NbLignesErreur=str(len(lines)))
        for n, (err, where) in enumerate(lines, 1):
            li = etree.SubElement(det, "LigneErreurDetail", IdLigne=str(n))
            etree.SubElement(li, "NatureErreur").text = codes.nature(err["code"])
            etree.SubElement(li, "CodeErreur").text = err["code"]
            etree.SubElement(li, "LibelleErreur").text = err.get("message_fr") or err["message"]
            etree.SubElement(li, "DescriptionErreur").text = where
    return msg.to_bytes()


def _error_lines(report: dict[str, Any]):
    for err in report["errors"]:
        yield err, _describe(err, None)
    for piece in report["pieces"]:
        for err in piece["errors"]:
            yield err, _describe(err, piece)


def _describe(err: dict[str, Any], piece: dict[str, Any] | None) -> str:
    bits = []
    if piece is not None:
        bits.append(f"pièce {piece['index']} ({piece['name']})")
    loc = err.get("location") or {}
    if loc.get("member") and (piece is None or loc["member"] != piece["name"]):
        bits.append(loc["member"])
    if loc.get("xpath"):
        bits.append(loc["xpath"])
    if loc.get("line"):
        bits.append(f"ligne {loc['line']}")
    if err.get("rule"):
        bits.append(f"règle {err['rule']}")
    if err.get("value") is not None:
        bits.append(f"valeur « {err['value']} »")
    bits.append(err["message"])
    return " ; ".join(bits)


def write_flow_report(reports_dir: Path, report: dict[str, Any], *, cdar: bool = False,
                      **xml_opts: Any) -> tuple[Path, Path]:
    """Write <flow-id>.json and <flow-id>.xml; XML first so the JSON (which
    connectors usually poll for) appears last. `cdar`: the partner receives
    the reform's CDAR too: <flow-id>.cdar.xml when the report has refusals
    the reform names (reports_cdar.py)."""
    fid = report["flow_id"]
    xml_path = reports_dir / f"{fid}.xml"
    json_path = reports_dir / f"{fid}.json"
    atomic_write(xml_path, flux_status_xml(report, **xml_opts))
    if cdar:
        body = report_cdar(report, platform_id=xml_opts.get("platform_id", "GTW001"))
        if body is not None:
            atomic_write(reports_dir / f"{fid}.cdar.xml", body)
    atomic_write(json_path, json.dumps(report, ensure_ascii=False).encode("utf-8"))
    return json_path, xml_path

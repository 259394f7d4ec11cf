"""XSD validation of UBL 2.1 and CII D16B.

Where schemas come from, in order:
1. folders named in `[validation] schema_dirs` (searched recursively for the
   official file names), so a deployment can try another release;
2. the artefacts the gateway ships in schemas/ (gateway.rules.manifest): the
   OASIS UBL 2.1 Invoice/CreditNote schemas and the UN/CEFACT CII D16B
   schemas (uncoupled code lists, as the EN 16931 artefacts use), each file
   checked against its SHA-256 in schemas/MANIFEST.toml. A missing or altered
   file is refused (ERR_VALIDATEUR naming it), never replaced by another schema.
Every verdict says which schema gave it. lxml validates (fast); xmlschema is
asked only when a document fails, to explain more than lxml does.
"""
from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.core import codes
from gateway.core.records import Check, Finding, Format, Location
from gateway.rules import manifest

log = logging.getLogger("gateway.xsd")

# official file names, and where schemas/ holds them
WANTED = {
    Format.UBL_INVOICE: ("UBL-Invoice-2.1.xsd", "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd"),
    Format.UBL_CREDITNOTE: ("UBL-CreditNote-2.1.xsd", "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"),
    Format.CII: ("CrossIndustryInvoice_100pD16B.xsd",
                 "cii-d16b/uncoupled/CII/uncefact/data/standard/CrossIndustryInvoice_100pD16B.xsd"),
}
MAX_ERRORS = 100


@dataclass(frozen=True)
class SchemaRef:
    path: Path
    source: str  # human text: where the schema came from


@functools.lru_cache(maxsize=None)
def find_schema(fmt: Format, schema_dirs: tuple[Path, ...], artefacts: Path | None = None) -> SchemaRef:
    """The XSD of a format: configured folders first, then the verified artefacts
    of `artefacts` (None: the shipped schemas/). Raises manifest.ArtefactError
    when the artefacts cannot be trusted."""
    official, rel = WANTED[fmt]
    for d in schema_dirs:
        if not d.is_dir():
            continue
        # the EN 16931 artefacts use the "uncoupled" CII tree: code lists are the rules' job
        hits = sorted(d.rglob(official), key=lambda p: ("uncoupled" not in p.parts, len(p.parts), str(p)))
        if hits:
            return SchemaRef(hits[0], f"configured: {hits[0]}")
    found = manifest.locate(artefacts or manifest.packaged_root(), rel)
    return SchemaRef(found.path, found.source)


_compiled: dict[Path, etree.XMLSchema] = {}
_explainers: dict[Path, object] = {}
_lock = threading.Lock()


def _compile(ref: SchemaRef) -> etree.XMLSchema:
    with _lock:
        schema = _compiled.get(ref.path)
        if schema is None:
            parser = etree.XMLParser(no_network=True, resolve_entities=False)
            schema = etree.XMLSchema(etree.parse(str(ref.path), parser))
            _compiled[ref.path] = schema
        return schema


def validate(tree: etree._ElementTree, fmt: Format, schema_dirs: tuple[Path, ...], *,
             artefacts: Path | None = None, member: str | None = None,
             explain: bool = True) -> tuple[list[Finding], Check]:
    """Validate a parsed document against its schema. Returns findings and the
    check record (which schema was used). `artefacts`: the home's artefacts
    folder (manifest.root_of(settings)); None for the shipped schemas/."""
    try:
        ref = find_schema(fmt, tuple(schema_dirs), artefacts)
    except manifest.ArtefactError as exc:
        f = codes.finding("ERR_VALIDATEUR", f"No trusted XSD for {fmt.value}: {exc}",
                          f"Aucun schéma XSD de confiance pour {fmt.value} : {exc}", stage="xsd")
        return [f], Check("xsd", "failed", "no trusted schema")
    try:
        schema = _compile(ref)
    except (etree.XMLSchemaParseError, OSError) as exc:
        f = codes.finding("ERR_VALIDATEUR", f"XSD {ref.path} cannot be loaded: {exc}",
                          f"Le schéma {ref.path} ne peut être chargé : {exc}", stage="xsd")
        return [f], Check("xsd", "failed", "schema unreadable", ref.source)
    # XMLSchema objects are not re-entrant across threads; validation is cheap.
    with _lock:
        ok = schema.validate(tree)
        log_entries = list(schema.error_log) if not ok else []
    if ok:
        return [], Check("xsd", "passed", "", ref.source)
    findings = [_from_lxml(e, member) for e in log_entries[:MAX_ERRORS]]
    if explain:
        findings = _merge(findings, _explain(ref, tree, member))
    return findings, Check("xsd", "failed", f"{len(findings)} error(s)", ref.source)


def _from_lxml(e, member: str | None) -> Finding:  # noqa: ANN001
    msg = e.message
    value = None
    # lxml quotes the offending value as "The value 'X' ..." or "'X' is not ..."
    if "'" in msg:
        parts = msg.split("'")
        if len(parts) >= 3 and parts[0].rstrip().endswith(("value", ":")):
            value = parts[1]
    return codes.finding(
        "IRR_SYNTAX", f"Schema: {msg}", f"Schéma : {msg}",
        location=Location(xpath=e.path or None, line=e.line or None, member=member),
        value=value, rule=e.type_name, stage="xsd")


def _explain(ref: SchemaRef, tree: etree._ElementTree, member: str | None) -> list[Finding]:
    """xmlschema finds errors lxml stops at (e.g. after an unexpected child)."""
    try:
        import xmlschema

        with _lock:
            xs = _explainers.get(ref.path)
            if xs is None:
                xs = xmlschema.XMLSchema(str(ref.path), allow="local", defuse="always")
                _explainers[ref.path] = xs
        out = []
        for err in xs.iter_errors(tree):
            line = getattr(getattr(err, "elem", None), "sourceline", None)
            reason = err.reason or err.message
            val = None
            obj = getattr(err, "obj", None)
            if isinstance(obj, str):
                val = obj
            elif obj is not None and getattr(obj, "text", None):
                val = (obj.text or "").strip()[:200] or None
            out.append(codes.finding(
                "IRR_SYNTAX", f"Schema: {reason}", f"Schéma : {reason}",
                location=Location(xpath=err.path, line=line, member=member),
                value=val, rule="xsd", stage="xsd"))
            if len(out) >= MAX_ERRORS:
                break
        return out
    except Exception as exc:  # noqa: BLE001 - the explainer is a bonus, lxml's verdict stands
        log.debug("xmlschema could not explain %s: %s", ref.path, exc)
        return []


def _merge(primary: list[Finding], extra: list[Finding]) -> list[Finding]:
    """Keep lxml's findings; add xmlschema's for lines lxml did not report."""
    seen = {(f.location.line if f.location else None) for f in primary}
    out = list(primary)
    for f in extra:
        if (f.location.line if f.location else None) not in seen:
            out.append(f)
    return out[:MAX_ERRORS]


def schema_errors(path: Path, tree: etree._ElementTree | etree._Element) -> list[Any]:
    """lxml's errors validating `tree` against the XSD at `path` (compiled once,
    shared); raises etree.LxmlError or OSError when the schema cannot be loaded."""
    schema = _compile(SchemaRef(path, str(path)))
    with _lock:  # an XMLSchema is not re-entrant across threads
        return [] if schema.validate(tree) else list(schema.error_log)

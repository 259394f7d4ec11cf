"""From the values read to the canonical piece: typed values, the cadre, the `Invoice`.

Text read from a document becomes its canonical field's type (`convert_value`:
a value that is not one is reported, REJ_SEMAN, by the reader); the cadre de
facturation is chosen from BT-23, the AIFE extension or the default
(`resolve_cadre`, problems as REJ_CONT_B2G); `build_invoice` makes the frozen
`Invoice` the controls and routing work on.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.invoice import CADRES, Invoice, Line, Party, Source, Totals, Validator, VatLine
from gateway.core.records import Finding, Location, Severity
from gateway.rules.mapping.loader import PARTY_FIELDS

STAGE = "mapping"

# 2026 reform BT-23 codes (chorus-domain 1b) -> platform cadre. The reform table is not
# 1:1 with the A-codes: this is a design assumption [U], overridable in gateway.toml
# ([mapping] reform_cadres = { B1 = "A1", ... }). Codes absent here are refused.
REFORM_CADRES: dict[str, str] = {
    "B1": "A1", "S1": "A1", "M1": "A1",
    "B2": "A2", "S2": "A2", "M2": "A2",
    "S3": "A9",
    "B4": "A1", "S4": "A1", "M4": "A1",
    "S6": "A12",
}
_CHORUS_LIKE = re.compile(r"^A\d{1,3}$")
_REFORM_LIKE = re.compile(r"^[BSM]\d{1,2}$")


_DATE_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(Z|[+-]\d{2}:\d{2})?$", re.ASCII)
_DATE_102 = re.compile(r"^(\d{4})(\d{2})(\d{2})$", re.ASCII)  # CII DateTimeString format 102
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$", re.ASCII)
_INT = re.compile(r"^[+-]?\d+$", re.ASCII)


def convert_value(text: str, typ: str) -> tuple[Any, tuple[str, str] | None]:
    """(value, None) or (None, (english, french) reason)."""
    if typ == "text":
        return text, None
    if typ == "int":
        if _INT.match(text):
            return int(text), None
        return None, (f"{text!r} is not a whole number", f"{text!r} n'est pas un nombre entier")
    if typ == "decimal":
        if _DECIMAL.match(text):
            try:
                return Decimal(text), None
            except InvalidOperation:
                pass
        return None, (f"{text!r} is not a decimal number", f"{text!r} n'est pas un nombre décimal")
    m = _DATE_ISO.match(text) or _DATE_102.match(text)
    if m:
        try:
            return date(int(m[1]), int(m[2]), int(m[3])), None
        except ValueError:
            pass
    return None, (f"{text!r} is not a date (YYYY-MM-DD or YYYYMMDD)",
                  f"{text!r} n'est pas une date (AAAA-MM-JJ ou AAAAMMJJ)")


def resolve_cadre(values: dict[str, Any], sources: dict[str, Source],
                  settings: Settings) -> tuple[str, str, list[Finding]]:
    """Cadre from BT-23 when it is one, else the AIFE extension, else the default.

    BT-23 often carries something else (a Peppol process id): only values that
    look like a cadre (A-codes, reform B/S/M codes) are considered.
    """
    findings: list[Finding] = []
    custom = settings.section("mapping").get("reform_cadres", {})
    reform = {**REFORM_CADRES, **(custom if isinstance(custom, dict) else {})}

    def refuse(key: str, raw: str, en: str, fr: str) -> None:
        src = sources.get(key)
        findings.append(codes.finding(
            "REJ_CONT_B2G", en, fr, location=Location(xpath=src[0], line=src[1]) if src else None,
            value=raw, rule="cadre", stage=STAGE))

    chosen: tuple[str, str] | None = None
    bt23 = values.get("cadre.bt23")
    if bt23:
        code = bt23.strip().upper()
        if code in CADRES:
            chosen = (code, "BT-23")
        elif _CHORUS_LIKE.match(code):
            refuse("cadre.bt23", bt23,
                   f"BT-23 {bt23!r} is not a cadre de facturation accepted here (A1 to A25, A11 retired)",
                   f"BT-23 {bt23!r} n'est pas un cadre de facturation accepté (A1 à A25, A11 retiré)")
        elif _REFORM_LIKE.match(code):
            if reform.get(code) in CADRES:
                chosen = (reform[code], "BT-23")
            else:
                refuse("cadre.bt23", bt23,
                       f"BT-23 {bt23!r} (2026 reform code) has no public-sector cadre de facturation",
                       f"BT-23 {bt23!r} (code de la réforme 2026) n'a pas d'équivalent en cadre de facturation public")
    ext = values.get("cadre.extension")
    if ext:
        code = ext.strip().upper()
        if code not in CADRES:
            refuse("cadre.extension", ext, f"AIFE CategoryCode {ext!r} is not a cadre de facturation (A1 to A25)",
                   f"Le CategoryCode AIFE {ext!r} n'est pas un cadre de facturation (A1 à A25)")
        elif chosen is None:
            chosen = (code, "aife-extension")
        elif chosen[0] != code:
            src = sources.get("cadre.extension")
            findings.append(codes.finding(
                "REJ_COH", f"Cadre {chosen[0]} in BT-23 differs from AIFE CategoryCode {code}; BT-23 is used",
                f"Le cadre {chosen[0]} du BT-23 diffère du CategoryCode AIFE {code} ; le BT-23 est retenu",
                location=Location(xpath=src[0], line=src[1]) if src else None, value=ext,
                severity=Severity.WARNING, rule="cadre", stage=STAGE))
    return (*(chosen or (settings.default_cadre, "default")), findings)


def build_invoice(syntax: str, v: dict[str, Any], groups: dict[str, list[dict[str, Any]]],
                  sources: dict[str, Source], cadre: str, cadre_source: str) -> Invoice:
    def party(p: str) -> Party:
        return Party(**{a: v.get(f"{p}.{a}") for a in PARTY_FIELDS})

    def ref(p: str) -> Validator | None:
        if v.get(f"{p}.siret") or v.get(f"{p}.service"):
            return Validator(siret=v.get(f"{p}.siret"), service=v.get(f"{p}.service"))
        return None
    return Invoice(
        syntax=syntax,
        invoice_number=v.get("invoice_number"),
        issue_date=v.get("issue_date"),
        type_code=v.get("type_code"),
        currency=v.get("currency"),
        supplier=party("supplier"),
        recipient=party("recipient"),
        service_code=v.get("service_code"),
        engagement_number=v.get("engagement_number"),
        contract_number=v.get("contract_number"),
        buyer_reference=v.get("buyer_reference"),
        cadre=cadre,
        cadre_source=cadre_source,
        profile=v.get("profile"),
        original_invoice=v.get("original_invoice"),
        totals=Totals(net=v.get("totals.net"), tax=v.get("totals.tax"),
                      gross=v.get("totals.gross"), payable=v.get("totals.payable")),
        vat_breakdown=tuple(VatLine(**i) for i in groups.get("vat_breakdown", [])),
        lines=tuple(Line(**i) for i in groups.get("lines", [])),
        payment_means_code=v.get("payment_means_code"),
        payment_account=v.get("payment_account"),
        attachments=tuple((i["name"], i.get("mime") or "application/octet-stream")
                          for i in groups.get("attachments", []) if i.get("name")),
        validator=ref("validator"),
        validator2=ref("validator2"),
        moe=ref("moe"),
        sources=tuple(sources.items()),
    )

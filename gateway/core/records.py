"""Typed, immutable records that flow through the pipeline.

Every stage takes and returns these; nothing here does I/O. Errors are data
(`Finding`), gathered as a piece moves through the stages, never only raised.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, asdict
from typing import Any


class Severity(enum.IntEnum):
    """Ordered, so `worse than` is `>`."""

    INFO = 0
    WARNING = 1
    ERROR = 2  # the piece is rejected


class Format(str, enum.Enum):
    UBL_INVOICE = "ubl-invoice"
    UBL_CREDITNOTE = "ubl-creditnote"
    CII = "cii"
    FACTURX = "facturx"
    PDF = "pdf"
    PDF_SIGNED = "pdf-signed"
    LOT = "lot"
    STATUS = "status"  # a party's status file (CPPStatut/CPPFactureStatuts or JSON), not an invoice
    UNKNOWN = "unknown"

    @property
    def is_pdf(self) -> bool:
        return self in (Format.FACTURX, Format.PDF, Format.PDF_SIGNED)


class FlowState(str, enum.Enum):
    """Terminal states of a deposited flow (chorus-domain.md 2a)."""

    IN_INTEGRE = "IN_INTEGRE"
    IN_INTEGRE_PARTIEL = "IN_INTEGRE_PARTIEL"
    IN_REJETE = "IN_REJETE"


@dataclass(frozen=True)
class Location:
    """Where in the input a finding points: XPath and line in an XML,
    member name in a lot, page or object in a PDF."""

    xpath: str | None = None
    line: int | None = None
    member: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __str__(self) -> str:
        parts = []
        if self.member:
            parts.append(self.member)
        if self.xpath:
            parts.append(self.xpath)
        if self.line:
            parts.append(f"line {self.line}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Finding:
    """One problem (or remark) about a file or a piece.

    `code` is from the gateway's return-code table (gateway/codes.py);
    `message` is English, `message_fr` French, both readable by a sender.
    """

    code: str
    message: str
    message_fr: str = ""
    location: Location | None = None
    value: str | None = None
    severity: Severity = Severity.ERROR
    rule: str | None = None  # e.g. BR-CO-15, or the XSD error type
    stage: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "message_fr": self.message_fr or self.message,
            "location": self.location.as_dict() if self.location else {},
            "severity": self.severity.name.lower(),
            "stage": self.stage,
        }
        if self.value is not None:
            out["value"] = self.value
        if self.rule:
            out["rule"] = self.rule
        return out


@dataclass(frozen=True)
class Part:
    """One input document: a whole file, or one member of a lot."""

    index: int
    name: str
    data: bytes


@dataclass(frozen=True)
class Check:
    """A control that ran (or was skipped) on a piece, so a skipped check is
    never mistaken for a pass."""

    name: str
    outcome: str  # "passed" | "failed" | "skipped"
    detail: str = ""
    used: str = ""  # which schema / rule set gave the verdict


@dataclass(frozen=True)
class Document:
    """A file delivered with a piece: kind "01" is the invoice's own
    rendering (a PDF sent beside or inside the XML), "02" a supporting
    document (pièce jointe)."""

    name: str
    mime: str
    data: bytes = field(repr=False)
    kind: str = "02"


@dataclass(frozen=True)
class Verdict:
    """The outcome of validating one part."""

    index: int
    name: str
    format: Format
    findings: tuple[Finding, ...] = ()
    checks: tuple[Check, ...] = ()
    extra: tuple[tuple[str, Any], ...] = ()  # format-specific facts (profile, signatures...)
    # Not part of the report: the canonical invoice read by the mapping
    # (gateway.core.invoice.Invoice) and the documents to deliver with it.
    invoice: Any = field(default=None, compare=False, repr=False)
    documents: tuple[Document, ...] = field(default=(), compare=False, repr=False)
    original: bytes = field(default=b"", compare=False, repr=False)  # the part's bytes, delivered as received

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == Severity.WARNING)

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index,
            "name": self.name,
            "format": self.format.value,
            "valid": self.valid,
            "errors": [f.as_dict() for f in self.errors],
            "warnings": [f.as_dict() for f in self.warnings],
            "checks": [{"name": c.name, "outcome": c.outcome, "detail": c.detail, "used": c.used}
                       for c in self.checks],  # not asdict(): this runs for every piece
        }
        d.update(dict(self.extra))
        return d


def flow_state(verdicts: tuple[Verdict, ...], file_findings: tuple[Finding, ...] = ()) -> FlowState:
    """IN_INTEGRE when every piece is valid, IN_REJETE when none is (or the file
    itself is refused), IN_INTEGRE_PARTIEL otherwise."""
    if any(f.severity >= Severity.ERROR for f in file_findings) or not verdicts:
        return FlowState.IN_REJETE
    ok = sum(1 for v in verdicts if v.valid)
    if ok == len(verdicts):
        return FlowState.IN_INTEGRE
    if ok == 0:
        return FlowState.IN_REJETE
    return FlowState.IN_INTEGRE_PARTIEL

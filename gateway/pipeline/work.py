"""What the stages of one piece build up, and what a file's evaluation gives."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from gateway.core.records import Check, Document, Finding, Format, FlowState, Part, Severity, Verdict, flow_state


@dataclass(frozen=True)
class Evaluation:
    format: Format
    verdicts: tuple[Verdict, ...]
    file_findings: tuple[Finding, ...] = ()

    @property
    def state(self) -> FlowState:
        return flow_state(self.verdicts, self.file_findings)


@dataclass
class PieceWork:
    """What the stages of one piece build up (mutable only inside `evaluate_part`)."""

    part: Part
    format: Format
    tree: etree._ElementTree | None = None
    xml: bytes | None = None  # the XML under validation: the file itself, or the CII a Factur-X carries
    xml_format: Format | None = None  # that XML's format, when it differs from the piece's (facturx → cii)
    findings: list[Finding] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    invoice: Any = None  # the canonical Invoice, once the mapping has read it
    documents: list[Document] = field(default_factory=list)  # delivered with the piece
    selection: str = "chorus"  # which XML stages run (stages.SELECTIONS)

    @property
    def failed(self) -> bool:
        return any(f.severity >= Severity.ERROR for f in self.findings)

    def verdict(self) -> Verdict:
        return Verdict(index=self.part.index, name=self.part.name, format=self.format,
                       findings=tuple(self.findings), checks=tuple(self.checks),
                       extra=tuple(self.extra.items()), invoice=self.invoice, documents=tuple(self.documents),
                       original=self.part.data)

"""CDAR (the reform's life-cycle messages) in tests: a checker that runs the
CDAR D22B XSD and the BR-FR-CDV rules for real (Saxon, in the gateway's rule
worker), and a builder of the messages a party's software sends."""
from __future__ import annotations

import atexit
import functools
from datetime import date, datetime, timezone

from lxml import etree

from gateway.core.config import Settings
from gateway.core.records import Severity
from gateway.outputs import cdar_codes as cc
from gateway.rules import manifest
from gateway.rules.rulesets import RuleSet
from gateway.rules.schematron import RuleEngine

SHIPPED = manifest.packaged_root()


@functools.cache
def _xsd() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SHIPPED / cc.CDAR_XSD)))


@functools.cache
def _engine() -> RuleEngine:
    engine = RuleEngine(Settings(home=SHIPPED), timeout=60)
    atexit.register(engine.close)
    return engine


def cdv_problems(data: bytes) -> list[str]:
    """What the CDAR XSD and the BR-FR-CDV rules (fatal level) say of a message;
    [] when it passes both. Rules that could not run are a problem, never a pass."""
    doc = etree.fromstring(data)
    if not _xsd().validate(doc):
        return [f"XSD line {e.line}: {e.message}" for e in _xsd().error_log]
    rs = RuleSet("BR-FR-CDV", SHIPPED / cc.CDV_RULES, "br-fr-cdv", role="br-fr-cdv")
    result = _engine().check("cdar", data, ruleset=rs)
    if not result.ran:
        return [f"rules did not run: {[f.message for f in result.findings]}"]
    return [f"{f.rule}: {f.message}" for f in result.findings if f.severity >= Severity.ERROR]


def assert_cdv(data: bytes) -> etree._Element:
    problems = cdv_problems(data)
    assert not problems, "\n".join(problems)
    return etree.fromstring(data)


def party_cdar(*, invoice_number: str, cdv: int, seller_siret: str, issuer_siret: str, role: str = "BY",
               invoice_date: date = date(2024, 5, 2), reason_code: str | None = None, reason: str | None = None,
               note: str | None = None, type_code: str = "23", guideline: str = "urn.cpro.gouv.fr:1p0:CDV:invoice",
               at: datetime = datetime(2026, 9, 14, 9, 30, tzinfo=timezone.utc)) -> bytes:
    """A CDV as a buyer's software writes it, after the reform's example
    (XP Z12-012 annex B): the invoice by its number and seller, no gateway ids."""
    ns = cc.NSMAP
    E = lambda parent, p, name, text=None, **a: cc.el(parent, p, name, text, **a)  # noqa: E731
    root = etree.Element(f"{{{cc.RSM}}}{cc.ROOT}", nsmap=ns)
    ctx = E(root, "rsm", "ExchangedDocumentContext")
    E(E(ctx, "ram", "BusinessProcessSpecifiedDocumentContextParameter"), "ram", "ID", "REGULATED")
    E(E(ctx, "ram", "GuidelineSpecifiedDocumentContextParameter"), "ram", "ID", guideline)
    doc = E(root, "rsm", "ExchangedDocument")
    E(doc, "ram", "ID", f"{invoice_number}_{cdv}_{at:%Y%m%d%H%M%S}")
    E(doc, "ram", "Name", f"{invoice_number}-CDV-{cdv}")
    cc.stamp(doc, "IssueDateTime", at)
    E(E(doc, "ram", "SenderTradeParty"), "ram", "RoleCode", "WK")
    issuer = E(doc, "ram", "IssuerTradeParty")
    E(issuer, "ram", "GlobalID", issuer_siret[:9], schemeID="0002")
    E(issuer, "ram", "RoleCode", role)
    recipient = E(doc, "ram", "RecipientTradeParty")
    E(recipient, "ram", "RoleCode", "WK")
    ack = E(root, "rsm", "AcknowledgementDocument")
    E(E(ack, "ram", "MultipleReferencesIndicator"), "udt", "Indicator", "false")
    E(ack, "ram", "TypeCode", type_code)
    cc.stamp(ack, "IssueDateTime", at)
    ref = E(ack, "ram", "ReferenceReferencedDocument")
    E(ref, "ram", "IssuerAssignedID", invoice_number)
    E(ref, "ram", "TypeCode", "380")
    E(E(ref, "ram", "FormattedIssueDateTime"), "qdt", "DateTimeString", invoice_date.strftime("%Y%m%d"),
      format="102")
    E(ref, "ram", "ProcessConditionCode", str(cdv))
    seller = E(ref, "ram", "IssuerTradeParty")
    E(seller, "ram", "GlobalID", seller_siret[:9], schemeID="0002")
    E(seller, "ram", "GlobalID", seller_siret, schemeID="0009")
    E(seller, "ram", "RoleCode", "SE")
    if reason_code or reason or note:
        st = E(ref, "ram", "SpecifiedDocumentStatus")
        if reason_code:
            E(st, "ram", "ReasonCode", reason_code)
        if reason:
            E(st, "ram", "Reason", reason)
        E(st, "ram", "SequenceNumeric", "1")
        if note:
            E(E(st, "ram", "IncludedNote"), "ram", "Content", note)
    return cc.to_bytes(root)

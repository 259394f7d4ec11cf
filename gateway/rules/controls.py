"""French public-sector controls on a canonical piece.

Run in the documented order (chorus-domain 4): data the platform cannot do
without, identities (SIRET), platform limits, credit-note form, reserved
service, the validators and the MOE the cadre uses, then, when a directory is
loaded, the recipient, its routing obligations and those other parties
(docs/mapping-and-controls.md 4).
Every control leaves a Check; one that cannot run because an earlier one
failed is reported as skipped, never as passed.

Codes: SIRET_ERR, REJ_CONT_B2G, DEST_INC, DEST_ERR (gateway/codes.py); the
duplicate check (REJ_UNI) needs the store: see `invoice_key`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from gateway.core import codes
from gateway.core.config import Settings
from gateway.rules.directory import find_structure
from gateway.store.directory import Service, Structure
from gateway.core.invoice import (CREDIT_NOTE_CODES, CURRENCY, MAX_LENGTHS, VALIDATED_CADRES, WORKS_CADRES, Invoice,
                    siret_error)
from gateway.core.records import Check, Finding, Severity

STAGE = "controls"
RULES = "French public-sector rules"
DIRECTORY = "directory of public structures"
RESERVED_SERVICE = "FACTURES_PUBLIQUES"
# Type codes the platform takes: invoices (the pivot writes them as 380) and the credit note 381 [U].
ACCEPTED_TYPE_CODES = frozenset({380, 381, 383, 384, 385, 386, 389})
MANDATORY = (  # field, EN 16931 rule, English / French name
    ("invoice_number", "BR-02", "invoice number (BT-1)", "numéro de facture (BT-1)"),
    ("issue_date", "BR-03", "issue date (BT-2)", "date d'émission (BT-2)"),
    ("type_code", "BR-04", "invoice type code (BT-3)", "code type de facture (BT-3)"),
    ("currency", "BR-05", "currency (BT-5)", "devise (BT-5)"),
    ("totals.net", "BR-13", "total without VAT (BT-109)", "total hors TVA (BT-109)"),
    ("totals.gross", "BR-14", "total with VAT (BT-112)", "total TTC (BT-112)"),
    ("totals.payable", "BR-15", "amount due (BT-115)", "montant à payer (BT-115)"),
)


@dataclass(frozen=True)
class ControlReport:
    findings: tuple[Finding, ...]
    checks: tuple[Check, ...]
    structure: Structure | None = None  # the recipient, when the directory knows it
    service: Service | None = None  # its service named by the piece, when known

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= Severity.ERROR)

    @property
    def passed(self) -> bool:
        return not self.errors

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


@dataclass
class _Run:
    """What the controls learn as they go (the recipient's structure, its service)."""

    invoice: Invoice
    settings: Settings
    structure: Structure | None = None
    service: Service | None = None
    findings: list[Finding] = field(default_factory=list)

    def fail(self, code: str, en: str, fr: str, where: str | None = None, value: object = None,
             rule: str | None = None) -> None:
        self.findings.append(codes.finding(
            code, en, fr, location=self.invoice.location(where) if where else None,
            value=None if value is None else str(value), rule=rule, stage=STAGE))


@dataclass(frozen=True)
class Control:
    name: str
    run: Callable[[_Run], str]  # records findings on the run, returns the detail of the check
    needs: tuple[str, ...] = ()
    uses_directory: bool = False


# --- rules (no directory) -------------------------------------------------------

def _value(inv: Invoice, name: str) -> object:
    obj: object = inv
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _mandatory(r: _Run) -> str:
    missing = [(name, rule, en, fr) for name, rule, en, fr in MANDATORY if _value(r.invoice, name) is None]
    for _name, rule, en, fr in missing:
        r.fail("REJ_SEMAN", f"Missing or unreadable: {en}", f"Donnée absente ou illisible : {fr}", rule=rule)
    currency = r.invoice.currency
    if currency is not None and not CURRENCY.fullmatch(currency):
        r.fail("REJ_SEMAN", f"Currency {currency!r} is not an ISO 4217 code (3 capital letters)",
               f"La devise {currency!r} n'est pas un code ISO 4217 (3 lettres majuscules)", "currency", currency,
               "BR-CL-04")
        return ""
    return "invoice number, date, type, currency and totals present" if not missing else ""


def _siret_of(r: _Run, who: str, en_who: str, fr_who: str) -> str:
    party = getattr(r.invoice, who)
    if party.siret is None:
        if who == "supplier" and party.country and party.country.upper() != "FR":
            return f"foreign supplier ({party.country}): no SIRET expected"
        rule = "BR-FR-CPRO-10" if who == "recipient" else "BR-FR-CPRO-03"
        r.fail("SIRET_ERR", f"The {en_who} SIRET is missing (identifier with scheme 0009, or 1/SIRET)",
               f"Le SIRET du {fr_who} est absent (identifiant de schéma 0009, ou 1/SIRET)", rule=rule)
        return ""
    error = siret_error(party.siret)
    if error:
        r.fail("SIRET_ERR", f"The {en_who} SIRET {party.siret!r} {error[0]}",
               f"Le SIRET du {fr_who} {party.siret!r} {error[1]}", f"{who}.siret", party.siret, rule="siret")
        return ""
    return f"{party.siret} valid"


def _supplier_siret(r: _Run) -> str:
    return _siret_of(r, "supplier", "supplier", "fournisseur")


def _recipient_siret(r: _Run) -> str:
    return _siret_of(r, "recipient", "recipient", "destinataire")


def _lengths(r: _Run) -> str:
    before = len(r.findings)
    for name, limit, en, fr, rule in MAX_LENGTHS:
        value = getattr(r.invoice, name)
        if value is not None and len(value) > limit:
            r.fail("REJ_CONT_B2G", f"The {en} is {len(value)} characters long; at most {limit} are allowed",
                   f"Le {fr} fait {len(value)} caractères ; {limit} au plus sont admis", name, value, rule)
    return "within the platform's limits" if len(r.findings) == before else ""


def _credit_note(r: _Run) -> str:
    inv, t = r.invoice, r.invoice.totals
    negative = [n for n, v in (("net", t.net), ("gross", t.gross), ("payable", t.payable)) if v is not None and v < 0]
    if inv.type_code in CREDIT_NOTE_CODES and inv.type_code != 381:
        r.fail("REJ_CONT_B2G", f"Credit notes must have type code 381, not {inv.type_code}",
               f"Un avoir doit avoir le code type 381, pas {inv.type_code}", "type_code", inv.type_code,
               "credit-note-381")
    elif inv.type_code not in ACCEPTED_TYPE_CODES:
        r.fail("REJ_CONT_B2G", f"Type code {inv.type_code} is not accepted (invoices 380, 384, 386...; credit notes 381)",
               f"Le code type {inv.type_code} n'est pas accepté (factures 380, 384, 386... ; avoirs 381)",
               "type_code", inv.type_code, "type-code")
    elif negative:
        where = "totals.payable" if "payable" in negative else f"totals.{negative[0]}"
        if inv.type_code == 381:
            en, fr = ("A credit note (381) must carry positive amounts",
                      "Un avoir (381) doit porter des montants positifs")
        else:
            en, fr = ("An invoice with a negative total must be sent as a credit note (381) with positive amounts",
                      "Une facture de total négatif doit être émise comme avoir (381) aux montants positifs")
        r.fail("REJ_CONT_B2G", en, fr, where, _value(inv, where), "credit-note-positive")
    else:
        return f"type {inv.type_code} ({inv.piece_type})"
    return ""


def _reserved_service(r: _Run) -> str:
    code = r.invoice.service_code
    if code and code.strip().upper() == RESERVED_SERVICE:
        r.fail("REJ_CONT_B2G", f"Service code {RESERVED_SERVICE} is reserved for invoices between public bodies",
               f"Le code service {RESERVED_SERVICE} est réservé à la facturation entre entités publiques",
               "service_code", code, "reserved-service")
        return ""
    return "not a reserved service"


@dataclass(frozen=True)
class Reference:
    """A party the piece names by SIRET and routing delivers to by that SIRET:
    a validator or the maîtrise d'œuvre. Checked only where the cadre uses it."""

    attr: str  # the Invoice attribute (a Validator)
    en: str
    fr_of: str  # "du valideur": the French name after "le SIRET"
    fr: str  # "Le valideur": the French name opening a sentence
    cadres: frozenset[str]
    required: bool = False


VALIDATOR = Reference("validator", "validator", "du valideur", "Le valideur", VALIDATED_CADRES, required=True)
VALIDATOR2 = Reference("validator2", "second validator", "du second valideur", "Le second valideur", VALIDATED_CADRES)
MOE = Reference("moe", "maîtrise d'oeuvre (MOE)", "de la maîtrise d'œuvre (MOE)", "La maîtrise d'œuvre (MOE)",
                WORKS_CADRES)


def _reference(ref: Reference, r: _Run) -> str:
    inv = r.invoice
    v = getattr(inv, ref.attr)
    if inv.cadre not in ref.cadres:
        return f"cadre {inv.cadre} needs no {ref.en}" + (" (the one given is ignored)" if v else "")
    if v is None or not v.siret:
        if not ref.required:
            return f"no {ref.en} given"
        r.fail("REJ_CONT_B2G",
               f"Cadre {inv.cadre} needs a validator (titulaire or mandataire): give its SIRET",
               f"Le cadre {inv.cadre} exige un valideur (titulaire ou mandataire) : indiquez son SIRET",
               "cadre.bt23" if inv.cadre_source == "BT-23" else "cadre.extension", inv.cadre, "validator")
        return ""
    error = siret_error(v.siret)
    if error:
        r.fail("SIRET_ERR", f"The {ref.en} SIRET {v.siret!r} {error[0]}",
               f"Le SIRET {ref.fr_of} {v.siret!r} {error[1]}", f"{ref.attr}.siret", v.siret, "siret")
        return ""
    return f"{ref.en} {v.siret}"


# --- rules on the directory -------------------------------------------------------

def _recipient_known(r: _Run) -> str:
    siret = r.invoice.recipient.siret
    r.structure = find_structure(r.settings, siret)
    if r.structure is None:
        r.fail("DEST_INC", f"Recipient {siret} is not in the directory of public structures",
               f"Le destinataire {siret} n'est pas dans l'annuaire des structures publiques",
               "recipient.siret", siret, "directory")
        return ""
    return r.structure.raison_sociale


def _recipient_active(r: _Run) -> str:
    s = r.structure
    if not s.active:
        r.fail("DEST_ERR", f"Recipient {s.identifiant} ({s.raison_sociale}) is inactive in the directory",
               f"Le destinataire {s.identifiant} ({s.raison_sociale}) est inactif dans l'annuaire",
               "recipient.siret", s.identifiant, "directory")
        return ""
    return "active"


def _service_required(r: _Run) -> str:
    s = r.structure
    if not s.service_required:
        return "the structure does not require a service code"
    if not r.invoice.service_code:
        r.fail("REJ_CONT_B2G", f"Recipient {s.identifiant} requires a service code, none was given",
               f"Le destinataire {s.identifiant} exige un code service, aucun n'est indiqué",
               value=s.identifiant, rule="BR-FR-CPRO-11")
        return ""
    return "service code given"


def _service_exists(r: _Run) -> str:
    s, code = r.structure, r.invoice.service_code
    if not code:
        return "no service code given"
    if not s.services:
        return "the directory lists no services for this structure: not verified"
    r.service = s.service(code)
    if r.service is None:
        r.fail("REJ_CONT_B2G", f"Service code {code!r} does not exist for recipient {s.identifiant}",
               f"Le code service {code!r} n'existe pas pour le destinataire {s.identifiant}",
               "service_code", code, "directory-service")
        return ""
    if not r.service.active:
        r.fail("REJ_CONT_B2G", f"Service {code!r} of recipient {s.identifiant} is inactive",
               f"Le service {code!r} du destinataire {s.identifiant} est inactif",
               "service_code", code, "directory-service")
        return ""
    return f"service {code} ({r.service.name}) active"


def _engagement_required(r: _Run) -> str:
    s, inv = r.structure, r.invoice
    by_service = r.service is not None and r.service.engagement_required
    if not (s.engagement_required or by_service):
        return "no engagement number required"
    if not inv.engagement_number:
        who = f"service {r.service.code} of recipient" if by_service else "recipient"
        who_fr = f"le service {r.service.code} du destinataire" if by_service else "le destinataire"
        r.fail("REJ_CONT_B2G", f"The {who} {s.identifiant} requires an engagement number (BT-13), none was given",
               f"{who_fr[0].upper()}{who_fr[1:]} {s.identifiant} exige un numéro d'engagement (BT-13), aucun n'est indiqué",
               value=s.identifiant, rule="BR-FR-CPRO-12")
        return ""
    return "engagement number given"


def _service_or_engagement(r: _Run) -> str:
    s, inv = r.structure, r.invoice
    if not s.service_or_engagement:
        return "the structure does not require a service code or an engagement"
    if not (inv.service_code or inv.engagement_number):
        r.fail("REJ_CONT_B2G", f"Recipient {s.identifiant} requires a service code or an engagement number",
               f"Le destinataire {s.identifiant} exige un code service ou un numéro d'engagement",
               value=s.identifiant, rule="BR-FR-CPRO-13")
        return ""
    return "service code or engagement given"


def _moa(r: _Run) -> str:
    """[U] a MOA-only structure takes only public-works pieces, and works pieces go to a MOA."""
    s, cadre = r.structure, r.invoice.cadre
    if cadre in WORKS_CADRES and not s.is_moa:
        r.fail("REJ_CONT_B2G", f"Cadre {cadre} (public works) must be addressed to a MOA; {s.identifiant} is not one",
               f"Le cadre {cadre} (travaux) doit être adressé à une MOA ; {s.identifiant} n'en est pas une",
               "recipient.siret", s.identifiant, "moa")
        return ""
    if cadre not in WORKS_CADRES and s.moa_only:
        r.fail("REJ_CONT_B2G", f"Recipient {s.identifiant} only receives public-works pieces as MOA (cadre {cadre})",
               f"Le destinataire {s.identifiant} ne reçoit que des pièces de travaux en tant que MOA (cadre {cadre})",
               "recipient.siret", s.identifiant, "moa")
        return ""
    return "consistent with the cadre"


def _reference_known(ref: Reference, r: _Run) -> str:
    v = getattr(r.invoice, ref.attr)
    if r.invoice.cadre not in ref.cadres:
        return f"no {ref.en} needed"
    if v is None or not v.siret:
        return f"no {ref.en} given"
    en = ref.en[0].upper() + ref.en[1:]
    found = find_structure(r.settings, v.siret)
    if found is None or not found.active:
        state = "is not in the directory" if found is None else "is inactive in the directory"
        state_fr = "n'est pas dans l'annuaire" if found is None else "est une structure inactive de l'annuaire"
        r.fail("REJ_CONT_B2G", f"{en} {v.siret} {state}", f"{ref.fr} {v.siret} {state_fr}",
               f"{ref.attr}.siret", v.siret, "directory-validator")
        return ""
    if v.service and found.services:
        svc = found.service(v.service)
        if svc is None or not svc.active:
            r.fail("REJ_CONT_B2G", f"{en} service {v.service!r} is unknown or inactive for {v.siret}",
                   f"Le service {ref.fr_of} {v.service!r} est inconnu ou inactif pour {v.siret}",
                   f"{ref.attr}.service", v.service, "directory-validator")
            return ""
    return found.raison_sociale


CONTROLS: tuple[Control, ...] = (
    Control("mandatory", _mandatory),
    Control("supplier-siret", _supplier_siret),
    Control("recipient-siret", _recipient_siret),
    Control("lengths", _lengths),
    Control("credit-note", _credit_note, needs=("mandatory",)),
    Control("reserved-service", _reserved_service),
    Control("validator", partial(_reference, VALIDATOR)),
    Control("validator2", partial(_reference, VALIDATOR2)),
    Control("moe", partial(_reference, MOE)),
    Control("recipient-known", _recipient_known, needs=("recipient-siret",), uses_directory=True),
    Control("recipient-active", _recipient_active, needs=("recipient-known",), uses_directory=True),
    Control("service-required", _service_required, needs=("recipient-active",), uses_directory=True),
    Control("service-exists", _service_exists, needs=("recipient-active", "reserved-service"), uses_directory=True),
    Control("engagement-required", _engagement_required, needs=("recipient-active",), uses_directory=True),
    Control("service-or-engagement", _service_or_engagement, needs=("recipient-active",), uses_directory=True),
    Control("moa", _moa, needs=("recipient-active",), uses_directory=True),
    Control("validator-known", partial(_reference_known, VALIDATOR), needs=("validator",), uses_directory=True),
    Control("validator2-known", partial(_reference_known, VALIDATOR2), needs=("validator2",), uses_directory=True),
    Control("moe-known", partial(_reference_known, MOE), needs=("moe",), uses_directory=True),
)


def run_controls(invoice: Invoice, settings: Settings, *, directory: bool) -> ControlReport:
    """Run every control in order; `directory` says whether the directory checks can run
    (gateway.directory.directory_loaded)."""
    r = _Run(invoice, settings)
    checks: list[Check] = []
    outcome: dict[str, str] = {}
    for c in CONTROLS:
        used = DIRECTORY if c.uses_directory else RULES
        failed = next((n for n in c.needs if outcome.get(n) != "passed"), None)
        if c.uses_directory and not directory:
            check = Check(c.name, "skipped", "no directory loaded", used)
        elif failed:
            why = "failed" if outcome.get(failed) == "failed" else "was skipped"
            check = Check(c.name, "skipped", f"because {failed} {why}", used)
        else:
            before = len(r.findings)
            detail = c.run(r)
            new = r.findings[before:]
            if any(f.severity >= Severity.ERROR for f in new):
                check = Check(c.name, "failed", "; ".join(f.code for f in new), used)
            else:
                check = Check(c.name, "passed", detail, used)
        outcome[c.name] = check.outcome
        checks.append(check)
    return ControlReport(tuple(r.findings), tuple(checks), r.structure, r.service)


def invoice_key(invoice: Invoice) -> tuple[str, str, int | None]:
    """(supplier id, invoice number, year): two pieces with the same key are
    duplicates (REJ_UNI). The supplier is its SIRET, else its VAT id, else its name."""
    s = invoice.supplier
    supplier = (s.siret or s.vat_id or s.name or "").strip()
    year = invoice.issue_date.year if isinstance(invoice.issue_date, date) else None
    return supplier, (invoice.invoice_number or "").strip(), year

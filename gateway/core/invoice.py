"""The canonical piece: what the gateway knows about one invoice, whatever
syntax it came in (UBL, CII, the platform's legacy UBL).

Mappings (gateway/mapping.py, mappings/*.toml) fill it; controls, routing and
the pivot writer read only this. Every field remembers where it was read
(`sources`), so a control can point a sender at the XPath, line and value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date
from decimal import Decimal

from stdnum.fr import siret as _siret

from gateway.core.records import Location

# Cadres accepted by the pivot V2_02 (A11 is in the old API enum only: chorus-domain 1).
CADRES = frozenset(f"A{i}" for i in range(1, 26) if i != 11)

# Cadres whose piece goes to a validator (titulaire or mandataire) first (chorus-domain 2d).
VALIDATED_CADRES = frozenset({"A9", "A10", "A12", "A13", "A14"})

# Public-works cadres (marchés de travaux, chorus-domain 2e).
WORKS_CADRES = frozenset({"A4", "A5", "A6", "A7", "A8", "A10", "A13", "A14", "A15", "A16", "A17",
                          "A18", "A19", "A20", "A22", "A23", "A24", "A25"})

# What a cadre deposits (chorus-domain 1, column "Piece"); A1, A2, A9, A12 depend on the type code.
PIECE_TYPES: dict[str, str] = {
    "A3": "mémoire de frais de justice",
    "A4": "projet de décompte mensuel",
    "A5": "état d'acompte",
    "A6": "état d'acompte validé",
    "A7": "projet de décompte final",
    "A8": "décompte général et définitif",
    "A10": "projet de décompte mensuel",
    "A11": "projet de décompte final",
    "A13": "projet de décompte mensuel",
    "A14": "projet de décompte final",
    "A15": "état d'acompte",
    "A16": "état d'acompte validé",
    "A17": "projet de décompte général",
    "A18": "décompte général",
    "A19": "état d'acompte validé",
    "A20": "décompte général",
    "A21": "demande de remboursement de la TIC",
    "A22": "projet de décompte général (procédure tacite)",
    "A23": "décompte général et définitif tacite",
    "A24": "décompte général et définitif tacite",
    "A25": "décompte général et définitif tacite",
}

# UNTDID 1001 codes of credit notes; Chorus accepts only 381 among them.
CREDIT_NOTE_CODES = frozenset({81, 83, 261, 262, 296, 308, 381, 396, 420, 458, 532})
PREPAYMENT_CODES = frozenset({386})

# What the platform's pivot can hold: the controls refuse a piece beyond these,
# and the pivot writer refuses to write one (chorus-domain 4).
MAX_LENGTHS = (  # field, limit, English / French name, rule
    ("invoice_number", 20, "invoice number", "numéro de facture", "BR-FR-CPRO-02"),
    ("original_invoice", 20, "original invoice number", "numéro de la facture d'origine", "pivot IdFactureOrigine"),
    ("engagement_number", 50, "engagement number", "numéro d'engagement", "pivot NumeroEngagement"),
    ("contract_number", 50, "contract number", "numéro de marché", "pivot NumeroMarche"),
    ("service_code", 100, "service code", "code service", "pivot CodeService"),
)
LIMITS = {name: limit for name, limit, *_ in MAX_LENGTHS}
CURRENCY = re.compile("[A-Z]{3}")  # the form of an ISO 4217 code


@lru_cache(maxsize=4096)  # a flow names the same few SIRETs many times
def siret_error(value: str) -> tuple[str, str] | None:
    """Why a value is not a SIRET, in English and French; None if it is one.

    14 digits with a Luhn key over the SIRET and over its SIREN; La Poste's
    establishments (SIREN 356000000, except the head office) use a digit sum
    that is a multiple of 5 instead (python-stdnum implements both).
    """
    if len(value) != 14 or not (value.isascii() and value.isdigit()):
        return (f"must be 14 digits (found {len(value)} characters)",
                f"doit comporter 14 chiffres ({len(value)} caractères trouvés)")
    if not _siret.is_valid(value):
        return ("has a wrong check key (Luhn; for La Poste, digit sum multiple of 5)",
                "a une clé de contrôle fausse (Luhn ; pour La Poste, somme des chiffres multiple de 5)")
    return None


@dataclass(frozen=True)
class Party:
    name: str | None = None
    siret: str | None = None
    id_scheme: str | None = None  # scheme of the identifier found (0009, 1, SIRET, 0002...)
    vat_id: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class Validator:
    """Who validates a sub-contractor's or co-contractor's piece (A9, A10, A12-A14)."""

    siret: str | None = None
    service: str | None = None


@dataclass(frozen=True)
class Totals:
    net: Decimal | None = None  # HT, BT-109
    tax: Decimal | None = None  # BT-110
    gross: Decimal | None = None  # TTC, BT-112
    payable: Decimal | None = None  # BT-115


@dataclass(frozen=True)
class VatLine:
    rate: Decimal | None = None  # percent
    base: Decimal | None = None
    amount: Decimal | None = None
    category: str | None = None


@dataclass(frozen=True)
class Line:
    id: str | None = None
    name: str | None = None
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    net_amount: Decimal | None = None
    vat_rate: Decimal | None = None


Source = tuple[str, int | None]  # (xpath, line); the mapping gives a lazy pair that reads the same


@dataclass(frozen=True)
class Invoice:
    syntax: str  # "ubl" | "cii" | "ubl-aife" | any syntax a mapping file adds
    invoice_number: str | None = None
    issue_date: date | None = None
    type_code: int | None = None
    currency: str | None = None
    supplier: Party = field(default_factory=Party)
    recipient: Party = field(default_factory=Party)
    service_code: str | None = None
    engagement_number: str | None = None
    contract_number: str | None = None
    buyer_reference: str | None = None
    cadre: str = "A1"
    cadre_source: str = "default"  # "BT-23" | "aife-extension" | "default"
    profile: str | None = None  # BT-24
    original_invoice: str | None = None  # BT-25
    totals: Totals = field(default_factory=Totals)
    vat_breakdown: tuple[VatLine, ...] = ()
    lines: tuple[Line, ...] = ()
    payment_means_code: str | None = None
    payment_account: str | None = None  # BT-84, IBAN of the payee
    attachments: tuple[tuple[str, str], ...] = ()  # (file name, mime type)
    validator: Validator | None = None  # first level (titulaire, or mandataire for a co-contractor)
    validator2: Validator | None = None  # second level (mandataire, sous-traitance de cotraitance)
    moe: Validator | None = None  # maîtrise d'oeuvre of a public-works piece (A4, A7, A10, A13, A14)
    # field name ("recipient.siret", "lines[2].net_amount") -> (xpath, line)
    sources: tuple[tuple[str, Source], ...] = ()

    @property
    def validator_levels(self) -> int:
        """How many validators the piece names (0, 1 or 2): picks its validation circuit."""
        return sum(1 for v in (self.validator, self.validator2) if v is not None and v.siret)

    @property
    def is_credit_note(self) -> bool:
        return self.type_code in CREDIT_NOTE_CODES

    @property
    def piece_type(self) -> str:
        """French name of the piece, from the cadre and the type code (chorus-domain 1)."""
        if self.is_credit_note:
            return "avoir"
        if self.cadre in PIECE_TYPES:
            return PIECE_TYPES[self.cadre]
        if self.type_code in PREPAYMENT_CODES:
            return "facture d'acompte"
        return "facture"

    def source(self, name: str) -> Source | None:
        for key, src in self.sources:
            if key == name:
                return src
        return None

    def location(self, name: str) -> Location | None:
        """Where a field was read, for a Finding; None if it was not in the document."""
        src = self.source(name)
        return Location(xpath=src[0], line=src[1]) if src else None

"""The search's filter names and helps, and the rejections report's default
window: plain data, cheap to import, because the command line builds its
options' help from them when any `gateway` command starts (the modules that
use them, ops/search_query.py and ops/rejections.py, load the store)."""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DAYS = 30  # the rejections report's window when no --since is given


@dataclass(frozen=True)
class Filter:
    name: str  # the web's parameter; the CLI's option is --name with "_" as "-"
    help: str
    example: str = ""


FILTERS: tuple[Filter, ...] = (
    Filter("cadre", "cadre de facturation (A1, A4, A9...); several: A4,A15", "A4"),
    Filter("type", "piece type, as the piece shows it (facture, avoir, projet de décompte mensuel...)", "facture"),
    Filter("status", "current status (DEPOSEE, MISE_A_DISPOSITION_MOE, ..., IRRECEVABLE); several: comma list",
           "MISE_A_DISPOSITION"),
    Filter("since", "deposited on or after (YYYY-MM-DD or ISO datetime, UTC)", "2026-11-01"),
    Filter("until", "deposited on or before (YYYY-MM-DD inclusive, or ISO datetime)", "2026-11-30"),
    Filter("issued_since", "issue date on or after (YYYY-MM-DD)", "2026-10-01"),
    Filter("issued_until", "issue date on or before (YYYY-MM-DD)", "2026-10-31"),
    Filter("code", "refused with this error code (DEST_INC, REJ_UNI...); several: comma list", "DEST_INC"),
    Filter("number", "invoice number (* as a wildcard: PDM-5*)", "PDM-5"),
    Filter("billing_file", "billing file: the invoice number of its first piece", "A4-2026-001"),
    Filter("supplier", "supplier SIRET", "12345678900017"),
    Filter("recipient", "recipient SIRET", "21990001600011"),
    Filter("service", "recipient's service code", "SERV-1"),
    Filter("partner", "the partner that deposited it; several: comma list", "acme"),
    Filter("file", "the deposited file's name (* as a wildcard)", "FA-2026*"),
    Filter("flow", "one flow's id", ""),
)

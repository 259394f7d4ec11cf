"""The directory of public structures (annuaire des destinataires).

Two kinds of file are imported, told apart by their header row:
- the platform's export: `;`-separated, 21 columns (chorus-domain 6), one row
  per structure with its routing obligations (service code, engagement, either);
- the gateway's services file: Identifiant;CodeService;NomService;Actif;EngagementObligatoire.
Header names match whatever their case and accents; yes/no values may be
true/false, oui/non, vrai/faux, yes/no, 1/0 (empty = no). Importing again updates
in place; bad rows are reported with their line number and the rest is kept.

Here: reading and checking the files, and the look-ups (cached a short while).
The queries, and the `Structure` / `Service` records they return, are the
store's (gateway.store.directory).
"""
from __future__ import annotations

import csv
import io
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from gateway.core.config import Settings
from gateway.core.invoice import siret_error
from gateway.store import directory as store
from gateway.store.directory import Service, Structure

DEMO_DIR = Path(__file__).resolve().parents[1] / "demo"


@dataclass(frozen=True)
class ImportReport:
    path: str
    kind: str  # "structures" | "services" | "unknown"
    created: int = 0
    updated: int = 0
    errors: tuple[tuple[int, str], ...] = ()  # (line number, message)

    @property
    def ok(self) -> bool:
        return not self.errors


# --- file layouts -------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    header: str
    attr: str
    kind: str = "text"  # text | bool | id
    required: bool = True
    default: Any = ""


STRUCTURE_COLUMNS = (
    Column("TypeIdentifiant", "type_identifiant"),
    Column("Identifiant", "identifiant", "id"),
    Column("RaisonSociale", "raison_sociale"),
    Column("EmetteurEdi", "edi_emitter", "bool"),
    Column("RecepteurEdi", "edi_receiver", "bool"),
    Column("GestionStatutMiseEnPaiement", "manages_payment_status", "bool"),
    Column("GestionEngagement", "engagement_required", "bool"),
    Column("GestionService", "service_required", "bool"),
    Column("GestionServiceEngagement", "service_or_engagement", "bool"),
    Column("EstMOA", "is_moa", "bool"),
    Column("EstMOAUniquement", "moa_only", "bool"),
    Column("StructureActive", "active", "bool"),
    Column("Adresse", "address"),
    Column("ComplementAdresse1", "address2"),
    Column("ComplementAdresse2", "address3"),
    Column("CodePostal", "postal_code"),
    Column("Ville", "city"),
    Column("NumTelephone", "phone"),
    Column("Courriel", "email"),
    Column("CodePays", "country_code"),
    Column("LibellePays", "country_name"),
)
SERVICE_COLUMNS = (
    Column("Identifiant", "identifiant", "id"),
    Column("CodeService", "code", "id"),
    Column("NomService", "name", required=False, default=""),
    Column("Actif", "active", "bool", required=False, default=True),
    Column("EngagementObligatoire", "engagement_required", "bool", required=False, default=False),
)
_TRUE = {"true", "oui", "vrai", "yes", "o", "y", "1"}
_FALSE = {"false", "non", "faux", "no", "n", "0", ""}
SIRET_TYPES = {"siret", "1"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _norm(header: str) -> str:
    """Header key that ignores case, accents, spaces and punctuation."""
    text = unicodedata.normalize("NFKD", header)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _kind(headers: Sequence[str]) -> str:
    keys = {_norm(h) for h in headers}
    if "codeservice" in keys:
        return "services"
    if keys & {"raisonsociale", "structureactive", "typeidentifiant"}:
        return "structures"
    return "unknown"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:  # exports opened and saved by spreadsheets
        return data.decode("cp1252", errors="replace")


def _delimiter(first_line: str) -> str:
    return max((";", ",", "\t"), key=first_line.count) if first_line else ";"


def _bool(value: str) -> bool | None:
    v = value.strip().lower()
    return True if v in _TRUE else False if v in _FALSE else None


def _read_row(row: list[str], index: dict[str, int], columns: Sequence[Column]) -> tuple[dict[str, Any], str | None]:
    out: dict[str, Any] = {}
    for col in columns:
        pos = index.get(_norm(col.header))
        raw = row[pos].strip() if pos is not None and pos < len(row) else None
        if raw and _CONTROL.search(raw):  # would break every XML the value goes into (pivot, reports)
            return out, f"{col.header}: control character in {raw!r}"
        if raw is None or (raw == "" and not col.required):
            out[col.attr] = col.default
            continue
        if col.kind == "bool":
            val = _bool(raw)
            if val is None:
                return out, f"{col.header}: {raw!r} is not a yes/no value (true/false, oui/non, 1/0)"
            out[col.attr] = val
        elif col.kind == "id":
            if not raw:
                return out, f"{col.header} is empty"
            out[col.attr] = raw
        else:
            out[col.attr] = raw
    return out, None


# --- import -------------------------------------------------------------------

def import_file(settings: Settings, path: str | Path) -> ImportReport:
    """Import one structures or services file (kind told by its header)."""
    path = Path(path)
    text = _read(path)
    return text if isinstance(text, ImportReport) else _import_text(settings, path, text)


def import_files(settings: Settings, paths: Iterable[str | Path]) -> list[ImportReport]:
    """Import several files, structures before services (services need their structure).
    Each file is read once; services files wait, in memory, for the structures."""
    reports, services = [], []
    for path in map(Path, paths):
        text = _read(path)
        if isinstance(text, ImportReport):
            reports.append(text)
        elif _header_kind(text) == "services":
            services.append((path, text))
        else:
            reports.append(_import_text(settings, path, text))
    return reports + [_import_text(settings, path, text) for path, text in services]


def _read(path: Path) -> str | ImportReport:
    """The file's text, or the report saying it cannot be read."""
    try:
        return _decode(path.read_bytes())
    except OSError as exc:
        return ImportReport(str(path), "unknown", errors=((0, f"cannot read the file: {exc.strerror or exc}"),))


def _header_kind(text: str) -> str:
    first = text.split("\n", 1)[0]
    try:
        return _kind(next(csv.reader([first], delimiter=_delimiter(first)), []))
    except csv.Error:  # reported when the file itself is imported
        return "unknown"


def _import_text(settings: Settings, path: Path, text: str) -> ImportReport:
    _cache.clear()
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(first))
    try:
        headers = next(reader, None)
    except csv.Error as exc:
        return ImportReport(str(path), "unknown", errors=((1, f"unreadable header: {exc}"),))
    if not headers:
        return ImportReport(str(path), "unknown", errors=((1, "empty file: a header row is expected"),))
    kind = _kind(headers)
    if kind == "unknown":
        return ImportReport(str(path), kind, errors=((1, "header not recognised: expected the structures export "
                                                     "(TypeIdentifiant;Identifiant;RaisonSociale;...) or a services "
                                                     "file (Identifiant;CodeService;...)"),))
    columns = STRUCTURE_COLUMNS if kind == "structures" else SERVICE_COLUMNS
    index = {_norm(h): i for i, h in enumerate(headers)}
    missing = [c.header for c in columns if c.required and _norm(c.header) not in index]
    if missing:
        return ImportReport(str(path), kind, errors=((1, f"missing column(s): {', '.join(missing)}"),))

    known_structures = store.structure_ids(settings)
    rows: dict[Any, dict[str, Any]] = {}  # by key: the last row of a key wins, as on a second import
    errors: list[tuple[int, str]] = []
    for line, row in _rows(reader, errors):
        if not any(cell.strip() for cell in row):
            continue
        if kind == "structures" and len(row) != len(headers):
            errors.append((line, f"expected {len(headers)} columns, found {len(row)}"))
            continue
        values, error = _read_row(row, index, columns)
        error = error or _check(kind, values, known_structures)
        if error:
            errors.append((line, error))
            continue
        rows[_key(kind, values)] = values

    existing = known_structures if kind == "structures" else store.service_keys(settings)
    created = sum(1 for k in rows if k not in existing)
    if kind == "structures":
        store.save_structures(settings, [Structure(**v) for v in rows.values()])
    else:
        store.save_services(settings, [Service(**v) for v in rows.values()])
    return ImportReport(str(path), kind, created=created, updated=len(rows) - created, errors=tuple(errors))


def _rows(reader: Any, errors: list[tuple[int, str]]) -> Iterable[tuple[int, list[str]]]:
    """(line number, row), an unreadable row (NUL byte, huge field) becoming an error."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append((reader.line_num, f"unreadable row: {exc}"))
            continue
        yield reader.line_num, row


def _check(kind: str, values: dict[str, Any], known_structures: set) -> str | None:
    ident = values["identifiant"]
    if kind == "structures":
        if values["type_identifiant"].strip().lower() in SIRET_TYPES and siret_error(ident):
            return f"Identifiant {ident!r} is not a valid SIRET (14 digits with a valid key)"
        return None
    if len(values["code"]) > 100:
        return f"CodeService {values['code'][:20]!r}... is longer than 100 characters"
    if ident not in known_structures:
        return f"structure {ident!r} is not in the directory (import the structures file first)"
    return None


def _key(kind: str, row: dict[str, Any]) -> Any:
    return row["identifiant"] if kind == "structures" else (row["identifiant"], row["code"])


# --- lookups ------------------------------------------------------------------

# Look-ups are cached per process for a short while: every piece asks for its
# recipient (controls, then delivery), and the directory changes rarely. An
# import in this process clears the cache; other processes see it within TTL.
CACHE_SECONDS = 30.0
_cache: dict[tuple[str, str], tuple[float, Any]] = {}


def _cached(settings: Settings, key: str, load):  # noqa: ANN001, ANN202
    k = (settings.db_url, key)
    hit = _cache.get(k)
    now = time.monotonic()
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    value = load()
    if len(_cache) > 50_000:
        _cache.clear()
    _cache[k] = (now, value)
    return value


def find_structure(settings: Settings, siret: str) -> Structure | None:
    """The structure with this identifier, with its services; None if unknown."""
    return _cached(settings, f"s:{siret}", lambda: store.get_structure(settings, siret))


def directory_loaded(settings: Settings) -> bool:
    """True once at least one structure was imported: directory controls then apply."""
    return _cached(settings, "loaded", lambda: store.has_structures(settings))  # asked for every piece: cached


def demo_files() -> tuple[Path, Path]:
    """The packaged demo directory: (structures, services)."""
    return DEMO_DIR / "directory.csv", DEMO_DIR / "services.csv"

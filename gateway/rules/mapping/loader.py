"""Mapping files: reading, compiling, choosing the one for a document.

One TOML file per syntax (mappings/*.toml) says which root elements it
applies to and, for each canonical field, XPath expressions tried in order
and a type. XPaths are compiled once when a mapping is loaded (with the
plain child paths among them recognised for the fast paths), and loaded
mappings are cached per process, since this runs on every piece.
"""
from __future__ import annotations

import dataclasses
import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

from lxml import etree

from gateway.core.config import Settings
from gateway.core.invoice import Party
from gateway.rules.mapping.fastpath import Index, Steps, simple_steps

TYPES = ("text", "date", "decimal", "int")

PARTY_FIELDS = tuple(f.name for f in dataclasses.fields(Party))  # every one is text
_PARTY = {f"{p}.{a}": "text" for p in ("supplier", "recipient") for a in PARTY_FIELDS}
# Canonical field -> type. "cadre.*" are inputs to the cadre decision, not Invoice attributes.
FIELDS: dict[str, str] = {
    "invoice_number": "text", "issue_date": "date", "type_code": "int", "currency": "text",
    "service_code": "text", "engagement_number": "text", "contract_number": "text",
    "buyer_reference": "text", "profile": "text", "original_invoice": "text",
    "payment_means_code": "text", "payment_account": "text",
    **_PARTY,
    "validator.siret": "text", "validator.service": "text", "validator2.siret": "text", "validator2.service": "text",
    "moe.siret": "text", "moe.service": "text",
    "totals.net": "decimal", "totals.tax": "decimal", "totals.gross": "decimal", "totals.payable": "decimal",
    "cadre.bt23": "text", "cadre.extension": "text",
}
GROUPS: dict[str, dict[str, str]] = {
    "lines": {"id": "text", "name": "text", "quantity": "decimal", "unit_price": "decimal",
              "net_amount": "decimal", "vat_rate": "decimal"},
    "vat_breakdown": {"rate": "decimal", "base": "decimal", "amount": "decimal", "category": "text"},
    "attachments": {"name": "text", "mime": "text"},
}


class MappingError(ValueError):
    """A mapping file is wrong (a deployment error, raised at load time)."""


class Expr(NamedTuple):
    """One expression of a mapping: as written, compiled (still the (text, XPath) pair
    it always was, by index), and its simple form if it has one."""
    text: str
    xpath: etree.XPath
    steps: Steps | None = None  # when simple: read by a walk, without calling xpath


XPaths = tuple[Expr, ...]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    xpaths: XPaths
    # companions read relative to the matched node, e.g. the scheme of an identifier
    also: tuple[tuple[str, XPaths], ...] = ()


@dataclass(frozen=True)
class GroupSpec:
    name: str
    xpaths: XPaths
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True)
class Mapping:
    syntax: str
    path: Path  # the file it was read from
    priority: int
    roots: frozenset[tuple[str, str]] = frozenset()
    requires: etree.XPath | None = field(default=None, compare=False, repr=False)
    fields: tuple[FieldSpec, ...] = field(default=(), repr=False)
    groups: tuple[GroupSpec, ...] = field(default=(), repr=False)
    index: Index = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # every simple expression of the mapping, so one walk per node answers them all
        specs = [*self.fields, *(f for g in self.groups for f in g.fields)]
        lists = [*(g.xpaths for g in self.groups), *(f.xpaths for f in specs), *(x for f in specs for _, x in f.also)]
        object.__setattr__(self, "index", Index(e.steps for xps in lists for e in xps if e.steps is not None))

    def applies_to(self, root: etree._Element) -> bool:
        q = etree.QName(root)
        if (q.namespace or "", q.localname) not in self.roots:
            return False
        return self.requires is None or bool(self.requires(root))


# --- loading ------------------------------------------------------------------

@functools.cache
def packaged_dir() -> Path:
    """mappings/ of the source tree, or gateway/mappings in an installed wheel."""
    src = Path(__file__).resolve().parents[3] / "mappings"
    if (src / "ubl.toml").exists():
        return src
    return Path(__file__).resolve().parents[2] / "mappings"


def load_mapping(path: Path) -> Mapping:
    """Read and compile one mapping file; MappingError says what is wrong and where."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: {exc}") from exc
    ns = {str(k): str(v) for k, v in data.get("namespaces", {}).items()}
    syntax = data.get("syntax")
    if not syntax or not isinstance(syntax, str):
        raise MappingError(f"{path}: 'syntax' (the name of the syntax) is required")

    probe = etree.Element("probe")

    def compile_all(exprs: Any, where: str) -> XPaths:
        if isinstance(exprs, str):
            exprs = [exprs]
        if not exprs or not all(isinstance(e, str) for e in exprs):
            raise MappingError(f"{path}: {where}: 'xpath' must be a string or a list of strings")
        out = []
        for e in exprs:
            try:
                xp = etree.XPath(e, namespaces=ns)
                xp(probe)  # unknown prefixes and functions only show when evaluated
            except etree.XPathError as exc:
                raise MappingError(f"{path}: {where}: bad XPath {e!r}: {exc}") from exc
            out.append(Expr(e, xp, simple_steps(e, ns)))
        return tuple(out)

    def field_spec(name: str, spec: Any, expected: str, where: str) -> FieldSpec:
        if not isinstance(spec, dict) or "xpath" not in spec:
            raise MappingError(f"{path}: {where}: expected a table with 'xpath'")
        typ = spec.get("type", expected)
        if typ not in TYPES:
            raise MappingError(f"{path}: {where}: type {typ!r} is not one of {', '.join(TYPES)}")
        if typ != expected:
            raise MappingError(f"{path}: {where}: type {typ!r}, but the canonical field is {expected!r}")
        also = []
        for other, exprs in spec.get("also", {}).items():
            if other not in FIELDS:
                raise MappingError(f"{path}: {where}: 'also' names unknown field {other!r}")
            if FIELDS[other] != "text":  # a companion keeps the raw text it finds, never converted
                raise MappingError(f"{path}: {where}: 'also' can only fill text fields; {other!r} is "
                                   f"{FIELDS[other]!r}: give it its own entry in [fields]")
            also.append((other, compile_all(exprs, f"{where}.also.{other}")))
        return FieldSpec(name, typ, compile_all(spec["xpath"], where), tuple(also))

    fields = []
    for name, spec in _flatten(data.get("fields", {})):
        if name not in FIELDS:
            raise MappingError(f"{path}: unknown canonical field {name!r} (known: {', '.join(FIELDS)})")
        fields.append(field_spec(name, spec, FIELDS[name], f"fields.{name}"))

    groups = []
    for gname, g in data.get("groups", {}).items():
        if gname not in GROUPS:
            raise MappingError(f"{path}: unknown group {gname!r} (known: {', '.join(GROUPS)})")
        gfields = []
        for name, spec in _flatten(g.get("fields", {})):
            if name not in GROUPS[gname]:
                raise MappingError(f"{path}: group {gname}: unknown field {name!r}")
            gfields.append(field_spec(name, spec, GROUPS[gname][name], f"groups.{gname}.{name}"))
        groups.append(GroupSpec(gname, compile_all(g.get("xpath"), f"groups.{gname}"), tuple(gfields)))

    match = data.get("match", {})
    roots = set()
    for r in match.get("roots", []):
        prefix, _, local = r.rpartition(":")
        if prefix and prefix not in ns:
            raise MappingError(f"{path}: match.roots: prefix {prefix!r} not in [namespaces]")
        roots.add((ns.get(prefix, ""), local))
    if not roots:
        raise MappingError(f"{path}: match.roots must name at least one root element")
    requires = None
    if match.get("requires"):
        requires = compile_all(match["requires"], "match.requires")[0][1]
    return Mapping(syntax=syntax, path=path, priority=int(match.get("priority", 0)), roots=frozenset(roots),
                   requires=requires, fields=tuple(fields), groups=tuple(groups))


def _flatten(table: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """TOML dotted keys (supplier.siret = {...}) come as nested tables: flatten them."""
    for key, val in table.items():
        name = f"{prefix}{key}"
        if isinstance(val, dict) and "xpath" not in val:
            yield from _flatten(val, name + ".")
        else:
            yield name, val


@functools.lru_cache(maxsize=16)
def load_mappings(dirs: tuple[Path, ...] = ()) -> tuple[Mapping, ...]:
    """Every *.toml of the given folders, then the packaged ones; a syntax
    defined in an earlier folder hides the same syntax in a later one."""
    seen: dict[str, Mapping] = {}
    for d in (*dirs, packaged_dir()):
        for path in sorted(Path(d).glob("*.toml")):
            m = load_mapping(path)
            seen.setdefault(m.syntax, m)
    return tuple(sorted(seen.values(), key=lambda m: -m.priority))


def mapping_source(settings: Settings, syntax: str) -> str:
    """Which file maps a syntax, for people: relative to the home for a file of
    `[mapping] dirs`, to the source tree (or package) for a packaged one; "" if none."""
    return _source(settings.mapping_dirs, settings.home, syntax)


@functools.lru_cache(maxsize=64)  # asked once per piece; resolving paths costs more than mapping it
def _source(dirs: tuple[Path, ...], home: Path, syntax: str) -> str:
    m = next((m for m in load_mappings(dirs) if m.syntax == syntax), None)
    if m is None:
        return ""
    for base in (home, packaged_dir().parent):
        if m.path.is_relative_to(base):
            return m.path.relative_to(base).as_posix()
    return str(m.path)


def select_mapping(tree: etree._ElementTree | etree._Element,
                   mappings: Sequence[Mapping] | None = None) -> Mapping | None:
    """The mapping for a document: by root element, the most specific first
    (ubl-aife, which requires the AIFE extension, before plain UBL)."""
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    for m in mappings if mappings is not None else load_mappings():
        if m.applies_to(root):
            return m
    return None

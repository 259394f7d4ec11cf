"""Declarative mappings: from a syntax's XML to the canonical piece.

One TOML file per syntax (mappings/*.toml) says which root elements it
applies to and, for each canonical field, XPath expressions tried in order
(the first one giving a non-empty value wins) and a type. Adding a syntax
is adding a file: nothing here knows UBL or CII.

XPaths are compiled once when a mapping is loaded, and loaded mappings are
cached per process, since this runs on every piece. Most expressions are plain
child paths (cac:Item/cbc:Name, /*/cbc:ID/@schemeID): those are answered without
XPath, by one walk per context node that finds them all (an XPath call costs
more than reading the field); anything else is evaluated by XPath.
"""
from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

from lxml import etree

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.invoice import CADRES, Invoice, Line, Party, Source, Totals, Validator, VatLine
from gateway.core.records import Finding, Location, Severity

STAGE = "mapping"
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


class MappingError(ValueError):
    """A mapping file is wrong (a deployment error, raised at load time)."""


# Tests and benchmarks set this to False to read every expression by XPath (and
# every element's text with itertext()), the reference the fast paths must equal.
FAST_PATHS = True


@dataclass(frozen=True, slots=True)
class Steps:
    """A simple expression: child steps by tag (Clark notation) from the context
    node or, rooted, from the document (so the first tag is the root element's,
    or "*" for any), then maybe an attribute (Clark name)."""
    rooted: bool
    tags: tuple[str, ...]
    attr: str | None = None


_NCNAME = r"[A-Za-z_][A-Za-z0-9_.-]*"  # ASCII only: other names are left to XPath
_QNAME = re.compile(rf"(?:({_NCNAME}):)?({_NCNAME})")


def simple_steps(expr: str, namespaces: dict[str, str]) -> Steps | None:
    """The Steps of `a:B/c:D`, `/*/a:B`, `/x:Root/a:B/@attr` or `@attr`; None for
    anything else (predicates, functions, //, ., .., *, unions, text(), spaces...),
    which XPath evaluates."""
    rooted = expr.startswith("/")
    parts = (expr[1:] if rooted else expr).split("/")
    attr = None
    if parts[-1].startswith("@"):
        attr = _clark(parts.pop()[1:], namespaces)
        if attr is None:
            return None
    tags = []
    for i, part in enumerate(parts):
        # "*" only for the root element (/*/...): a wildcard deeper would cost every walk a second lookup
        tag = "*" if part == "*" and rooted and i == 0 else _clark(part, namespaces)
        if tag is None:
            return None
        tags.append(tag)
    if (rooted and not tags) or not (tags or attr):  # "/@a" (the document has no attributes), ""
        return None
    return Steps(rooted, tuple(tags), attr)


def _clark(qname: str, namespaces: dict[str, str]) -> str | None:
    m = _QNAME.fullmatch(qname)
    if m is None:
        return None
    prefix, local = m.groups()
    if prefix is None:  # XPath 1.0: an unprefixed name has no namespace
        return local
    uri = namespaces.get(prefix)
    return f"{{{uri}}}{local}" if uri else None


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
    index: _Index = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # every simple expression of the mapping, so one walk per node answers them all
        specs = [*self.fields, *(f for g in self.groups for f in g.fields)]
        lists = [*(g.xpaths for g in self.groups), *(f.xpaths for f in specs), *(x for f in specs for _, x in f.also)]
        object.__setattr__(self, "index", _Index(e.steps for xps in lists for e in xps if e.steps is not None))

    def applies_to(self, root: etree._Element) -> bool:
        q = etree.QName(root)
        if (q.namespace or "", q.localname) not in self.roots:
            return False
        return self.requires is None or bool(self.requires(root))


# --- loading ------------------------------------------------------------------

# Other data kept in mappings/ (the life-cycle state machine), not syntax mappings.
NOT_MAPPINGS = frozenset({"lifecycle.toml"})


@functools.cache
def packaged_dir() -> Path:
    """mappings/ of the source tree, or gateway/mappings in an installed wheel."""
    src = Path(__file__).resolve().parents[2] / "mappings"
    if (src / "ubl.toml").exists():
        return src
    return Path(__file__).resolve().parents[1] / "mappings"


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
            if path.name in NOT_MAPPINGS:
                continue
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


# --- reading a document -------------------------------------------------------

def map_piece(tree: etree._ElementTree | etree._Element, settings: Settings) -> tuple[Invoice | None, list[Finding]]:
    """Read the canonical piece from a parsed document.

    Returns (None, [IRR_TYPE_F]) when no mapping applies; values that cannot be
    read as their type are left empty and reported (REJ_SEMAN); cadre problems
    are reported as REJ_CONT_B2G.
    """
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    mapping = select_mapping(root, load_mappings(settings.mapping_dirs))
    if mapping is None:
        q = etree.QName(root)
        return None, [codes.finding(
            "IRR_TYPE_F",
            f"No mapping for root element {q.localname!r} in namespace {q.namespace or '(none)'!r}",
            f"Aucune correspondance pour l'élément racine {q.localname!r} de l'espace de noms "
            f"{q.namespace or '(aucun)'!r}",
            location=Location(xpath="/*", line=root.sourceline), value=q.localname, stage=STAGE)]

    findings: list[Finding] = []
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    reader = _Reader(mapping.index if FAST_PATHS else None)
    _read_fields(mapping.fields, root, "", values, sources, findings, reader)

    group_values: dict[str, list[dict[str, Any]]] = {}
    for g in mapping.groups:
        items: list[dict[str, Any]] = []
        for node in _group_nodes(g, root, reader):
            vals: dict[str, Any] = {}
            _read_fields(g.fields, node, f"{g.name}[{len(items) + 1}].", vals, sources, findings, reader)
            items.append({k.rsplit(".", 1)[1]: v for k, v in vals.items()})
        group_values[g.name] = items

    cadre, cadre_source, cadre_findings = resolve_cadre(values, sources, settings)
    findings.extend(cadre_findings)
    return _build(mapping.syntax, values, group_values, sources, cadre, cadre_source), findings


def _group_nodes(g: GroupSpec, root: etree._Element, reader: _Reader) -> list[etree._Element]:
    for e in g.xpaths:
        if e.steps is not None and e.steps.attr is None and reader.index is not None:
            nodes = list(reader.nodes(e.steps, root))
        else:  # complex, or a path to attributes (XPath gives strings: no nodes)
            res = e.xpath(root)
            nodes = [n for n in res if isinstance(n, etree._Element)] if isinstance(res, list) else []
        if nodes:
            return nodes
    return []


def _read_fields(specs: Sequence[FieldSpec], ctx: etree._Element, prefix: str, values: dict[str, Any],
                 sources: dict[str, Source], findings: list[Finding], reader: _Reader) -> None:
    for spec in specs:
        key = prefix + spec.name
        if key in values:  # an 'also' companion already gave it
            continue
        hit = _first(spec.xpaths, ctx, reader)
        if hit is None:
            continue
        text, src, node = hit
        value, error = _convert(text, spec.type)
        sources[key] = src
        if error:
            findings.append(codes.finding(
                "REJ_SEMAN", f"{key}: {error[0]}", f"{key} : {error[1]}",
                location=Location(xpath=src[0], line=src[1]), value=text, rule=f"type:{spec.type}", stage=STAGE))
            continue
        values[key] = value
        for other, xps in spec.also:
            sub = _first(xps, node, reader) if node is not None else None
            if sub is not None and other not in values:
                values[other], sources[other] = sub[0], sub[1]


Hit = tuple[str, Source, etree._Element | None]  # text, where it is, the node (for 'also')


def _first(xpaths: XPaths, ctx: etree._Element, reader: _Reader) -> Hit | None:
    """First non-empty result of the expressions, in their order."""
    for e in xpaths:
        if e.steps is not None and reader.index is not None:
            hit = _first_simple(e.steps, ctx, reader)
        else:
            hit = _first_of_xpath(e.xpath, ctx, reader)
        if hit is not None:
            return hit
    return None


def _first_of_xpath(xp: etree.XPath, ctx: etree._Element, reader: _Reader) -> Hit | None:
    res = xp(ctx)
    for item in res if isinstance(res, list) else [res]:
        hit = _as_text(item, ctx, reader)
        if hit is not None:
            return hit
    return None


def _first_simple(steps: Steps, ctx: etree._Element, reader: _Reader) -> Hit | None:
    """What _first gets from XPath for a simple expression, from the walk's elements."""
    nodes = reader.nodes(steps, ctx)
    if steps.attr is None:
        for el in nodes:
            text = _string_value(el, True)
            if text:
                return text, _Where(reader.paths, el), el
        return None
    for el in nodes:
        text = (el.get(steps.attr) or "").strip()
        if text:  # the source names the attribute by its local name, as for XPath's
            return text, _Where(reader.paths, el, steps.attr.rpartition("}")[2]), el
    return None


def _as_text(item: Any, ctx: etree._Element, reader: _Reader) -> Hit | None:
    paths = reader.paths
    if isinstance(item, etree._Element):
        if not isinstance(item.tag, str):  # comment or processing instruction
            return None
        text = _string_value(item, reader.index is not None)
        return (text, _Where(paths, item), item) if text else None
    if isinstance(item, bool) or item is None:
        return None
    text = str(item).strip() if not isinstance(item, float) else _number(item)
    if not text:
        return None
    parent = item.getparent() if hasattr(item, "getparent") else None
    if parent is None:  # a computed string: point at the context node
        return text, _Where(paths, ctx), None
    attr = etree.QName(item.attrname).localname if getattr(item, "is_attribute", False) else None
    return text, _Where(paths, parent, attr), parent


def _string_value(el: etree._Element, fast: bool) -> str:
    """The element's text content, stripped. An element without children (len()
    counts comments and PIs too) has only its .text: itertext() costs ~1 us a call."""
    if fast and len(el) == 0:
        return el.text.strip() if el.text else ""
    return "".join(el.itertext()).strip()


Found = dict[tuple[str, ...], list[etree._Element]]  # a simple path's tags -> its elements, in document order


class _Trie:
    """One level of a mapping's simple paths: the paths ending at an element
    reached here, and which child tags go deeper."""

    __slots__ = ("ends", "next")

    def __init__(self) -> None:
        self.ends: list[tuple[str, ...]] = []
        self.next: dict[str, _Trie] = {}

    def add(self, tags: tuple[str, ...]) -> None:
        node = self
        for tag in tags:
            node = node.next.setdefault(tag, _Trie())
        node.ends.append(tags)

    @staticmethod
    def merged(a: _Trie | None, b: _Trie | None) -> _Trie:
        """The paths of both (for a root element, which /* and /its:Name paths both start from)."""
        if a is None or b is None:
            return a or b or _Trie()
        m = _Trie()
        m.ends = a.ends + b.ends
        m.next = {tag: _Trie.merged(a.next.get(tag), b.next.get(tag)) for tag in a.next.keys() | b.next.keys()}
        return m

    def enter(self, el: etree._Element, found: Found) -> None:
        """Record el for the paths ending here, then walk its children: depth first, so
        each path's elements come in document order, and only into children whose tag
        is a next step (never into branches no path needs, e.g. the lines from the root)."""
        for path in self.ends:
            found.setdefault(path, []).append(el)
        if self.next:
            step = self.next.get
            for child in el:
                sub = step(child.tag)  # a comment's or PI's tag is a function: never a step
                if sub is not None:
                    sub.enter(child, found)


class _Index:
    """A mapping's simple paths as tries of tags, from a context node and from the
    document (by the root element's tag: its named paths and the /* ones)."""

    def __init__(self, steps: Iterable[Steps]) -> None:
        self.relative, rooted = _Trie(), _Trie()
        for s in steps:
            if s.tags:  # no tags: the context node itself
                (rooted if s.rooted else self.relative).add(s.tags)
        self.any_root = rooted.next.get("*")
        self.roots = {tag: _Trie.merged(sub, self.any_root) for tag, sub in rooted.next.items() if tag != "*"}

    def under(self, ctx: etree._Element) -> Found:
        found: Found = {}
        self.relative.enter(ctx, found)
        return found

    def from_document(self, ctx: etree._Element) -> Found:
        found: Found = {}
        root = ctx.getroottree().getroot()
        trie = self.roots.get(root.tag, self.any_root)
        if trie is not None:
            trie.enter(root, found)
        return found


class _Reader:
    """What reading one piece shares: the source paths, the document's walk (for
    rooted paths) and the walk of the context node being read. Only the last
    context's walk is kept: the fields of a node are read together, and keeping
    every line's would make the collector's full passes far more frequent."""

    def __init__(self, index: _Index | None) -> None:
        self.index = index  # None: every expression by XPath (FAST_PATHS off)
        self.paths = _Paths()
        self._document: Found | None = None
        self._ctx: etree._Element | None = None
        self._found: Found = {}

    def nodes(self, steps: Steps, ctx: etree._Element) -> Sequence[etree._Element]:
        assert self.index is not None
        if not steps.tags:
            return (ctx,)
        if steps.rooted:
            if self._document is None:
                self._document = self.index.from_document(ctx)
            return self._document.get(steps.tags, ())
        if ctx is not self._ctx:
            self._ctx, self._found = ctx, self.index.under(ctx)
        return self._found.get(steps.tags, ())


class _Where:
    """A field's source, (xpath, line), its path worked out only when asked:
    most fields never need one (only those a finding points at), and paths
    were a third of the cost of reading a piece."""

    __slots__ = ("_paths", "_el", "_attr", "_xpath")

    def __init__(self, paths: _Paths, el: etree._Element, attr: str | None = None):
        self._paths, self._el, self._attr, self._xpath = paths, el, attr, None

    def _resolve(self) -> tuple[str, int | None]:
        if self._xpath is None:
            path = self._paths.of(self._el)
            self._xpath = f"{path}/@{self._attr}" if self._attr else path
        return self._xpath, self._el.sourceline

    def __getitem__(self, i: int) -> str | int | None:
        return self._resolve()[i]

    def __iter__(self):  # noqa: ANN204
        return iter(self._resolve())

    def __len__(self) -> int:
        return 2

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, (tuple, _Where)) else other)

    def __hash__(self) -> int:
        return hash(self._resolve())

    def __reduce__(self):  # noqa: ANN204 - pickles as the plain tuple, without the tree
        return tuple, (self._resolve(),)

    def __repr__(self) -> str:
        return repr(self._resolve())


class _Paths:
    """Paths of nodes as lxml's getpath() writes them (/*/cac:InvoiceLine[2]/cbc:ID),
    memoised per document: getpath() rescans the siblings of every step, which is
    quadratic on an invoice with thousands of lines."""

    def __init__(self) -> None:
        self._paths: dict[etree._Element, str] = {}
        self._positions: dict[etree._Element, dict[etree._Element, str]] = {}

    def of(self, el: etree._Element) -> str:
        path = self._paths.get(el)
        if path is None:
            parent = el.getparent()
            if parent is None:
                path = "/" + _step_name(el)
            else:
                path = f"{self.of(parent)}/{self._step(parent, el)}"
            self._paths[el] = path
        return path

    def _step(self, parent: etree._Element, el: etree._Element) -> str:
        steps = self._positions.get(parent)
        if steps is None:  # one pass over the children gives every child's step
            children = list(parent.iterchildren(etree.Element))
            names = [_step_name(c) for c in children]
            counts = Counter(names)
            seen: Counter[str] = Counter()
            steps = {}
            for i, (child, name) in enumerate(zip(children, names), start=1):
                # libxml2 numbers a * step among all element siblings, a named one among its namesakes
                if name == "*":
                    steps[child] = f"*[{i}]" if len(children) > 1 else "*"
                else:
                    seen[name] += 1
                    steps[child] = f"{name}[{seen[name]}]" if counts[name] > 1 else name
            self._positions[parent] = steps
        return steps[el]


def _step_name(el: etree._Element) -> str:
    tag = el.tag
    if tag[0] != "{":
        return tag
    prefix = el.prefix
    return f"{prefix}:{tag[tag.index('}') + 1:]}" if prefix else "*"  # default namespace: libxml2 writes *


def _number(x: float) -> str:
    return "" if x != x else (str(int(x)) if x.is_integer() else repr(x))


_DATE_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(Z|[+-]\d{2}:\d{2})?$", re.ASCII)
_DATE_102 = re.compile(r"^(\d{4})(\d{2})(\d{2})$", re.ASCII)  # CII DateTimeString format 102
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$", re.ASCII)
_INT = re.compile(r"^[+-]?\d+$", re.ASCII)


def _convert(text: str, typ: str) -> tuple[Any, tuple[str, str] | None]:
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


def _build(syntax: str, v: dict[str, Any], groups: dict[str, list[dict[str, Any]]],
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

"""Reading one document through its mapping: `map_piece`, the entry.

The mapping is chosen by the document's root element; each canonical field
is the first non-empty value of its expressions, in their order. A simple
expression is answered by the fast paths' walk, anything else by XPath; the
values then make the canonical piece (builder).
"""
from __future__ import annotations

from typing import Any, Sequence

from lxml import etree

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.invoice import Invoice, Source
from gateway.core.records import Finding, Location
from gateway.rules.mapping.builder import STAGE, build_invoice, convert_value, resolve_cadre
from gateway.rules.mapping.fastpath import Reader, Steps, Where
from gateway.rules.mapping.loader import FieldSpec, GroupSpec, XPaths, load_mappings, select_mapping

# Tests and benchmarks set this to False to read every expression by XPath (and
# every element's text with itertext()), the reference the fast paths must equal.
FAST_PATHS = True


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
    reader = Reader(mapping.index if FAST_PATHS else None)
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
    return build_invoice(mapping.syntax, values, group_values, sources, cadre, cadre_source), findings


def _group_nodes(g: GroupSpec, root: etree._Element, reader: Reader) -> list[etree._Element]:
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
                 sources: dict[str, Source], findings: list[Finding], reader: Reader) -> None:
    for spec in specs:
        key = prefix + spec.name
        if key in values:  # an 'also' companion already gave it
            continue
        hit = _first(spec.xpaths, ctx, reader)
        if hit is None:
            continue
        text, src, node = hit
        value, error = convert_value(text, spec.type)
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


def _first(xpaths: XPaths, ctx: etree._Element, reader: Reader) -> Hit | None:
    """First non-empty result of the expressions, in their order."""
    for e in xpaths:
        if e.steps is not None and reader.index is not None:
            hit = _first_simple(e.steps, ctx, reader)
        else:
            hit = _first_of_xpath(e.xpath, ctx, reader)
        if hit is not None:
            return hit
    return None


def _first_of_xpath(xp: etree.XPath, ctx: etree._Element, reader: Reader) -> Hit | None:
    res = xp(ctx)
    for item in res if isinstance(res, list) else [res]:
        hit = _as_text(item, ctx, reader)
        if hit is not None:
            return hit
    return None


def _first_simple(steps: Steps, ctx: etree._Element, reader: Reader) -> Hit | None:
    """What _first gets from XPath for a simple expression, from the walk's elements."""
    nodes = reader.nodes(steps, ctx)
    if steps.attr is None:
        for el in nodes:
            text = _string_value(el, True)
            if text:
                return text, Where(reader.paths, el), el
        return None
    for el in nodes:
        text = (el.get(steps.attr) or "").strip()
        if text:  # the source names the attribute by its local name, as for XPath's
            return text, Where(reader.paths, el, steps.attr.rpartition("}")[2]), el
    return None


def _as_text(item: Any, ctx: etree._Element, reader: Reader) -> Hit | None:
    paths = reader.paths
    if isinstance(item, etree._Element):
        if not isinstance(item.tag, str):  # comment or processing instruction
            return None
        text = _string_value(item, reader.index is not None)
        return (text, Where(paths, item), item) if text else None
    if isinstance(item, bool) or item is None:
        return None
    text = str(item).strip() if not isinstance(item, float) else _number(item)
    if not text:
        return None
    parent = item.getparent() if hasattr(item, "getparent") else None
    if parent is None:  # a computed string: point at the context node
        return text, Where(paths, ctx), None
    attr = etree.QName(item.attrname).localname if getattr(item, "is_attribute", False) else None
    return text, Where(paths, parent, attr), parent


def _string_value(el: etree._Element, fast: bool) -> str:
    """The element's text content, stripped. An element without children (len()
    counts comments and PIs too) has only its .text: itertext() costs ~1 us a call."""
    if fast and len(el) == 0:
        return el.text.strip() if el.text else ""
    return "".join(el.itertext()).strip()


def _number(x: float) -> str:
    return "" if x != x else (str(int(x)) if x.is_integer() else repr(x))

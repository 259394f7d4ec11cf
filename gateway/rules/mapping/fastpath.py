"""The fast paths of a mapping: plain child paths read by walking the tree.

Most expressions are plain child paths (cac:Item/cbc:Name, /*/cbc:ID/@schemeID):
`simple_steps` recognises them, and a mapping's `Index` keeps them all as tries
of tags, so that one walk per context node finds every one of them (an XPath
call costs more than reading the field). The paths of the nodes found, for the
sources a finding points at, are worked out only when asked (`Where`, `Paths`).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from lxml import etree


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


Found = dict[tuple[str, ...], list[etree._Element]]  # a simple path's tags -> its elements, in document order


class Trie:
    """One level of a mapping's simple paths: the paths ending at an element
    reached here, and which child tags go deeper."""

    __slots__ = ("ends", "next")

    def __init__(self) -> None:
        self.ends: list[tuple[str, ...]] = []
        self.next: dict[str, Trie] = {}

    def add(self, tags: tuple[str, ...]) -> None:
        node = self
        for tag in tags:
            node = node.next.setdefault(tag, Trie())
        node.ends.append(tags)

    @staticmethod
    def merged(a: Trie | None, b: Trie | None) -> Trie:
        """The paths of both (for a root element, which /* and /its:Name paths both start from)."""
        if a is None or b is None:
            return a or b or Trie()
        m = Trie()
        m.ends = a.ends + b.ends
        m.next = {tag: Trie.merged(a.next.get(tag), b.next.get(tag)) for tag in a.next.keys() | b.next.keys()}
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


class Index:
    """A mapping's simple paths as tries of tags, from a context node and from the
    document (by the root element's tag: its named paths and the /* ones)."""

    def __init__(self, steps: Iterable[Steps]) -> None:
        self.relative, rooted = Trie(), Trie()
        for s in steps:
            if s.tags:  # no tags: the context node itself
                (rooted if s.rooted else self.relative).add(s.tags)
        self.any_root = rooted.next.get("*")
        self.roots = {tag: Trie.merged(sub, self.any_root) for tag, sub in rooted.next.items() if tag != "*"}

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


class Reader:
    """What reading one piece shares: the source paths, the document's walk (for
    rooted paths) and the walk of the context node being read. Only the last
    context's walk is kept: the fields of a node are read together, and keeping
    every line's would make the collector's full passes far more frequent."""

    def __init__(self, index: Index | None) -> None:
        self.index = index  # None: every expression by XPath (FAST_PATHS off)
        self.paths = Paths()
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


class Where:
    """A field's source, (xpath, line), its path worked out only when asked:
    most fields never need one (only those a finding points at), and paths
    were a third of the cost of reading a piece."""

    __slots__ = ("_paths", "_el", "_attr", "_xpath")

    def __init__(self, paths: Paths, el: etree._Element, attr: str | None = None):
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
        return tuple(self) == (tuple(other) if isinstance(other, (tuple, Where)) else other)

    def __hash__(self) -> int:
        return hash(self._resolve())

    def __reduce__(self):  # noqa: ANN204 - pickles as the plain tuple, without the tree
        return tuple, (self._resolve(),)

    def __repr__(self) -> str:
        return repr(self._resolve())


class Paths:
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

"""Locked-down XML parsing: no DTD, no network, no entity expansion, bounded size.

Partners' XML is hostile until proven otherwise. UBL and CII never need a
DOCTYPE, so any DOCTYPE is refused outright (that stops billion laughs,
quadratic blow-up and XXE before libxml2 sees an entity).
"""
from __future__ import annotations

import re
import threading

from lxml import etree

from gateway.core import codes
from gateway.core.records import Finding, Location

MAX_XML_BYTES = 120 * 1024 * 1024

_local = threading.local()
# A DOCTYPE may only follow the XML declaration, comments and PIs; look in the
# head of the document, in any of the encodings a partner may use.
_DOCTYPE = re.compile(rb"<!\s*DOCTYPE", re.IGNORECASE)
_DOCTYPE_UTF16 = ("<!DOCTYPE".encode("utf-16-le"), "<!DOCTYPE".encode("utf-16-be"))


def _parser() -> etree.XMLParser:
    # lxml parsers are not thread-safe: one per thread.
    p = getattr(_local, "parser", None)
    if p is None:
        p = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_blank_text=False,
            collect_ids=False,
        )
        _local.parser = p
    return p


def has_doctype(data: bytes) -> bool:
    head = data[:65536]
    return bool(_DOCTYPE.search(head)) or any(d in head for d in _DOCTYPE_UTF16)


def parse(data: bytes, *, stage: str = "syntax", member: str | None = None) -> tuple[etree._ElementTree | None, list[Finding]]:
    """Parse bytes into a tree, or return the reason why not (IRR_SYNTAX)."""
    loc = Location(member=member) if member else None
    if len(data) > MAX_XML_BYTES:
        return None, [codes.finding("IRR_TAILLE_F", f"XML larger than {MAX_XML_BYTES} bytes",
                                    f"XML de plus de {MAX_XML_BYTES} octets", location=loc, stage=stage)]
    if has_doctype(data):
        return None, [codes.finding(
            "IRR_SYNTAX",
            "A DOCTYPE declaration is not allowed (DTDs and entities are refused for safety)",
            "Déclaration DOCTYPE interdite (DTD et entités refusées par sécurité)",
            location=Location(xpath="/", line=_line_of(data, b"<!DOCTYPE"), member=member),
            value="<!DOCTYPE", rule="no-doctype", stage=stage)]
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        return None, [codes.finding(
            "IRR_SYNTAX",
            f"Not well-formed XML: {exc.msg}",
            f"XML mal formé : {exc.msg}",
            location=Location(line=line, member=member), rule="well-formed", stage=stage)]
    except (ValueError, etree.LxmlError) as exc:  # e.g. unsupported encoding declaration
        return None, [codes.finding("IRR_SYNTAX", f"Unreadable XML: {exc}", f"XML illisible : {exc}",
                                    location=loc, rule="well-formed", stage=stage)]
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        return None, [codes.finding("IRR_SYNTAX", "A DOCTYPE declaration is not allowed",
                                    "Déclaration DOCTYPE interdite", location=loc, rule="no-doctype", stage=stage)]
    return tree, []


def _line_of(data: bytes, needle: bytes) -> int | None:
    i = data.upper().find(needle.upper())
    return data.count(b"\n", 0, i) + 1 if i >= 0 else None


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""

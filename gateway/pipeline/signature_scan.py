"""Signature dictionaries found in a PDF's raw bytes, and their byte ranges.

A PDF reader reaches a signature through the cross-reference table, the
trailer and the form's fields. A broken or forged xref or trailer can hide a
signature from it (the file then reads as unsigned) or put another one in its
place, while a viewer that rebuilds the xref shows it. So the bytes are read
too: every dictionary holding a /ByteRange and a /Contents hex string, outside
stream data (a signed PDF embedded uncompressed in this one carries its own
signature, which is not this file's). Comparing them with what the reader
found tells hidden signatures apart. Pure functions, no PDF library.

The byte-range checks say whether a /ByteRange can be a signature's: pairs of
non-negative integers, inside the file, starting at 0, its one gap exactly
the dictionary's own /Contents value.
"""
from __future__ import annotations

import re
from itertools import pairwise
from dataclasses import dataclass

_STREAM = re.compile(rb">>\s*stream(?:\r\n|\n|\r)")
_ENDSTREAM = b"endstream"
_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[([^\]]{0,400})\]")
_CONTENTS = re.compile(rb"/Contents\s*<([0-9A-Fa-f\s]*)>")
_OBJ = re.compile(rb"\d+\s+\d+\s+obj\b")
_INT_OBJ = re.compile(rb"(?<!\d)(\d+)\s+(\d+)\s+obj\s*(\d+)\s*endobj")
_LENGTH = re.compile(rb"/Length\s+(\d+)(?:\s+(\d+)\s+R)?")
_NAME = rb"\s*/([^\s/<>\[\]()]+)"
_TYPE = re.compile(rb"/Type" + _NAME)
_SUBFILTER = re.compile(rb"/SubFilter" + _NAME)
_WINDOW = 4096  # how far around /ByteRange a dictionary's other keys are looked for, past a huge /Contents


@dataclass(frozen=True)
class RawSignature:
    """One signature dictionary as the bytes show it."""

    offset: int  # where its /ByteRange key sits in the file
    byte_range: tuple[int, ...]  # as written; () if the array holds anything but integers
    contents: tuple[int, int] | None  # the /Contents value, '<' to '>' included: [start, end)
    sig_type: str  # "Sig", "DocTimeStamp" or "" when not written
    subfilter: str


class _Integers:
    """The file's indirect integer objects ("12 0 obj 345 endobj"), read in one pass when first asked."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.found: dict[tuple[bytes, bytes], int] | None = None

    def get(self, num: bytes, gen: bytes) -> int | None:
        if self.found is None:
            self.found = {(m.group(1), m.group(2)): int(m.group(3)) for m in _INT_OBJ.finditer(self.data)}
        return self.found.get((num, gen))


def _declared_end(data: bytes, dict_end: int, start: int, integers: _Integers) -> int | None:
    """Where the stream's data ends by its /Length (direct, or an indirect
    integer object), if "endstream" follows there; else None."""
    head = data[max(0, dict_end - 4096):dict_end]
    header = list(_OBJ.finditer(head))
    head = head[header[-1].end():] if header else head
    lengths = list(_LENGTH.finditer(head))
    if not lengths:
        return None
    m = lengths[-1]
    if m.group(2) is None:
        length = int(m.group(1))
    else:
        found = integers.get(m.group(1), m.group(2))
        if found is None:
            return None
        length = found
    end = start + length
    return end if data[end:end + 32].lstrip().startswith(_ENDSTREAM) else None


def _stream_spans(data: bytes) -> list[tuple[int, int]]:
    """Stream data, by /Length when it checks out (a PDF embedded uncompressed
    holds its own "endstream"s), else up to the next "endstream"."""
    spans = []
    pos = 0
    integers = _Integers(data)
    while (m := _STREAM.search(data, pos)) is not None:
        end = _declared_end(data, m.start() + 2, m.end(), integers)
        if end is None:
            end = data.find(_ENDSTREAM, m.end())
        if end < 0:
            spans.append((m.end(), len(data)))
            break
        spans.append((m.end(), end))
        pos = end + len(_ENDSTREAM)
    return spans


def _inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= pos < b for a, b in spans)


def _object_start(data: bytes, pos: int) -> int:
    window = 8192
    while True:
        lo = max(0, pos - window)
        hits = list(_OBJ.finditer(data, lo, pos))
        if hits:
            return hits[-1].end()
        if lo == 0:
            return 0
        window *= 4


def _ints(text: bytes) -> tuple[int, ...]:
    parts = text.split()
    if not parts or not all(re.fullmatch(rb"[+-]?\d+", p) for p in parts):
        return ()
    return tuple(int(p) for p in parts)


def scan_signatures(data: bytes) -> list[RawSignature]:
    """Every /ByteRange + /Contents dictionary outside stream data, in file order."""
    if b"/ByteRange" not in data:
        return []
    spans = _stream_spans(data)
    found = []
    for m in _BYTE_RANGE.finditer(data):
        if _inside(m.start(), spans):
            continue
        # the dictionary: from its "N G obj" to its "endobj" (a /Contents may be far: it can be kilobytes long)
        start = _object_start(data, m.start())
        end = data.find(b"endobj", m.end())
        end = end if end >= 0 else min(len(data), m.end() + _WINDOW)
        body = data[start:end]
        contents = _CONTENTS.search(body)
        if contents is None:
            continue  # a /ByteRange without a signature value is no signature
        span = (start + contents.start(1) - 1, start + contents.end(1) + 1)
        near = data[max(start, m.start() - _WINDOW):min(end, m.end() + _WINDOW)]
        sig_type = _TYPE.search(near)
        subfilter = _SUBFILTER.search(near)
        found.append(RawSignature(
            offset=m.start(), byte_range=_ints(m.group(1)), contents=span,
            sig_type=sig_type.group(1).decode("latin-1") if sig_type else "",
            subfilter=subfilter.group(1).decode("latin-1") if subfilter else ""))
    return found


# --- byte ranges -----------------------------------------------------------------

OUTSIDE = "outside"  # not pairs of non-negative integers, or past the end of the file: nothing can be checked
GAP = "gap"  # inside the file, but not [0, a, b, c] whose gap is exactly the signature's /Contents


def byte_range_problem(byte_range: tuple[int, ...], size: int, contents: tuple[int, int] | None) -> str | None:
    """OUTSIDE, GAP or None. `contents` is the /Contents span when known."""
    br = byte_range
    if not br or len(br) % 2 or any(x < 0 for x in br):
        return OUTSIDE
    pairs = list(zip(br[::2], br[1::2]))
    if any(start + length > size for start, length in pairs):
        return OUTSIDE
    if any(a + la > b for (a, la), (b, _lb) in pairwise(pairs)):
        return OUTSIDE  # overlapping or unordered ranges
    if len(br) != 4 or br[0] != 0:
        return GAP
    if contents is not None and (br[1], br[2]) != contents:
        return GAP
    return None


def contents_for(raw: list[RawSignature], byte_range: tuple[int, ...]) -> tuple[int, int] | None:
    """The /Contents span of the raw dictionary written with this byte range:
    its own if one of them is consistent, else the first one's."""
    same = [r for r in raw if r.byte_range == byte_range]
    for r in same:
        if r.contents == (byte_range[1:3] if len(byte_range) == 4 else None):
            return r.contents
    return same[0].contents if same else None


def unreached(raw: list[RawSignature], reached: list[tuple[int, ...]]) -> list[RawSignature]:
    """The raw signature dictionaries whose byte range no signature the reader found has."""
    seen = set(reached)
    return [r for r in raw if r.byte_range not in seen]

"""Safe unpacking of lots (ZIP, tar, tar.gz): several files deposited as one flow.

Members are read into memory one at a time, never extracted to disk, so a
hostile name cannot write anywhere. Refused: absolute paths, `..`, links and
devices, more members than allowed, and more unpacked bytes than allowed
(a zip bomb stops at the bound, it is not unpacked).
"""
from __future__ import annotations

import io
import posixpath
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.core import codes
from gateway.pipeline.detect import sniff_family
from gateway.core.records import Finding, Location, Part


@dataclass(frozen=True)
class LotLimits:
    max_members: int
    max_unpacked_bytes: int
    max_member_bytes: int


class LotError(Exception):
    def __init__(self, finding: Finding):
        super().__init__(finding.message)
        self.finding = finding


def _bad(msg_en: str, msg_fr: str, member: str | None = None, value: str | None = None) -> LotError:
    return LotError(codes.finding("IRR_LOT", msg_en, msg_fr, location=Location(member=member),
                                  value=value, stage="lot"))


def safe_member_name(name: str) -> str:
    """Reject names that could escape or hide; return the normalised name."""
    if not name or "\x00" in name or any(ord(c) < 32 for c in name):
        raise _bad("Member name with control characters", "Nom de membre avec caractères de contrôle",
                   value=repr(name))
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        raise _bad("Absolute path in lot", "Chemin absolu dans le lot", name, name)
    norm = posixpath.normpath(n)
    if norm == ".." or norm.startswith("../") or "/../" in f"/{n}/":
        raise _bad("Path traversal ('..') in lot", "Remontée de chemin ('..') dans le lot", name, name)
    return norm


def unpack(data: bytes, limits: LotLimits) -> Iterator[Part]:
    """Yield the lot's files as Parts, in archive order. Raises LotError on the
    first unsafe member; parts already yielded stay valid."""
    fam = sniff_family(data)
    if fam == "zip":
        yield from _unzip(data, limits)
    elif fam == "tar":
        yield from _untar(data, limits)
    else:
        raise _bad("Not a ZIP or tar archive", "Ni ZIP ni tar")


def _unzip(data: bytes, limits: LotLimits) -> Iterator[Part]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _bad(f"Unreadable ZIP: {exc}", f"ZIP illisible : {exc}") from exc
    with zf:
        infos = zf.infolist()
        files = [i for i in infos if not i.is_dir()]
        if len(files) > limits.max_members:
            raise _bad(f"Lot has {len(files)} files, more than the {limits.max_members} allowed",
                       f"Le lot contient {len(files)} fichiers, plus que les {limits.max_members} permis",
                       value=str(len(files)))
        # Declared sizes first: a bomb is refused before anything is inflated.
        declared = sum(i.file_size for i in files)
        if declared > limits.max_unpacked_bytes:
            raise _bad(f"Lot unpacks to {declared} bytes, more than {limits.max_unpacked_bytes}",
                       f"Le lot décompressé fait {declared} octets, plus que {limits.max_unpacked_bytes}",
                       value=str(declared))
        total = 0
        index = 0
        for info in files:
            name = safe_member_name(info.filename)
            mode = (info.external_attr >> 16) & 0o170000
            if mode and mode != 0o100000:  # symlink or device stored in the zip
                raise _bad("Links and special files are not allowed in a lot",
                           "Liens et fichiers spéciaux interdits dans un lot", name, name)
            if info.flag_bits & 0x1:
                raise _bad("Encrypted member in lot", "Membre chiffré dans le lot", name, name)
            # Never trust declared sizes alone: read with a hard cap.
            cap = min(limits.max_member_bytes, limits.max_unpacked_bytes - total) + 1
            try:
                with zf.open(info) as fh:
                    body = fh.read(cap)
            except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError) as exc:
                raise _bad(f"Unreadable member: {exc}", f"Membre illisible : {exc}", name, name) from exc
            if len(body) >= cap:
                raise _bad("Lot member larger than allowed (zip bomb?)",
                           "Membre du lot plus grand que permis (bombe zip ?)", name, name)
            total += len(body)
            index += 1
            yield Part(index=index, name=name, data=body)


def _untar(data: bytes, limits: LotLimits) -> Iterator[Part]:
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise _bad(f"Unreadable tar: {exc}", f"Tar illisible : {exc}") from exc
    total = 0
    index = 0
    with tf:
        try:
            for member in tf:
                if member.isdir():
                    continue
                name = safe_member_name(member.name)
                if not member.isreg():
                    raise _bad("Links and special files are not allowed in a lot",
                               "Liens et fichiers spéciaux interdits dans un lot", name, name)
                index += 1
                if index > limits.max_members:
                    raise _bad(f"Lot has more than the {limits.max_members} files allowed",
                               f"Le lot contient plus que les {limits.max_members} fichiers permis")
                if member.size > limits.max_member_bytes or total + member.size > limits.max_unpacked_bytes:
                    raise _bad("Lot unpacks to more bytes than allowed", "Le lot décompressé dépasse la taille permise",
                               name, str(member.size))
                fh = tf.extractfile(member)
                body = fh.read(member.size + 1) if fh else b""
                total += len(body)
                yield Part(index=index, name=name, data=body)
        except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error) as exc:
            raise _bad(f"Unreadable tar: {exc}", f"Tar illisible : {exc}") from exc


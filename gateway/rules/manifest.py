"""The normative artefacts the gateway judges by, and their manifest.

`schemas/` (at the repository's top level; `gateway/schemas` in an installed
wheel) holds byte-identical copies of the UBL 2.1 and CII D16B XSDs, the
CEN/TC 434 EN 16931 XSLTs and the platform's CPPStatut / CPPFacturePivot
XSDs. `schemas/MANIFEST.toml` gives each artefact's title, version, licence,
upstream source and the SHA-256 of each of its files. The files are checked
once per process, before the first is used: a missing or altered file is
refused with a message naming it, never replaced by another schema.
`[validation] artefacts_dir` names another folder with its own manifest
(tests use a copy); `[validation] schema_dirs` still comes first (xsd.py,
rulesets.py).
"""
from __future__ import annotations

import functools
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "MANIFEST.toml"


class ArtefactError(RuntimeError):
    """The artefacts folder cannot be trusted: its manifest or a file is missing or altered."""


@dataclass(frozen=True)
class Artefact:
    id: str  # e.g. "en16931"
    title: str
    version: str
    licence: str
    notice: str  # path of its NOTICE under schemas/
    upstream: str  # repository@commit and path it was copied from
    files: tuple[tuple[str, str], ...]  # (path under schemas/, SHA-256)

    @property
    def label(self) -> str:
        return f"{self.title} {self.version}"


@dataclass(frozen=True)
class FileState:
    path: str  # under the artefacts folder
    artefact: Artefact
    expected: str
    actual: str | None  # None: missing

    @property
    def ok(self) -> bool:
        return self.actual == self.expected

    @property
    def problem(self) -> str:
        if self.actual is None:
            return f"{self.path}: missing"
        if self.actual != self.expected:
            return f"{self.path}: altered (SHA-256 {self.actual}, the manifest says {self.expected})"
        return ""


@dataclass(frozen=True)
class Manifest:
    root: Path
    artefacts: tuple[Artefact, ...]

    def artefact_of(self, rel: str) -> Artefact | None:
        return next((a for a in self.artefacts if any(p == rel for p, _ in a.files)), None)

    def display(self, rel: str) -> str:
        """How a file is named to people: `schemas/...` for the shipped folder."""
        return f"schemas/{rel}" if self.root == packaged_root() else str(self.root / rel)


@functools.cache
def packaged_root() -> Path:
    """schemas/ of the source tree, or gateway/schemas in an installed wheel."""
    src = Path(__file__).resolve().parents[2] / "schemas"
    if (src / MANIFEST).is_file():
        return src
    return Path(__file__).resolve().parents[1] / "schemas"


def root_of(settings: Any) -> Path:
    """The artefacts folder a home uses: `[validation] artefacts_dir`, else the shipped one."""
    given = getattr(settings, "artefacts_dir", None) if settings is not None else None
    return Path(given) if given else packaged_root()


def load(root: Path) -> Manifest:
    """Read a manifest (not the files it lists); ArtefactError says what is wrong."""
    path = root / MANIFEST
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtefactError(f"the artefacts manifest {path} is missing") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ArtefactError(f"the artefacts manifest {path} cannot be read: {exc}") from exc
    out = []
    for i, a in enumerate(raw.get("artefact", [])):
        try:
            files = tuple((str(p), str(h).lower()) for p, h in a["files"].items())
            out.append(Artefact(str(a["id"]), str(a["title"]), str(a["version"]), str(a["licence"]),
                                str(a.get("notice", "")), str(a["upstream"]), files))
        except (KeyError, AttributeError, TypeError) as exc:
            raise ArtefactError(f"{path}: artefact #{i + 1} lacks {exc}") from exc
    if not out:
        raise ArtefactError(f"the artefacts manifest {path} lists no artefact")
    return Manifest(root, tuple(out))


def sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def states(manifest: Manifest) -> list[FileState]:
    """Every listed file with its expected and actual SHA-256 (read now)."""
    return [FileState(rel, a, expected, sha256_of(manifest.root / rel))
            for a in manifest.artefacts for rel, expected in a.files]


@functools.lru_cache(maxsize=8)
def verified(root: Path) -> Manifest:
    """The manifest of `root`, every file checked once per process.

    Raises ArtefactError naming each missing or altered file: the gateway then
    refuses to start, and a validation that needs one answers ERR_VALIDATEUR.
    """
    manifest = load(root)
    bad = [s.problem for s in states(manifest) if not s.ok]
    if bad:
        raise ArtefactError(f"the artefacts in {root} do not match {MANIFEST}: " + "; ".join(bad)
                            + ". Restore the original files (reinstall the gateway); they are never replaced")
    return manifest


def require(settings: Any) -> Manifest:
    """The home's artefacts, verified (the start check of `gateway run` and `gateway validate`)."""
    return verified(root_of(settings).resolve())


@dataclass(frozen=True)
class Located:
    path: Path
    artefact: Artefact
    source: str  # for people: "CEN/TC 434 ... 1.3.16: schemas/en16931/cii/..."


def locate(root: Path, rel: str) -> Located:
    """A verified artefact file of the folder `root` (root_of(settings)) by its
    path under it; ArtefactError otherwise."""
    manifest = verified(root.resolve())
    artefact = manifest.artefact_of(rel)
    if artefact is None:
        raise ArtefactError(f"{manifest.display(rel)} is not listed in {manifest.root / MANIFEST}")
    return Located(manifest.root / rel, artefact, f"{artefact.label}: {manifest.display(rel)}")

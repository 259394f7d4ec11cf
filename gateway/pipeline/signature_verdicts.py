"""Facts about each signature -> findings, in English and French. Pure.

Signatures are judged in signing order:

- SIG_PLAGE: the /ByteRange points outside the file, is not [0 a b c]
  around the dictionary's own /Contents, or stops before its revision ends.
- SIG_ALTEREE: the message digest does not match the bytes the signature
  covers (value "message-digest"), or the signature value does not verify
  (value "signature-value").
- What was appended after a signature. Long-term validation material (DSS,
  VRI, document timestamps), later signatures and metadata are allowed and
  listed in the report's `later_changes`. Filling other form fields is allowed
  too, with a SIG_AJOUT_PERMIS warning unless a later intact signature, at
  least as trusted, covers it. Anything more (annotations, page content, what
  a certification signature forbids) is SIG_MODIFIEE.
- SIG_NON_APPROUVEE: intact, but no chain to a trusted root at the validation
  time (warning, error with untrusted_signature="reject" or when revoked);
  info when only the timestamp's authority is untrusted.
- SIG_HORODATAGE: the signature's timestamp token is declared but empty, is no
  RFC 3161 token, does not match the signature, or is missing where the
  signature field requires one; a document timestamp whose token is broken.
- SIG_SOUS_FILTRE: a legacy adbe.pkcs7.sha1 signature (validated, warning), or
  a /SubFilter the gateway cannot validate (error).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.records import Finding, Location, Severity
from gateway.pipeline.signature_scan import GAP, OUTSIDE, RawSignature
from gateway.pipeline.signature_status import (LEGACY_SHA1, TIMESTAMP, TOKEN_EMPTY, TOKEN_UNREADABLE)

STAGE = "signature"

# the timestamp token of a signature
TS_BROKEN = "broken"  # does not match the signature, or its own signature does not verify
TS_REQUIRED = "required"  # the field's seed value requires one; there is none that holds


@dataclass(frozen=True)
class Facts:
    field_name: str
    kind: str  # "signature" or "timestamp"
    intact: bool
    valid: bool
    trusted: bool
    revoked: bool
    coverage: Any  # SignatureCoverageLevel | None
    level: Any  # ModificationLevel | None
    docmdp_ok: bool | None
    trust_reason: tuple[str, str]  # English, French
    signer: str | None
    subfilter: str = ""
    range_problem: str | None = None  # signature_scan.OUTSIDE or GAP
    ts_problem: str | None = None  # TOKEN_EMPTY, TOKEN_UNREADABLE, TS_BROKEN, TS_REQUIRED
    ts_untrusted: bool = False
    changed_fields: frozenset[str] = frozenset()  # form fields changed after this signature (pyHanko's diff)
    dss_added: bool = False  # a DSS was added or updated after this signature

    @property
    def coverage_ok(self) -> bool:
        """The byte range is [0 a b c] around its own value and covers its whole revision."""
        return self.range_problem is None and getattr(self.coverage, "name", "") in ("ENTIRE_FILE", "ENTIRE_REVISION")


def _loc(field: str) -> Location:
    return Location(xpath=f"PDF signature field {field}")


def _agree(f: Facts, feminine: str) -> str:
    """The French adjective agreeing with la signature / l'horodatage (masculine)."""
    return feminine[:-1] if f.kind == TIMESTAMP else feminine


def _what(f: Facts) -> tuple[str, str]:
    return ("Document timestamp", "L'horodatage du document") if f.kind == TIMESTAMP else ("Signature", "La signature")


# --- byte ranges and integrity ------------------------------------------------------

def _range_finding(f: Facts) -> Finding | None:
    from pyhanko.sign.validation.status import SignatureCoverageLevel as Cov

    what, quoi = _what(f)
    if f.range_problem == OUTSIDE:
        en = "its /ByteRange is malformed or points outside the file, so the bytes it claims to sign do not exist"
        fr = "sa /ByteRange est malformée ou pointe hors du fichier : les octets qu'elle dit signer n'existent pas"
    elif f.range_problem == GAP or f.coverage not in (Cov.ENTIRE_FILE, Cov.ENTIRE_REVISION, None):
        en = ("its /ByteRange does not cover its whole revision around its own signature value: unsigned bytes sit "
              "inside the signed document")
        fr = ("sa /ByteRange ne couvre pas toute sa révision autour de sa propre valeur de signature : des octets non "
              "signés sont dans le document signé")
    else:
        return None
    cov = getattr(f.coverage, "name", None) or f.range_problem or ""
    return codes.finding("SIG_PLAGE", f"{what} '{f.field_name}': {en}", f"{quoi} « {f.field_name} » : {fr}",
                         location=_loc(f.field_name), value=cov, stage=STAGE)


def _broken_finding(f: Facts) -> Finding:
    what, quoi = _what(f)
    if not f.intact:
        en, fr, value = ("the signed bytes were changed (the digest in the signature does not match the bytes it "
                         "covers)", "le contenu signé a changé (l'empreinte dans la signature ne correspond pas aux "
                         "octets couverts)", "message-digest")
    elif f.kind == TIMESTAMP:
        return codes.finding(
            "SIG_HORODATAGE", f"Document timestamp '{f.field_name}' is broken: the authority's signature on the "
            "token does not verify", f"L'horodatage du document « {f.field_name} » est invalide : la signature de "
            "l'autorité sur le jeton est fausse", location=_loc(f.field_name), value="signature-value", stage=STAGE)
    else:
        en, fr, value = ("the signature value does not verify", "la valeur de signature est fausse", "signature-value")
    return codes.finding("SIG_ALTEREE", f"{what} '{f.field_name}' is broken: {en}",
                         f"{quoi} « {f.field_name} » est {_agree(f, 'altérée')} : {fr}",
                         location=_loc(f.field_name), value=value, stage=STAGE)


# --- what was appended after a signature ----------------------------------------------

def _later_changes(f: Facts, later: list[Facts]) -> tuple[str, ...]:
    out = []
    if f.dss_added:
        out.append("validation data (DSS)")
    for g in later:
        out.append(f"document timestamp '{g.field_name}'" if g.kind == TIMESTAMP else f"signature '{g.field_name}'")
    later_names = {g.field_name for g in later}
    out.extend(f"form field '{name}' filled" for name in sorted(f.changed_fields - later_names))
    if not out and f.level is not None and f.level.name == "LTA_UPDATES":
        out.append("metadata or validation data")
    if not out and f.level is not None and f.level.name == "NONE" and getattr(f.coverage, "name", "") == \
            "ENTIRE_REVISION":
        out.append("bytes after the signed revision that make no revision (not read)")
    return tuple(out)


def _modified(f: Facts, later: list[Facts]) -> Finding | None:
    from pyhanko.sign.diff_analysis import ModificationLevel as Level

    if f.kind == TIMESTAMP or f.level is None:
        return None  # a document timestamp proves existence, not authorship: signatures judge what follows
    loc = _loc(f.field_name)
    if f.docmdp_ok is not False and f.level <= Level.LTA_UPDATES:
        return None
    filled = sorted(f.changed_fields - {g.field_name for g in later})
    if f.docmdp_ok is not False and f.level == Level.FORM_FILLING:
        vouched = any(g.kind != TIMESTAMP and g.intact and g.valid and (g.trusted or not f.trusted) for g in later)
        if not filled or vouched:
            return None  # only later signatures and timestamps, or a later signature covers the filling
        names = ", ".join(filled)
        return codes.finding(
            "SIG_AJOUT_PERMIS",
            f"Form fields were filled after signature '{f.field_name}' ({names}), a change a signed PDF permits; "
            "no later signature covers it",
            f"Des champs de formulaire ont été remplis après la signature « {f.field_name} » ({names}), "
            "modification permise sur un PDF signé ; aucune signature ultérieure ne la couvre",
            location=loc, value=names, severity=Severity.WARNING, stage=STAGE)
    lvl = f.level.name
    forbidden = f.docmdp_ok is False and f.level < Level.OTHER
    why_en = "which its certification forbids" if forbidden else "beyond validation data, timestamps, " \
        "signatures and form filling"
    why_fr = "ce que sa certification interdit" if forbidden else "au-delà de données de validation, " \
        "d'horodatages, de signatures et de remplissage de formulaire"
    en, fr = _LEVEL_WORDS.get(lvl, _LEVEL_WORDS["OTHER"])
    return codes.finding(
        "SIG_MODIFIEE", f"The document was changed after signature '{f.field_name}' ({en}), {why_en}: "
        "send the document as signed", f"Le document a été modifié après la signature « {f.field_name} » ({fr}), "
        f"{why_fr} : déposez le document tel que signé", location=loc, value=lvl, stage=STAGE)


_LEVEL_WORDS = {
    "LTA_UPDATES": ("validation data or metadata", "données de validation ou métadonnées"),
    "FORM_FILLING": ("form fields filled", "champs de formulaire remplis"),
    "ANNOTATIONS": ("annotations added or changed", "annotations ajoutées ou modifiées"),
    "OTHER": ("pages, content or structure changed", "pages, contenu ou structure modifiés"),
}


# --- trust, timestamps, formats ----------------------------------------------------------

def _untrusted(f: Facts, settings: Settings) -> Finding:
    what, quoi = _what(f)
    sev = Severity.ERROR if f.revoked or settings.untrusted_signature == "reject" else Severity.WARNING
    return codes.finding(
        "SIG_NON_APPROUVEE",
        f"{what} '{f.field_name}' by {f.signer or 'an unknown signer'} is intact but not trusted: {f.trust_reason[0]}",
        f"{quoi} « {f.field_name} » de {f.signer or 'signataire inconnu'} est intègre mais non "
        f"{_agree(f, 'approuvée')} : {f.trust_reason[1]}", location=_loc(f.field_name), value=f.signer,
        severity=sev, stage=STAGE)


_TOKEN_WORDS = {
    TOKEN_EMPTY: ("declares a timestamp token but holds none", "déclare un jeton d'horodatage mais n'en contient aucun"),
    TOKEN_UNREADABLE: ("carries a timestamp token that is not a readable RFC 3161 token",
                       "porte un jeton d'horodatage qui n'est pas un jeton RFC 3161 lisible"),
    TS_BROKEN: ("carries a timestamp token that does not match it or whose signature does not verify",
                "porte un jeton d'horodatage qui ne lui correspond pas ou dont la signature est fausse"),
    TS_REQUIRED: ("has no valid trusted timestamp, which its signature field requires",
                  "n'a pas d'horodatage valide et approuvé, que son champ de signature exige"),
}


def _timestamp_findings(f: Facts) -> list[Finding]:
    out = []
    if f.ts_problem in _TOKEN_WORDS:
        en, fr = _TOKEN_WORDS[f.ts_problem]
        out.append(codes.finding(
            "SIG_HORODATAGE", f"Signature '{f.field_name}' {en}: its signing time is not proven",
            f"La signature « {f.field_name} » {fr} : son heure de signature n'est pas prouvée",
            location=_loc(f.field_name), value=f.ts_problem, stage=STAGE))
    elif f.ts_untrusted:
        out.append(codes.finding(
            "SIG_NON_APPROUVEE",
            f"The timestamp in signature '{f.field_name}' comes from an untrusted authority: "
            "the signing time is only the signer's claim",
            f"L'horodatage de la signature « {f.field_name} » vient d'une autorité non approuvée : "
            "l'heure de signature n'est qu'une déclaration du signataire",
            location=_loc(f.field_name), severity=Severity.INFO, stage=STAGE))
    return out


def legacy_finding(f: Facts) -> Finding:
    return codes.finding(
        "SIG_SOUS_FILTRE",
        f"Signature '{f.field_name}' uses the legacy format adbe.pkcs7.sha1: it binds the document through a SHA-1 "
        "digest only; sign with adbe.pkcs7.detached or ETSI.CAdES.detached (PAdES)",
        f"La signature « {f.field_name} » utilise l'ancien format adbe.pkcs7.sha1 : elle ne lie le document que par "
        "une empreinte SHA-1 ; signez en adbe.pkcs7.detached ou ETSI.CAdES.detached (PAdES)",
        location=_loc(f.field_name), value="adbe.pkcs7.sha1", severity=Severity.WARNING, stage=STAGE)


def verdicts(facts: list[Facts], settings: Settings) -> list[tuple[list[Finding], tuple[str, ...]]]:
    """(findings, later changes allowed) for each signature, in signing order."""
    out: list[tuple[list[Finding], tuple[str, ...]]] = []
    for i, f in enumerate(facts):
        later = facts[i + 1:]
        found: list[Finding] = []
        ranged = _range_finding(f)
        if ranged is not None:
            found.append(ranged)
        if f.range_problem == OUTSIDE:
            out.append((found, ()))
            continue
        if not f.intact or not f.valid:
            out.append((found + [_broken_finding(f)], ()))
            continue
        if ranged is None:
            found.extend(m for m in (_modified(f, later),) if m)
        if not f.trusted:
            found.append(_untrusted(f, settings))
        found.extend(_timestamp_findings(f))
        if f.subfilter == LEGACY_SHA1:
            found.append(legacy_finding(f))
        out.append((found, _later_changes(f, later) if ranged is None else ()))
    return out


# --- what could not be judged --------------------------------------------------------

def unreadable_finding(field: str, en: str, fr: str, *, code: str = "SIG_ILLISIBLE",
                       value: str | None = None) -> Finding:
    return codes.finding(code, f"Signature '{field}' cannot be validated: {en}",
                         f"La signature « {field} » ne peut pas être validée : {fr}",
                         location=_loc(field), value=value, stage=STAGE)


def unsupported_finding(field: str, subfilter: str) -> Finding:
    name = subfilter.lstrip("/") or "(none)"
    return unreadable_finding(
        field, f"its format (/SubFilter {name}) is not one the gateway can validate; sign with "
        "adbe.pkcs7.detached or ETSI.CAdES.detached (PAdES)", f"son format (/SubFilter {name}) n'est pas de ceux que "
        "la passerelle sait valider ; signez en adbe.pkcs7.detached ou ETSI.CAdES.detached (PAdES)",
        code="SIG_SOUS_FILTRE", value=name)


def hidden_finding(raw: RawSignature) -> Finding:
    rng = " ".join(str(x) for x in raw.byte_range) or "?"
    return codes.finding(
        "SIG_MASQUEE",
        f"A signature sits in the file at byte {raw.offset} (byte range [{rng}]) but the PDF's cross-reference table, "
        "trailer and form do not lead to it: it is hidden, replaced or cut off, and cannot be validated; send the "
        "document as it was signed",
        f"Une signature se trouve dans le fichier à l'octet {raw.offset} (plage [{rng}]) mais la table de références "
        "croisées, le trailer et le formulaire du PDF n'y mènent pas : elle est masquée, remplacée ou coupée, et ne "
        "peut pas être validée ; déposez le document tel que signé",
        location=Location(xpath=f"PDF byte {raw.offset}"), value=rng, stage=STAGE)

"""PAdES / PDF signature verdicts, offline, with pyHanko.

Each signature gets a fresh ValidationContext (they are stateful) built on
the trust roots of the home's `trust/` folder (none by default: nothing is
trusted until an operator drops a CA certificate there), never fetching
anything from the network. The verdicts (anchors-and-howtos.md B1):

- SIG_ALTEREE: the signed bytes changed (not intact) or the signature value
  does not verify.
- SIG_MODIFIEE: bytes were appended after signing and they are more than
  harmless updates (metadata, DSS, document timestamps); form filling is
  accepted only when a later trusted signature covers it. Also a signature
  whose ByteRange does not cover its whole revision.
- SIG_NON_APPROUVEE: intact, but the signer does not chain to a trusted root
  at the validation time (warning, or error with untrusted_signature="reject").
- SIG_ILLISIBLE: the signature cannot be read at all.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509 as pyca_x509

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.records import Finding, Location, Severity

STAGE = "signature"
TRUST_SUFFIXES = (".pem", ".crt", ".cer", ".der")

log = logging.getLogger(__name__)

# pyHanko logs full tracebacks for outcomes we expect and report ourselves
# (suspicious modifications, no path to a trust root): the status says why.
for _name in ("pyhanko", "pyhanko_certvalidator"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class SignatureReport:
    field_name: str
    signer: str | None  # subject common name, else the RFC 4514 subject
    signing_time: str | None  # ISO 8601: timestamp token time, else the signer's claim
    intact: bool
    valid: bool
    trusted: bool
    coverage: str  # pyHanko SignatureCoverageLevel name, or "" when unknown
    modification_level: str  # pyHanko ModificationLevel name, or ""
    docmdp_ok: bool | None
    summary: str
    findings: tuple[Finding, ...]
    kind: str = "signature"  # "signature" or "timestamp" (document timestamp)
    signed_revision: int | None = None
    signed_end: int | None = None  # end of the signed bytes: the signed revision is data[:signed_end]


# --- trust roots -----------------------------------------------------------

def trust_dirs(settings: Settings) -> list[Path]:
    """<home>/trust plus `[signatures] trust_dirs` (relative to the home)."""
    extra = settings.section("signatures").get("trust_dirs", []) or []
    dirs = [settings.trust]
    for d in extra:
        p = Path(d)
        dirs.append(p if p.is_absolute() else settings.home / p)
    return dirs


def _trust_files(dirs: list[Path]) -> tuple[tuple[str, int, int], ...]:
    files = []
    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if p.is_file() and p.suffix.lower() in TRUST_SUFFIXES:
                st = p.stat()
                files.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(files)


@lru_cache(maxsize=8)
def _load_roots(files: tuple[tuple[str, int, int], ...]) -> tuple[asn1_x509.Certificate, ...]:
    # keyed on (path, mtime, size) of every file: a changed folder reloads
    from pyhanko.keys import load_certs_from_pemder

    roots: list[asn1_x509.Certificate] = []
    for path, _mtime, _size in files:
        try:
            roots.extend(load_certs_from_pemder([path]))
        except Exception as exc:  # one bad file must not untrust the others
            log.warning("trust root %s not loaded: %s", path, exc)
    return tuple(roots)


def trust_roots(settings: Settings) -> tuple[asn1_x509.Certificate, ...]:
    return _load_roots(_trust_files(trust_dirs(settings)))


def validation_moment(settings: Settings, at: datetime | None = None) -> datetime | None:
    """`at`, else settings.validation_time, else None (now). Naive means UTC."""
    if at is None and settings.validation_time:
        at = _configured_moment(settings.validation_time)
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at


@lru_cache(maxsize=8)
def _configured_moment(text: str) -> datetime | None:
    # read once per value: every signed PDF asks, and a bad value is logged once
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        log.warning("validation_time %r is not an ISO datetime; validating at now", text)
        return None


# --- facts -> findings (pure) ----------------------------------------------

def _signer_name(cert: asn1_x509.Certificate | None) -> str | None:
    if cert is None:
        return None
    try:
        subject = pyca_x509.load_der_x509_certificate(cert.dump()).subject
        cn = subject.get_attributes_for_oid(pyca_x509.NameOID.COMMON_NAME)
        return str(cn[0].value) if cn else subject.rfc4514_string()
    except Exception:
        return cert.subject.human_friendly


def _trust_reason(status: Any, moment: datetime | None) -> str:
    indic = getattr(status, "trust_problem_indic", None)
    when = moment.isoformat() if moment else "validation time (now)"
    if getattr(status, "revoked", False):
        return f"the certificate is revoked (at {when})"
    name = getattr(indic, "name", "") or "no path to a trusted root"
    return {
        "NO_CERTIFICATE_CHAIN_FOUND": "no chain to a trusted root (add the issuing CA to the trust folder)",
        "OUT_OF_BOUNDS_NO_POE": f"a certificate was not valid at {when} (expired or not yet valid)",
        "OUT_OF_BOUNDS_NOT_REVOKED": f"a certificate was not valid at {when} (expired or not yet valid)",
        "EXPIRED": f"a certificate had expired at {when}",
        "NOT_YET_VALID": f"a certificate was not yet valid at {when}",
        "CRYPTO_CONSTRAINTS_FAILURE": "an algorithm is not allowed (weak or disallowed digest/signature)",
        "CRYPTO_CONSTRAINTS_FAILURE_NO_POE": "an algorithm is not allowed (weak or disallowed digest/signature)",
        "REVOKED_NO_POE": f"the certificate is revoked (at {when})",
        "REVOKED_CA_NO_POE": f"an issuing CA certificate is revoked (at {when})",
        "CHAIN_CONSTRAINTS_FAILURE": "the certificate chain breaks a constraint (key usage, path length, validity)",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE": f"the certificate chain does not validate at {when} "
                                             "(a certificate may not be valid yet at that time)",
    }.get(name, f"{name} (at {when})")


@dataclass(frozen=True)
class _Facts:
    field_name: str
    kind: str
    intact: bool
    valid: bool
    trusted: bool
    revoked: bool
    coverage: Any  # SignatureCoverageLevel | None
    level: Any  # ModificationLevel | None
    docmdp_ok: bool | None
    ts_untrusted: bool
    trust_reason: str
    signer: str | None


def _modified(f: _Facts, allowed: Any, loc: Location) -> Finding | None:
    """SIG_MODIFIEE when what was appended after this signature is more than `allowed`."""
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation.status import SignatureCoverageLevel as Cov

    if f.kind == "timestamp":
        return None  # a document timestamp proves existence, not authorship: signatures judge what follows
    if f.coverage not in (Cov.ENTIRE_FILE, Cov.ENTIRE_REVISION):
        cov = getattr(f.coverage, "name", "UNCLEAR")
        return codes.finding(
            "SIG_MODIFIEE",
            f"Signature '{f.field_name}' does not cover its whole revision (coverage {cov}): "
            "unsigned bytes sit inside the document",
            f"La signature « {f.field_name} » ne couvre pas toute sa révision (couverture {cov}) : "
            "des octets non signés sont dans le document",
            location=loc, value=cov, stage=STAGE)
    if f.coverage == Cov.ENTIRE_FILE or (f.docmdp_ok is not False and f.level is not None and f.level <= allowed):
        return None
    lvl = getattr(f.level, "name", "UNKNOWN")
    unvouched = f.level is not None and f.level <= ModificationLevel.FORM_FILLING
    return codes.finding(
        "SIG_MODIFIEE",
        f"The document was changed after signature '{f.field_name}' beyond harmless updates (modification level "
        f"{lvl}{', not covered by a later trusted signature' if unvouched else ''}): send the document as signed",
        f"Le document a été modifié après la signature « {f.field_name} » au-delà de mises à jour anodines "
        f"(niveau {lvl}{', sans signature ultérieure approuvée' if unvouched else ''}) : déposez le document "
        "tel que signé",
        location=loc, value=lvl, stage=STAGE)


def _verdicts(facts: list[_Facts], settings: Settings) -> list[list[Finding]]:
    """Findings for each signature, in signing order. Form filling after a
    signature is accepted only if a later intact signature, at least as
    trusted, covers it; after the last signature only harmless updates are."""
    from pyhanko.sign.diff_analysis import ModificationLevel

    untrusted_sev = Severity.ERROR if settings.untrusted_signature == "reject" else Severity.WARNING
    out: list[list[Finding]] = []
    for i, f in enumerate(facts):
        loc = Location(xpath=f"PDF signature field {f.field_name}")
        what = "Document timestamp" if f.kind == "timestamp" else "Signature"
        if not f.intact or not f.valid:
            why = "the signed bytes were changed" if not f.intact else "the signature value does not verify"
            out.append([codes.finding(
                "SIG_ALTEREE", f"{what} '{f.field_name}' is broken: {why}",
                f"Signature « {f.field_name} » altérée : "
                + ("le contenu signé a changé" if not f.intact else "la valeur de signature est fausse"),
                location=loc, value=f.signer, stage=STAGE)])
            continue
        vouched = any(g.kind == "signature" and g.intact and g.valid and (g.trusted or not f.trusted)
                      for g in facts[i + 1:])
        allowed = ModificationLevel.FORM_FILLING if vouched else ModificationLevel.LTA_UPDATES
        found = [m for m in (_modified(f, allowed, loc),) if m]
        if not f.trusted:
            found.append(codes.finding(
                "SIG_NON_APPROUVEE",
                f"{what} '{f.field_name}' by {f.signer or 'an unknown signer'} is intact but not trusted: "
                f"{f.trust_reason}",
                f"Signature « {f.field_name} » de {f.signer or 'signataire inconnu'} intègre mais non "
                f"approuvée : {f.trust_reason}",
                location=loc, value=f.signer, severity=Severity.ERROR if f.revoked else untrusted_sev, stage=STAGE))
        if f.ts_untrusted:
            found.append(codes.finding(
                "SIG_NON_APPROUVEE",
                f"The timestamp in signature '{f.field_name}' comes from an untrusted authority: "
                "the signing time is only the signer's claim",
                f"L'horodatage de la signature « {f.field_name} » vient d'une autorité non approuvée : "
                "l'heure de signature n'est qu'une déclaration du signataire",
                location=loc, severity=Severity.INFO, stage=STAGE))
        out.append(found)
    return out


# --- pyHanko ------------------------------------------------------------------

def _unreadable(field: str, reason: str) -> SignatureReport:
    f = codes.finding(
        "SIG_ILLISIBLE", f"Signature '{field}' cannot be read: {reason}",
        f"Signature « {field} » illisible : {reason}",
        location=Location(xpath=f"PDF signature field {field}"), stage=STAGE)
    return SignatureReport(field, None, None, False, False, False, "", "", None, "UNREADABLE", (f,))


def _signed_end(emb: Any) -> int | None:
    try:
        br = [int(x) for x in emb.byte_range]
        return br[-2] + br[-1] if len(br) >= 4 else None
    except Exception:
        return None


def _collect(reader: Any) -> tuple[list[Any], list[SignatureReport]]:
    """Filled signature fields one by one, so one unreadable signature does
    not hide the others (pyHanko's embedded_signatures is all or nothing)."""
    from pyhanko.sign.fields import SigSeedSubFilter, enumerate_sig_fields
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

    subfilters = {s.value for s in SigSeedSubFilter}
    good, bad = [], []
    for fq_name, sig_obj, sig_field in enumerate_sig_fields(reader, filled_status=True):
        try:
            sub = sig_obj.get_object().get("/SubFilter")
            if sub not in subfilters:
                bad.append(_unreadable(fq_name, f"unsupported /SubFilter {sub}"))
                continue
            good.append(EmbeddedPdfSignature(reader, sig_field, fq_name))
        except Exception as exc:
            bad.append(_unreadable(fq_name, f"{type(exc).__name__}: {exc}"))
    good.sort(key=lambda e: e.signed_revision)
    return good, bad


async def _status(emb: Any, roots: tuple, moment: datetime | None) -> Any:
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY
    from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
    from pyhanko_certvalidator import ValidationContext

    vc = ValidationContext(trust_roots=list(roots), allow_fetching=False, revocation_mode="soft-fail", moment=moment)
    try:
        if emb.sig_object_type == "/DocTimeStamp":
            return await async_validate_pdf_timestamp(emb, validation_context=vc, diff_policy=DEFAULT_DIFF_POLICY)
        return await async_validate_pdf_signature(emb, vc, diff_policy=DEFAULT_DIFF_POLICY)
    finally:
        await vc.aclose()


def _facts(emb: Any, st: Any, moment: datetime | None) -> _Facts:
    kind = "timestamp" if emb.sig_object_type == "/DocTimeStamp" else "signature"
    tsv = getattr(st, "timestamp_validity", None)
    return _Facts(
        field_name=emb.field_name, kind=kind, intact=bool(st.intact), valid=bool(st.valid),
        trusted=bool(st.trusted), revoked=bool(getattr(st, "revoked", False)), coverage=st.coverage,
        level=st.modification_level, docmdp_ok=st.docmdp_ok,
        ts_untrusted=bool(tsv is not None and not tsv.trusted),
        trust_reason=_trust_reason(st, moment), signer=_signer_name(getattr(st, "signing_cert", None)),
    )


def _signing_time(st: Any) -> str | None:
    tsv = getattr(st, "timestamp_validity", None)
    when = (tsv.timestamp if tsv is not None else None) or getattr(st, "signer_reported_dt", None) \
        or getattr(st, "timestamp", None)
    return when.isoformat() if when else None


async def validate_signatures_async(
    data: bytes, settings: Settings, *, at: datetime | None = None
) -> tuple[list[SignatureReport], list[Finding]]:
    """As validate_signatures, for callers inside an event loop."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded, unreadable = _collect(reader)
    except (Exception, RecursionError) as exc:
        if b"/ByteRange" not in data:
            return [], []  # nothing that looks like a signature: the PDF stage reports the file itself
        rep = _unreadable("?", f"the PDF cannot be read for signatures ({type(exc).__name__}: {exc})")
        return [rep], list(rep.findings)
    roots = trust_roots(settings)
    moment = validation_moment(settings, at)
    done: list[tuple[Any, Any, _Facts]] = []
    for emb in embedded:
        try:
            st = await _status(emb, roots, moment)
            done.append((emb, st, _facts(emb, st, moment)))
        except (Exception, RecursionError) as exc:
            unreadable.append(_unreadable(emb.field_name, f"{type(exc).__name__}: {exc}"))
    found = _verdicts([f for _e, _s, f in done], settings)
    reports = [
        SignatureReport(
            field_name=f.field_name, signer=f.signer, signing_time=_signing_time(st), intact=f.intact,
            valid=f.valid, trusted=f.trusted, coverage=getattr(f.coverage, "name", ""),
            modification_level=getattr(f.level, "name", ""), docmdp_ok=f.docmdp_ok, summary=st.summary(),
            findings=tuple(fs), kind=f.kind, signed_revision=emb.signed_revision, signed_end=_signed_end(emb),
        )
        for (emb, st, f), fs in zip(done, found)
    ]
    reports.extend(unreadable)
    return reports, [x for r in reports for x in r.findings]


def validate_signatures(
    data: bytes, settings: Settings, *, at: datetime | None = None
) -> tuple[list[SignatureReport], list[Finding]]:
    """Validate every signature of a PDF, offline, at `at` (tz-aware; naive
    means UTC), else settings.validation_time, else now. Returns one report
    per filled signature field (signing order; unreadable ones last) and all
    their findings. An unsigned PDF gives ([], [])."""
    coro = validate_signatures_async(data, settings, at=at)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # called from inside an event loop: asyncio.run would refuse, so use a thread
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()

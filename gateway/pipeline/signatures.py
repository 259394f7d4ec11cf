"""PAdES / PDF signature verdicts, offline, with pyHanko.

`validate_signatures` reads every filled signature field of a PDF, validates
each with pyHanko on the trust roots of the home (signature_trust), as a
signature or as a document timestamp (signature_status), and turns the facts
into findings (signature_verdicts, which lists the codes). The raw bytes are
read too (signature_scan): a signature dictionary the PDF's structure does not
lead to is SIG_MASQUEE, so a broken or forged xref or trailer cannot make a
signed PDF pass as unsigned.

Nothing pyHanko or Python raises reaches a partner: each problem is named in
words, in English and French, and the exception goes to this module's log
with its traceback.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from gateway.core.config import Settings
from gateway.core.records import Finding
from gateway.pipeline.signature_scan import (OUTSIDE, RawSignature, byte_range_problem, contents_for, scan_signatures,
                                             unreached)
from gateway.pipeline.signature_status import (LEGACY_SHA1, SIGNATURE, SIGNATURE_SUBFILTERS, TIMESTAMP,
                                               TIMESTAMP_SUBFILTER, has_token, kind_of, status_of, subfilter_of,
                                               token_problem, without_unsigned_attrs)
from gateway.pipeline.signature_trust import (signer_name, trust_reason, trust_roots, validation_context,
                                              validation_moment)
from gateway.pipeline.signature_verdicts import (TS_BROKEN, TS_REQUIRED, Facts, hidden_finding, unreadable_finding,
                                                 unsupported_finding, verdicts)

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
    subfilter: str = ""  # as the dictionary writes it, without the slash
    byte_range: tuple[int, ...] = ()
    later_changes: tuple[str, ...] = ()  # what was added after signing and is allowed (DSS, timestamps...)


# --- facts ------------------------------------------------------------------------------

def _timestamp_problem(emb: Any, st: Any, pre: str | None) -> tuple[str | None, bool]:
    """(problem, untrusted) for a signature's own timestamp token."""
    if pre is not None:
        return pre, False
    tsv = getattr(st, "timestamp_validity", None)
    if tsv is not None and not (tsv.intact and tsv.valid):
        return TS_BROKEN, False
    try:
        required = emb.seed_value_spec is not None and emb.seed_value_spec.timestamp_required
    except Exception:  # noqa: BLE001 - an unreadable seed value requires nothing we can name
        required = False
    if required and tsv is None:
        return TS_REQUIRED, False
    return None, tsv is not None and not tsv.trusted


def _dss_added(reader: Any, revision: int) -> bool:
    try:
        if "/DSS" not in reader.root:
            return False
        if "/DSS" not in reader.get_historical_root(revision):
            return True
        ref = reader.root.raw_get("/DSS")
        return hasattr(ref, "reference") and reader.xrefs.get_last_change(ref.reference) > revision
    except Exception:  # noqa: BLE001 - it only feeds what `later_changes` lists
        return False


def _facts(emb: Any, kind: str, st: Any, moment: datetime | None, reader: Any, pre_token: str | None) -> Facts:
    from pyhanko.sign.diff_analysis import DiffResult

    diff = getattr(st, "diff_result", None)
    ts_problem, ts_untrusted = _timestamp_problem(emb, st, pre_token) if kind == SIGNATURE else (None, False)
    return Facts(
        field_name=emb.field_name, kind=kind, intact=bool(st.intact), valid=bool(st.valid),
        trusted=bool(st.trusted), revoked=bool(getattr(st, "revoked", False)), coverage=st.coverage,
        level=st.modification_level, docmdp_ok=getattr(st, "docmdp_ok", None),
        trust_reason=trust_reason(st, moment), signer=signer_name(getattr(st, "signing_cert", None)),
        subfilter=subfilter_of(emb.sig_object), ts_problem=ts_problem, ts_untrusted=ts_untrusted,
        changed_fields=frozenset(diff.changed_form_fields) if isinstance(diff, DiffResult) else frozenset(),
        dss_added=_dss_added(reader, emb.signed_revision))


# --- exceptions -> words --------------------------------------------------------------

def _reason(exc: BaseException, kind: str) -> tuple[str, str, str]:
    """(code, English, French) naming what went wrong; the exception itself goes to the log."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from pyhanko.pdf_utils.misc import PdfReadError
    from pyhanko.sign.validation.errors import SignatureValidationError

    text = str(exc)
    if isinstance(exc, RecursionError):
        return ("SIG_ILLISIBLE", "its objects are nested too deeply to be read",
                "ses objets sont imbriqués trop profondément pour être lus")
    if isinstance(exc, KeyError) or "Reference(" in text:
        return ("SIG_ILLISIBLE", "it refers to a PDF object that is missing (damaged cross-reference table)",
                "elle renvoie à un objet PDF absent (table de références croisées abîmée)")
    if isinstance(exc, PdfReadError):
        if "ByteRange" in text:
            return "SIG_ILLISIBLE", "its /ByteRange entry is missing", "son entrée /ByteRange manque"
        if "Contents" in text:
            return ("SIG_ILLISIBLE", "its signature value (/Contents) is missing or not a string",
                    "sa valeur de signature (/Contents) manque ou n'est pas une chaîne")
        return ("SIG_ILLISIBLE", "the PDF objects it is made of cannot be read (damaged PDF structure)",
                "les objets PDF qui la composent sont illisibles (structure du PDF abîmée)")
    if isinstance(exc, SignatureValidationError):
        if kind == TIMESTAMP:
            return ("SIG_HORODATAGE", "its token is not a valid RFC 3161 timestamp token",
                    "son jeton n'est pas un jeton d'horodatage RFC 3161 valide")
        return ("SIG_ILLISIBLE", "its CMS structure breaks the signature format (for example a detached "
                "signature that also encapsulates content, or a missing content type)",
                "sa structure CMS enfreint le format de signature (par exemple une signature détachée qui "
                "encapsule aussi le contenu, ou un type de contenu absent)")
    # pyHanko says "not implemented" (a RuntimeError) for features and algorithms it does not verify
    if isinstance(exc, (RuntimeError, UnsupportedAlgorithm)):
        return ("SIG_ILLISIBLE", "it uses an algorithm the gateway cannot verify",
                "elle utilise un algorithme que la passerelle ne sait pas vérifier")
    if isinstance(exc, (ValueError, TypeError)):
        return ("SIG_ILLISIBLE", "its signature value (/Contents) is not a readable CMS signature",
                "sa valeur de signature (/Contents) n'est pas une signature CMS lisible")
    return ("SIG_ILLISIBLE", "its signature data cannot be processed",
            "ses données de signature ne peuvent pas être traitées")


def _unreadable(field: str, kind: str, exc: BaseException | None, *, en: str = "", fr: str = "",
                code: str = "SIG_ILLISIBLE", br: tuple[int, ...] = (), subfilter: str = "",
                finding: Finding | None = None) -> SignatureReport:
    if exc is not None:
        log.warning("signature %r could not be validated", field, exc_info=exc)
        code, en, fr = _reason(exc, kind)
    f = finding or unreadable_finding(field, en, fr, code=code)
    return SignatureReport(field, None, None, False, False, False, "", "", None, "UNREADABLE", (f,), kind=kind,
                           subfilter=subfilter, byte_range=br)


# --- pyHanko --------------------------------------------------------------------------------

def _open(data: bytes) -> Any:
    """pyHanko's reader; an encrypted PDF is opened with the empty user password
    (signature values are never encrypted), a PermissionError if that fails."""
    from pyhanko.pdf_utils.crypt import AuthStatus
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(data), strict=False)
    if reader.encrypted and reader.decrypt("").status == AuthStatus.FAILED:
        raise PermissionError("encrypted with a user password")
    return reader


def _ints(value: Any) -> tuple[int, ...]:
    try:
        value = value.get_object() if hasattr(value, "get_object") else value  # in an encrypted PDF: a proxy
        return tuple(int(x) for x in value)
    except Exception:  # noqa: BLE001 - not an array of integers: byte_range_problem says so
        return ()


def _signed_end(br: tuple[int, ...]) -> int | None:
    return br[-2] + br[-1] if len(br) >= 4 and len(br) % 2 == 0 else None


def _dict_kind(sig_obj: Any) -> str:
    return TIMESTAMP if sig_obj.get("/Type") == "/DocTimeStamp" or subfilter_of(sig_obj) == TIMESTAMP_SUBFILTER \
        else SIGNATURE


def _raw_kind(raw: RawSignature) -> str:
    return TIMESTAMP if raw.sig_type == "DocTimeStamp" or raw.subfilter == TIMESTAMP_SUBFILTER[1:] else SIGNATURE


async def _judge(reader: Any, fq_name: str, sig_obj: Any, sig_field: Any, data: bytes, raw: list[RawSignature],
                 roots: tuple, moment: datetime | None) -> tuple[Any, Any, Facts] | SignatureReport:
    """One filled field: (embedded signature, status or None, facts), or an unreadable report."""
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

    sig_obj = sig_obj.get_object()
    if not hasattr(sig_obj, "raw_get"):  # not a dictionary: the object /V points to is missing or something else
        return _unreadable(fq_name, SIGNATURE, None, en="its value is not a signature dictionary (the object it "
                           "points to is missing or of another kind: damaged cross-reference table)",
                           fr="sa valeur n'est pas un dictionnaire de signature (l'objet visé manque ou est d'une "
                           "autre nature : table de références croisées abîmée)")
    br, sub = _ints(sig_obj.get("/ByteRange", ())), subfilter_of(sig_obj)
    kind = _dict_kind(sig_obj)
    if kind == SIGNATURE and sub not in SIGNATURE_SUBFILTERS + (LEGACY_SHA1,):
        return _unreadable(fq_name, kind, None, finding=unsupported_finding(fq_name, sub), br=br,
                           subfilter=sub.lstrip("/"))
    try:
        emb = EmbeddedPdfSignature(reader, sig_field, fq_name)
        kind = kind_of(emb)
    except (Exception, RecursionError) as exc:
        return _unreadable(fq_name, kind, exc, br=br, subfilter=sub.lstrip("/"))
    problem = byte_range_problem(br, len(data), contents_for(raw, br))
    if problem == OUTSIDE:  # pyHanko would read past the end of the file, or seek before its start
        return emb, None, Facts(fq_name, kind, False, False, False, False, None, None, None, ("", ""), None,
                                subfilter=sub, range_problem=OUTSIDE)
    pre_token = None
    if kind == SIGNATURE and has_token(emb.signer_info):
        pre_token = token_problem(emb.signer_info)
        if pre_token is not None:
            emb.signer_info = without_unsigned_attrs(emb.signer_info)
    vc = validation_context(roots, moment)
    try:
        st = await status_of(emb, kind, vc)
        facts = _facts(emb, kind, st, moment, reader, pre_token)
    except (Exception, RecursionError) as exc:
        return _unreadable(fq_name, kind, exc, br=br, subfilter=sub.lstrip("/"))
    finally:
        await vc.aclose()
    return emb, st, replace(facts, range_problem=problem)


def _report(emb: Any, st: Any, f: Facts, found: list[Finding], later: tuple[str, ...]) -> SignatureReport:
    br = _ints(emb.byte_range)
    tsv = getattr(st, "timestamp_validity", None)
    when = (tsv.timestamp if tsv is not None else None) or getattr(st, "signer_reported_dt", None) \
        or getattr(st, "timestamp", None)
    return SignatureReport(
        field_name=f.field_name, signer=f.signer, signing_time=when.isoformat() if when else None,
        intact=f.intact, valid=f.valid, trusted=f.trusted, coverage=getattr(f.coverage, "name", ""),
        modification_level=getattr(f.level, "name", ""), docmdp_ok=f.docmdp_ok,
        summary=st.summary() if st is not None else "BYTE_RANGE_OUTSIDE_FILE", findings=tuple(found), kind=f.kind,
        signed_revision=emb.signed_revision, signed_end=_signed_end(br) if f.coverage_ok else None,
        subfilter=f.subfilter.lstrip("/"), byte_range=br, later_changes=later)


def _hidden(raw: list[RawSignature], reports: list[SignatureReport]) -> list[SignatureReport]:
    out = []
    for r in unreached(raw, [rep.byte_range for rep in reports]):
        out.append(_unreadable(f"(hidden, byte {r.offset})", _raw_kind(r), None, finding=hidden_finding(r),
                               br=r.byte_range, subfilter=r.subfilter))
    return out


def _unopenable(data: bytes, raw: list[RawSignature], exc: BaseException) -> list[SignatureReport]:
    log.warning("PDF could not be opened for its signatures", exc_info=exc)
    if isinstance(exc, PermissionError):
        en = "the PDF is encrypted with a password, so its signatures cannot be examined"
        fr = "le PDF est chiffré avec un mot de passe : ses signatures ne peuvent pas être examinées"
    else:
        en = ("the PDF's structure (cross-reference table, trailer or form) is broken, so the signature cannot be "
              "reached and validated")
        fr = ("la structure du PDF (table de références croisées, trailer ou formulaire) est cassée : la signature "
              "ne peut être ni atteinte ni validée")
    code = "SIG_ILLISIBLE" if isinstance(exc, PermissionError) else "SIG_MASQUEE"
    if not raw:
        return [_unreadable("?", SIGNATURE, None, en=en, fr=fr, code=code)]
    return [_unreadable(f"(byte {r.offset})", _raw_kind(r), None, en=en, fr=fr, code=code, br=r.byte_range,
                        subfilter=r.subfilter) for r in raw]


async def validate_signatures_async(
    data: bytes, settings: Settings, *, at: datetime | None = None
) -> tuple[list[SignatureReport], list[Finding]]:
    """As validate_signatures, for callers inside an event loop."""
    from pyhanko.sign.fields import enumerate_sig_fields

    raw = scan_signatures(data)
    try:
        reader = _open(data)
        filled = list(enumerate_sig_fields(reader, filled_status=True))
    except (Exception, RecursionError) as exc:
        if not raw and b"/ByteRange" not in data:
            return [], []  # nothing that looks like a signature: the PDF stage reports the file itself
        reports = _unopenable(data, raw, exc)
        return reports, [x for r in reports for x in r.findings]
    roots = trust_roots(settings)
    moment = validation_moment(settings, at)
    judged: list[tuple[Any, Any, Facts]] = []
    unreadable: list[SignatureReport] = []
    for fq_name, sig_obj, sig_field in filled:
        try:
            out = await _judge(reader, fq_name, sig_obj, sig_field, data, raw, roots, moment)
        except (Exception, RecursionError) as exc:  # reading the field itself
            out = _unreadable(fq_name, SIGNATURE, exc)
        (unreadable.append(out) if isinstance(out, SignatureReport) else judged.append(out))
    judged.sort(key=lambda j: j[0].signed_revision)
    found = verdicts([f for _e, _s, f in judged], settings)
    reports = [_report(emb, st, f, fs, later) for (emb, st, f), (fs, later) in zip(judged, found)]
    reports.extend(unreadable)
    reports.extend(_hidden(raw, reports))
    return reports, [x for r in reports for x in r.findings]


def validate_signatures(
    data: bytes, settings: Settings, *, at: datetime | None = None
) -> tuple[list[SignatureReport], list[Finding]]:
    """Validate every signature of a PDF, offline, at `at` (tz-aware; naive
    means UTC), else settings.validation_time, else now. Returns one report
    per filled signature field (signing order; unreadable ones, then hidden
    ones, last) and all their findings. An unsigned PDF gives ([], [])."""
    coro = validate_signatures_async(data, settings, at=at)
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if not in_loop:
        return asyncio.run(coro)
    # called from inside an event loop: asyncio.run would refuse, so use a thread
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()

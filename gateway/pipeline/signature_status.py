"""pyHanko's status for each kind of PDF signature.

- An ordinary signature (adbe.pkcs7.detached, ETSI.CAdES.detached,
  PBAD.PAdES): pyHanko's signature validation.
- A document timestamp (RFC 3161: /Type /DocTimeStamp, /SubFilter
  /ETSI.RFC3161, or a CMS that holds a TSTInfo): pyHanko's timestamp
  validation, with its own verdict. A timestamp dictionary written without
  /Type /DocTimeStamp goes through the same steps pyHanko takes, minus the
  type check that made it "unsupported".
- A legacy adbe.pkcs7.sha1 signature: the CMS signs, as encapsulated content,
  the SHA-1 digest of the byte range. pyHanko's CMS validation checks the
  signature over that content; the content must then equal the SHA-1 digest
  of this file's byte range.

The signature timestamp token (an unsigned attribute of the CMS) is checked
before pyHanko sees it: a token declared but empty, or not an RFC 3161 token,
would make the whole validation fail, so it is taken out and reported on its
own, and the signature is still judged.
"""
from __future__ import annotations

from typing import Any

from asn1crypto import cms, core

SIGNATURE = "signature"
TIMESTAMP = "timestamp"
LEGACY_SHA1 = "/adbe.pkcs7.sha1"
SIGNATURE_SUBFILTERS = ("/adbe.pkcs7.detached", "/ETSI.CAdES.detached", "/PBAD.PAdES")
TIMESTAMP_SUBFILTER = "/ETSI.RFC3161"

TOKEN_EMPTY = "empty"  # the attribute is there, with no token in it
TOKEN_UNREADABLE = "unreadable"  # something that is no RFC 3161 timestamp token
_TOKEN_ATTR = "signature_time_stamp_token"


def subfilter_of(sig_obj: Any) -> str:
    sub = sig_obj.get("/SubFilter")
    return str(sub) if sub is not None else ""


def kind_of(emb: Any) -> str:
    """TIMESTAMP when the dictionary or the CMS says so, else SIGNATURE."""
    if emb.sig_object.get("/Type") == "/DocTimeStamp" or subfilter_of(emb.sig_object) == TIMESTAMP_SUBFILTER:
        return TIMESTAMP
    try:
        content_type = emb.signed_data["encap_content_info"]["content_type"].native
    except Exception:  # noqa: BLE001 - an unreadable CMS is judged when validated
        return SIGNATURE
    return TIMESTAMP if content_type == "tst_info" else SIGNATURE


def token_problem(signer_info: cms.SignerInfo) -> str | None:
    """TOKEN_EMPTY, TOKEN_UNREADABLE, or None (no token, or tokens pyHanko can check)."""
    try:
        attrs = signer_info["unsigned_attrs"]
        if attrs is core.VOID:
            return None
        found = [a for a in attrs if a["type"].native == _TOKEN_ATTR]
    except Exception:  # noqa: BLE001 - the unsigned attributes themselves do not parse
        return TOKEN_UNREADABLE
    for attr in found:
        try:
            values = list(attr["values"])
            if not values:
                return TOKEN_EMPTY
            for token in values:
                eci = token["content"]["encap_content_info"]
                if eci["content_type"].native != "tst_info" or eci["content"].parsed is None:
                    return TOKEN_UNREADABLE
                eci["content"].parsed.native  # noqa: B018 - parse all of it now, not inside pyHanko
        except Exception:  # noqa: BLE001 - any failure to read a token is the same fact
            return TOKEN_UNREADABLE
    return None


def has_token(signer_info: cms.SignerInfo) -> bool:
    try:
        attrs = signer_info["unsigned_attrs"]
        return attrs is not core.VOID and any(a["type"].native == _TOKEN_ATTR for a in attrs)
    except Exception:  # noqa: BLE001 - unparseable unsigned attributes: token_problem names them
        return True


def without_unsigned_attrs(signer_info: cms.SignerInfo) -> cms.SignerInfo:
    """The same SignerInfo without its unsigned attributes (the signature
    does not cover them): what pyHanko validates when the token is broken."""
    fields = {name: signer_info[name] for name, *_ in cms.SignerInfo._fields if name != "unsigned_attrs"}
    return cms.SignerInfo(fields)


async def status_of(emb: Any, kind: str, vc: Any) -> Any:
    """pyHanko's PdfSignatureStatus or DocumentTimestampStatus; raises what pyHanko raises."""
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY
    from pyhanko.sign.validation import (
        async_validate_pdf_signature,
        async_validate_pdf_timestamp,
    )

    if kind == TIMESTAMP:
        if emb.sig_object_type == "/DocTimeStamp" and subfilter_of(emb.sig_object) == TIMESTAMP_SUBFILTER:
            return await async_validate_pdf_timestamp(emb, validation_context=vc, diff_policy=DEFAULT_DIFF_POLICY)
        return await _timestamp_status(emb, vc, DEFAULT_DIFF_POLICY)
    if subfilter_of(emb.sig_object) == LEGACY_SHA1:
        return await _legacy_sha1_status(emb, vc, DEFAULT_DIFF_POLICY)
    return await async_validate_pdf_signature(emb, vc, diff_policy=DEFAULT_DIFF_POLICY)


async def _timestamp_status(emb: Any, vc: Any, diff_policy: Any) -> Any:
    # async_validate_pdf_timestamp, without its /Type /DocTimeStamp and /SubFilter checks
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko.sign.validation.status import DocumentTimestampStatus

    emb.compute_integrity_info(diff_policy=diff_policy)
    kwargs = await validate_tst_signed_data(emb.signed_data, vc, emb.compute_digest)
    kwargs.update(coverage=emb.coverage, diff_result=emb.diff_result)
    return DocumentTimestampStatus(**kwargs)


async def _legacy_sha1_status(emb: Any, vc: Any, diff_policy: Any) -> Any:
    # async_validate_pdf_signature's steps, the signed content being encapsulated (a SHA-1 digest)
    from pyhanko.sign.validation import generic_cms
    from pyhanko.sign.validation.pdf_embedded import report_seed_value_validation
    from pyhanko.sign.validation.status import PdfSignatureStatus

    emb.compute_integrity_info(diff_policy=diff_policy)
    kwargs = emb.summarise_integrity_info()
    kwargs.update(await generic_cms.collect_timing_info(emb.signer_info, vc, raw_digest=emb.compute_digest))
    if "signer_reported_dt" not in kwargs and emb.self_reported_timestamp is not None:
        kwargs["signer_reported_dt"] = emb.self_reported_timestamp
    kwargs = await generic_cms.cms_basic_validation(
        emb.signed_data, raw_digest=None, validation_context=vc, status_kwargs=kwargs,
        key_usage_settings=PdfSignatureStatus.default_usage_constraints())
    encapsulated = emb.signed_data["encap_content_info"]["content"]
    signed_digest = encapsulated.native if encapsulated is not core.VOID else None
    if signed_digest != emb.compute_digest("sha1"):
        kwargs["intact"] = False  # the CMS is sound, but it signed other bytes than this file's byte range
    tsv = kwargs.get("timestamp_validity")
    kwargs.update(report_seed_value_validation(
        emb, kwargs["validation_path"], tsv is not None and tsv.valid and tsv.trusted))
    kwargs.update(await generic_cms.collect_signer_attr_status(
        sd_attr_certificates=emb.embedded_attr_certs, signer_cert=emb.signer_cert, validation_context=None,
        sd_signed_attrs=emb.signer_info["signed_attrs"]))
    return PdfSignatureStatus(**kwargs)

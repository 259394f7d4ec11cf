"""The cases where the gateway disagreed with the EU reference validator
(DSS, issue #13), each built in code on the test PKI with a local TSA."""
from __future__ import annotations

import logging
import re

import pytest

from gateway.core.records import Format, Severity
from gateway.pipeline.pdf import inspect_pdf
from gateway.pipeline.signatures import validate_signatures
from pdf_support import (add_validation_data, append_junk, break_last_xref, byte_range_negative, byte_range_past_eof,
                         corrupt_signature_value, empty_timestamp_token, field_requiring_timestamp, fill_form_field,
                         foreign_timestamp_token, garble_timestamp_token, hide_signature, make_form_pdf, make_pdf,
                         make_pki, make_signed_encrypted, remove_timestamp_token, set_byte_range, settings_for, sign,
                         sign_by, sign_legacy_sha1, sign_over_other_bytes, sign_unsupported_subfilter,
                         timestamp_document, timestamp_without_type, trust, update_page_content)

RAW_ERROR = re.compile(r"Traceback|KeyError|ValueError|TypeError|Reference\(|Error:|seek|asn1crypto|\[Ades")


@pytest.fixture(scope="module")
def pki():
    return make_pki()


@pytest.fixture(scope="module")
def base():
    return make_pdf()


@pytest.fixture(scope="module")
def signed(pki, base):
    return sign_by(pki, base)


@pytest.fixture(scope="module")
def stamped(pki, base):
    """Signed with a signature timestamp token from the local TSA."""
    return sign_by(pki, base, timestamped=True)


@pytest.fixture()
def settings(tmp_path, pki):
    s = settings_for(tmp_path)
    trust(s, pki.root)
    return s


def verdict(data, settings):
    reports, findings = validate_signatures(data, settings)
    in_words(findings)
    return reports, [(f.code, f.severity) for f in findings]


def in_words(findings):
    for f in findings:
        for text in (f.message, f.message_fr, f.value or ""):
            assert not RAW_ERROR.search(text), text
        assert f.message != f.message_fr


# --- long-term validation material is allowed --------------------------------------------

def test_validation_data_after_signing_is_allowed_and_listed(pki, signed, settings):
    reports, found = verdict(add_validation_data(pki, signed), settings)
    assert found == []
    assert reports[0].modification_level == "LTA_UPDATES"
    assert reports[0].later_changes == ("validation data (DSS)",)


def test_b_lta_validation_data_and_document_timestamp(pki, stamped, settings):
    lta = timestamp_document(pki, add_validation_data(pki, stamped))
    reports, found = verdict(lta, settings)
    assert found == []
    sig, ts = reports
    assert sig.summary.startswith("INTACT:TRUSTED,TIMESTAMP_TOKEN<INTACT:TRUSTED>")
    assert sig.later_changes[0] == "validation data (DSS)" and sig.later_changes[1].startswith("document timestamp")
    assert (ts.kind, ts.trusted, ts.subfilter) == ("timestamp", True, "ETSI.RFC3161")


def test_visible_document_timestamp_is_allowed(pki, signed, settings):
    # pyHanko calls a visible timestamp form filling; it is still only a timestamp
    reports, found = verdict(timestamp_document(pki, signed, visible=True), settings)
    assert found == [] and reports[0].modification_level == "FORM_FILLING"
    assert reports[0].later_changes == ("document timestamp 'Stamp1'",)


def test_document_timestamp_without_type_is_validated_as_a_timestamp(pki, signed, settings):
    reports, found = verdict(timestamp_without_type(pki, signed), settings)
    assert found == []
    assert [(r.kind, r.intact, r.trusted) for r in reports] == [("signature", True, True), ("timestamp", True, True)]


def test_a_broken_document_timestamp_has_its_own_verdict(pki, base, settings):
    stamp = timestamp_document(pki, sign_by(pki, base))
    i = stamp.rindex(b"/Adobe.PPKLite")  # in the timestamp's dictionary: covered by it, not by Sig1
    forged = stamp[:i] + b"/Adobe.PPKLitf" + stamp[i + 14:]
    reports, found = verdict(forged, settings)
    assert ("SIG_ALTEREE", Severity.ERROR) in found
    assert [r.kind for r in reports if not r.intact] == ["timestamp"]


def test_a_later_signature_by_anyone_is_allowed_for_the_earlier_one(pki, signed, settings):
    reports, found = verdict(sign(signed, pki.other_signer, (pki.other_root,), field="Sig2"), settings)
    assert found == [("SIG_NON_APPROUVEE", Severity.WARNING)]  # Sig2's own verdict
    assert reports[0].later_changes == ("signature 'Sig2'",)


def test_form_filling_after_signing_is_permitted_with_a_warning(pki, settings):
    filled = fill_form_field(sign_by(pki, make_form_pdf()), "Amount", "9.99")
    reports, found = verdict(filled, settings)
    assert found == [("SIG_AJOUT_PERMIS", Severity.WARNING)]
    assert reports[0].later_changes == ("form field 'Amount' filled",)
    # a later signature at least as trusted covers the filling
    assert verdict(sign_by(pki, filled, field="Sig2"), settings)[1] == []


def test_changes_beyond_those_stay_modifications(pki, signed, settings):
    for changed in (update_page_content(signed), timestamp_document(pki, update_page_content(signed))):
        assert verdict(changed, settings)[1] == [("SIG_MODIFIEE", Severity.ERROR)]


# --- formats ------------------------------------------------------------------------------------

def test_legacy_sha1_signature_is_validated(pki, base, settings):
    reports, found = verdict(sign_legacy_sha1(pki, base), settings)
    assert found == [("SIG_SOUS_FILTRE", Severity.WARNING)]
    assert (reports[0].intact, reports[0].valid, reports[0].trusted, reports[0].subfilter) == (
        True, True, True, "adbe.pkcs7.sha1")


def test_legacy_sha1_over_other_bytes_is_broken(pki, base, settings):
    legacy = sign_legacy_sha1(pki, base)
    i = legacy.index(b"(Invoice INV-00") + 15
    assert verdict(legacy[:i] + b"9" + legacy[i + 1:], settings)[1] == [("SIG_ALTEREE", Severity.ERROR)]


def test_unsupported_subfilter_is_named_in_words(pki, base, settings):
    [f] = validate_signatures(sign_unsupported_subfilter(pki, base), settings)[1]
    assert f.code == "SIG_SOUS_FILTRE" and f.severity is Severity.ERROR and f.value == "adbe.x509.rsa_sha1"
    assert "adbe.x509.rsa_sha1" in f.message and "PAdES" in f.message_fr
    in_words([f])


# --- integrity and byte ranges -------------------------------------------------------------------

def test_message_digest_mismatch(pki, base, settings):
    reports, found = verdict(sign_over_other_bytes(pki, base), settings)
    assert found == [("SIG_ALTEREE", Severity.ERROR)]
    assert (reports[0].intact, reports[0].valid) == (False, True)
    assert validate_signatures(sign_over_other_bytes(pki, base), settings)[1][0].value == "message-digest"


@pytest.mark.parametrize("make", [byte_range_past_eof, byte_range_negative])
def test_byte_range_outside_the_file(pki, base, settings, make):
    reports, found = verdict(make(pki, base), settings)
    assert found == [("SIG_PLAGE", Severity.ERROR)]
    assert reports[0].intact is False and reports[0].signed_end is None


def test_byte_range_gap_that_is_not_its_signature_value(signed, settings):
    reports, found = verdict(set_byte_range(signed, 0, 10, 20, 30), settings)
    assert found[0] == ("SIG_PLAGE", Severity.ERROR)
    assert reports[0].coverage == "UNCLEAR"


def test_bytes_appended_outside_the_signed_range_are_not_read(signed, settings):
    reports, found = verdict(append_junk(signed), settings)
    assert found == [] and reports[0].coverage == "ENTIRE_REVISION"
    assert reports[0].later_changes == ("bytes after the signed revision that make no revision (not read)",)


# --- signature timestamp tokens -------------------------------------------------------------------

def test_timestamped_signature_is_fine(stamped, settings):
    reports, found = verdict(stamped, settings)
    assert found == [] and "TIMESTAMP_TOKEN<INTACT:TRUSTED>" in reports[0].summary


@pytest.mark.parametrize("tamper,value", [
    (empty_timestamp_token, "empty"),
    (garble_timestamp_token, "unreadable"),
])
def test_declared_but_missing_or_unreadable_token(stamped, settings, tamper, value):
    reports, findings = validate_signatures(tamper(stamped), settings)
    in_words(findings)
    assert [(f.code, f.value) for f in findings] == [("SIG_HORODATAGE", value)]
    assert reports[0].intact and reports[0].valid and reports[0].trusted  # the signature itself still judged


def test_token_for_other_data(pki, stamped, settings):
    assert verdict(foreign_timestamp_token(pki, stamped), settings)[1] == [("SIG_HORODATAGE", Severity.ERROR)]


def test_removing_a_token_is_caught_where_the_field_requires_one(pki, base, stamped, settings):
    assert verdict(remove_timestamp_token(stamped), settings)[1] == []  # a plain B-B signature remains
    required = sign_by(pki, field_requiring_timestamp(base), timestamped=True)
    assert verdict(required, settings)[1] == []
    findings = validate_signatures(remove_timestamp_token(required), settings)[1]
    assert [(f.code, f.value) for f in findings] == [("SIG_HORODATAGE", "required")]


# --- hidden signatures, broken structure, encryption -----------------------------------------------

def test_signature_hidden_by_a_startxref_to_the_unsigned_revision(signed, base, settings):
    hidden = hide_signature(signed, base)
    reports, found = verdict(hidden, settings)
    assert found == [("SIG_MASQUEE", Severity.ERROR)] and reports[0].field_name.startswith("(hidden")
    insp = inspect_pdf(hidden, settings)
    assert insp.format is Format.PDF_SIGNED and "SIG_MASQUEE" in [f.code for f in insp.findings]


def test_signature_behind_a_broken_xref_is_not_an_unsigned_pdf(signed, settings):
    insp = inspect_pdf(break_last_xref(signed), settings)
    assert insp.format is Format.PDF_SIGNED
    assert [f.code for f in insp.findings] == ["SIG_MASQUEE", "IRR_PDF"]
    in_words(insp.findings[:1])


def test_encrypted_signed_pdf_has_its_signature_examined_before_the_refusal(pki, settings):
    insp = inspect_pdf(make_signed_encrypted(pki), settings)
    assert [f.code for f in insp.findings] == ["IRR_PDF_CHIFFRE"]
    [r] = insp.signatures
    assert (r.intact, r.valid, r.trusted) == (True, True, True) and insp.format is Format.PDF_SIGNED
    forged = corrupt_signature_value(make_signed_encrypted(pki))
    assert [f.code for f in inspect_pdf(forged, settings).findings] == ["SIG_ILLISIBLE", "IRR_PDF_CHIFFRE"]


def test_raw_errors_go_to_the_log_not_to_the_partner(signed, settings, caplog):
    with caplog.at_level(logging.WARNING, "gateway.pipeline.signatures"):
        reports, found = verdict(corrupt_signature_value(signed), settings)
    assert found == [("SIG_ILLISIBLE", Severity.ERROR)]
    assert "not a readable CMS signature" in reports[0].findings[0].message
    [rec] = [r for r in caplog.records if r.name == "gateway.pipeline.signatures"]
    assert rec.exc_info is not None and "Sig1" in rec.getMessage()

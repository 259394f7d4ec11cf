"""Signature verdicts on PDFs signed with a test PKI built in code."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import datetime, timedelta, timezone

import pytest

from gateway.pipeline.pdf import inspect_pdf
from gateway.core.records import Format, Severity
from gateway.pipeline.signature_trust import validation_moment
from gateway.pipeline.signatures import validate_signatures
from pdf_support import (add_file_after_signing, cii, corrupt_signature_value, flip_signed_byte, make_facturx,
                         make_pdf, make_pki, settings_for, sign, sign_by, swap_embedded_file, timestamp_document,
                         trust, update_info, update_page_content)


@pytest.fixture(scope="module")
def pki():
    return make_pki()


@pytest.fixture(scope="module")
def signed_pdf(pki):
    return sign_by(pki, make_pdf())


@pytest.fixture(scope="module")
def signed_fx(pki):
    return sign_by(pki, make_facturx())


@pytest.fixture()
def settings(tmp_path, pki):
    s = settings_for(tmp_path)
    trust(s, pki.root)
    return s


def verdict(data, settings, **kw):
    reports, findings = validate_signatures(data, settings, **kw)
    return reports, [(f.code, f.severity) for f in findings]


def test_intact_trusted_signature_is_ok(signed_pdf, settings):
    reports, found = verdict(signed_pdf, settings)
    assert found == []
    [r] = reports
    assert (r.field_name, r.signer, r.intact, r.valid, r.trusted) == ("Sig1", "Alice Fournisseur", True, True, True)
    assert (r.coverage, r.modification_level, r.docmdp_ok, r.kind) == ("ENTIRE_FILE", "NONE", True, "signature")
    assert r.summary == "INTACT:TRUSTED,UNTOUCHED"
    assert abs(datetime.fromisoformat(r.signing_time) - datetime.now(timezone.utc)) < timedelta(hours=1)
    assert r.signed_end == len(signed_pdf)


def test_inspect_reports_a_signed_pdf(signed_pdf, settings):
    insp = inspect_pdf(signed_pdf, settings)
    assert insp.format is Format.PDF_SIGNED and insp.findings == () and len(insp.signatures) == 1


def test_one_flipped_byte_breaks_the_signature(signed_pdf, settings):
    reports, found = verdict(flip_signed_byte(signed_pdf), settings)
    assert found == [("SIG_ALTEREE", Severity.ERROR)] and reports[0].intact is False


def test_page_content_added_after_signing_is_a_modification(signed_pdf, settings):
    reports, found = verdict(update_page_content(signed_pdf), settings)
    assert found == [("SIG_MODIFIEE", Severity.ERROR)]
    assert (reports[0].coverage, reports[0].modification_level) == ("ENTIRE_REVISION", "OTHER")


def test_harmless_info_update_after_signing_is_accepted(signed_pdf, settings):
    reports, found = verdict(update_info(signed_pdf), settings)
    assert found == []
    assert (reports[0].coverage, reports[0].modification_level) == ("ENTIRE_REVISION", "LTA_UPDATES")


def test_nobody_is_trusted_by_default(signed_pdf, tmp_path):
    reports, found = verdict(signed_pdf, settings_for(tmp_path))
    assert found == [("SIG_NON_APPROUVEE", Severity.WARNING)] and reports[0].trusted is False


def test_untrusted_signer_warns_by_default_and_rejects_on_request(pki, settings):
    data = sign(make_pdf(), pki.other_signer, (pki.other_root,))
    reports, found = verdict(data, settings)
    assert found == [("SIG_NON_APPROUVEE", Severity.WARNING)]
    assert reports[0].signer == "Mallory" and reports[0].intact
    strict = dataclasses.replace(settings, untrusted_signature="reject")
    assert verdict(data, strict)[1] == [("SIG_NON_APPROUVEE", Severity.ERROR)]


def test_validation_time_before_or_after_certificate_validity_untrusts(signed_pdf, settings):
    now = datetime.now(timezone.utc)
    assert verdict(signed_pdf, settings, at=now)[1] == []
    before = verdict(signed_pdf, settings, at=now - timedelta(days=30))
    after = verdict(signed_pdf, settings, at=now + timedelta(days=800))
    assert before[1] == after[1] == [("SIG_NON_APPROUVEE", Severity.WARNING)]
    assert "not valid" in after[0][0].findings[0].message
    naive_past = (now - timedelta(days=30)).replace(tzinfo=None)  # naive means UTC
    assert verdict(signed_pdf, settings, at=naive_past)[1] == [("SIG_NON_APPROUVEE", Severity.WARNING)]


def test_validation_time_from_settings(signed_pdf, settings):
    later = (datetime.now(timezone.utc) + timedelta(days=800)).isoformat()
    s = dataclasses.replace(settings, validation_time=later)
    assert verdict(signed_pdf, s)[1] == [("SIG_NON_APPROUVEE", Severity.WARNING)]


def test_a_bad_validation_time_is_read_once_and_means_now(signed_pdf, settings, caplog):
    s = dataclasses.replace(settings, validation_time="next tuesday (bad-value-1)")
    with caplog.at_level(logging.WARNING, "gateway.pipeline.signatures"):
        assert validation_moment(s) is None
        for _ in range(3):  # a validation time per signed PDF
            assert verdict(signed_pdf, s)[1] == []
    warned = [r for r in caplog.records if "validation_time" in r.getMessage()]
    assert len(warned) == 1 and "bad-value-1" in warned[0].getMessage()


def test_trust_folder_changes_are_picked_up(pki, signed_pdf, tmp_path):
    s = settings_for(tmp_path)
    assert verdict(signed_pdf, s)[1] == [("SIG_NON_APPROUVEE", Severity.WARNING)]
    trust(s, pki.root)
    assert verdict(signed_pdf, s)[1] == []


def test_extra_trust_dirs_and_bad_files_there(pki, signed_pdf, tmp_path):
    extra = tmp_path / "cas"
    extra.mkdir()
    (extra / "root.crt").write_bytes(pki.root.pem)
    (extra / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    s = settings_for(tmp_path / "home", signatures={"trust_dirs": [str(extra)]})
    assert verdict(signed_pdf, s)[1] == []


def test_unreadable_signature(signed_pdf, settings):
    reports, found = verdict(corrupt_signature_value(signed_pdf), settings)
    assert found == [("SIG_ILLISIBLE", Severity.ERROR)] and reports[0].summary == "UNREADABLE"
    assert inspect_pdf(corrupt_signature_value(signed_pdf), settings).format is Format.PDF_SIGNED


def test_unsigned_pdf_has_no_signatures(settings):
    assert validate_signatures(make_pdf(), settings) == ([], [])
    assert validate_signatures(b"not a pdf", settings) == ([], [])


def test_a_second_signature_is_an_allowed_addition_whoever_signs_it(pki, signed_pdf, settings):
    twice = sign_by(pki, signed_pdf, field="Sig2")
    reports, found = verdict(twice, settings)
    assert found == [] and [r.modification_level for r in reports] == ["FORM_FILLING", "NONE"]
    assert reports[0].later_changes == ("signature 'Sig2'",)
    # issue #13: as for DSS, a later signature does not spoil the earlier one; it is judged on its own
    by_stranger = sign(signed_pdf, pki.other_signer, (pki.other_root,), field="Sig2")
    assert verdict(by_stranger, settings)[1] == [("SIG_NON_APPROUVEE", Severity.WARNING)]


def test_document_timestamp_after_signing_is_a_harmless_update(pki, signed_pdf, settings):
    reports, found = verdict(timestamp_document(pki, signed_pdf), settings)
    assert found == []
    assert [(r.kind, r.modification_level) for r in reports] == [("signature", "LTA_UPDATES"), ("timestamp", "NONE")]
    assert reports[1].signer == "Test TSA" and reports[1].trusted


def test_a_timestamp_does_not_launder_a_modification(pki, signed_pdf, settings):
    stamped = timestamp_document(pki, update_page_content(signed_pdf))
    assert verdict(stamped, settings)[1] == [("SIG_MODIFIEE", Severity.ERROR)]


def test_a_timestamp_alone_does_not_make_a_signed_pdf(pki, settings):
    insp = inspect_pdf(timestamp_document(pki, make_pdf()), settings)
    assert insp.format is Format.PDF and [s.kind for s in insp.signatures] == ["timestamp"]


def test_works_from_inside_an_event_loop(signed_pdf, settings):
    async def caller():
        return validate_signatures(signed_pdf, settings)
    reports, findings = asyncio.run(caller())
    assert findings == [] and reports[0].trusted


# --- signed Factur-X ------------------------------------------------------------

def test_signed_facturx_stays_facturx_and_lists_its_signature(signed_fx, settings):
    insp = inspect_pdf(signed_fx, settings)
    assert insp.format is Format.FACTURX and insp.profile == "EN 16931"
    assert insp.findings == () and [s.field_name for s in insp.signatures] == ["Sig1"]


def test_swapped_xml_after_signing_is_caught_and_the_signed_xml_is_used(signed_fx, settings):
    original = inspect_pdf(signed_fx, settings).invoice_xml.data
    forged = swap_embedded_file(signed_fx, "factur-x.xml", cii(total="1.00"))
    insp = inspect_pdf(forged, settings)
    assert insp.invoice_xml.data == original and b"1.00" not in insp.invoice_xml.data
    mods = [f for f in insp.findings if f.code == "SIG_MODIFIEE"]
    assert any(f.value == "factur-x.xml" for f in mods)
    assert all(f.severity is Severity.ERROR for f in mods)


def test_harmless_update_keeps_the_facturx_clean(signed_fx, settings):
    insp = inspect_pdf(update_info(signed_fx), settings)
    assert insp.format is Format.FACTURX and insp.findings == ()


def test_xml_added_after_signing_is_not_taken(signed_pdf, settings):
    insp = inspect_pdf(add_file_after_signing(signed_pdf, "factur-x.xml", cii()), settings)
    assert insp.format is Format.PDF_SIGNED and insp.invoice_xml is None
    assert any(f.code == "SIG_MODIFIEE" and f.value == "factur-x.xml" for f in insp.findings)

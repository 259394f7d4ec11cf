"""Signature dictionaries read from the raw bytes, and byte-range checks (pure)."""
from __future__ import annotations

import pytest

from gateway.core.records import Format
from gateway.pipeline.pdf import inspect_pdf
from gateway.pipeline.signature_scan import GAP, OUTSIDE, byte_range_problem, scan_signatures, unreached
from pdf_support import make_pdf, make_pdf_with_files, make_pki, settings_for, sign_by, timestamp_document


@pytest.fixture(scope="module")
def pki():
    return make_pki()


def test_a_signed_pdf_shows_its_signature_and_timestamp_dictionaries(pki):
    data = timestamp_document(pki, sign_by(pki, make_pdf()))
    sig, ts = scan_signatures(data)
    assert (sig.sig_type, sig.subfilter, ts.sig_type, ts.subfilter) == (
        "Sig", "adbe.pkcs7.detached", "DocTimeStamp", "ETSI.RFC3161")
    for raw in (sig, ts):
        _zero, len1, start2, _len2 = raw.byte_range
        assert raw.contents == (len1, start2) and data[len1:len1 + 1] == b"<" and data[start2 - 1] == ord(">")
        assert byte_range_problem(raw.byte_range, len(data), raw.contents) is None
    assert unreached([sig, ts], [sig.byte_range]) == [ts]


def test_unsigned_pdf_has_none():
    assert scan_signatures(make_pdf()) == []


def test_a_signed_pdf_embedded_in_another_is_not_its_signature(pki, tmp_path):
    signed = sign_by(pki, make_pdf())
    outer = make_pdf_with_files({"signed-order.pdf": signed})
    assert scan_signatures(outer) == []
    insp = inspect_pdf(outer, settings_for(tmp_path))
    assert insp.format is Format.PDF and insp.signatures == () and insp.findings == ()


@pytest.mark.parametrize("byte_range,problem", [
    ((0, 10, 30, 70), None),
    ((0, 10, 30, 71), OUTSIDE),  # past the end
    ((0, 10, 30, -5), OUTSIDE),
    ((0, 10, 30), OUTSIDE),  # not pairs
    ((), OUTSIDE),
    ((0, 40, 30, 70), OUTSIDE),  # overlapping
    ((0, 100), GAP),  # one range
    ((5, 5, 30, 70), GAP),  # not from the start
    ((0, 10, 20, 30), GAP),  # the gap is not the signature value
])
def test_byte_range_problems(byte_range, problem):
    assert byte_range_problem(byte_range, 100, (10, 30)) == problem

"""Format detection by content, and safe lots."""
from __future__ import annotations

import pytest

from gateway.pipeline import detect
from gateway.pipeline import lots
from gateway.pipeline.evaluate import evaluate_file
from gateway.core.records import Format, FlowState
from invoice_support import cii_invoice, targz_lot, ubl_creditnote, ubl_invoice, zip_lot


def test_detection_ignores_the_file_name(home):
    assert detect.detect(ubl_invoice()) is Format.UBL_INVOICE
    assert detect.detect(ubl_creditnote()) is Format.UBL_CREDITNOTE
    assert detect.detect(cii_invoice()) is Format.CII
    ev = evaluate_file(cii_invoice(), "invoice.pdf", home)  # the name lies
    assert ev.format is Format.CII
    assert detect.detect(zip_lot({"a.xml": ubl_invoice()})) is Format.LOT
    assert detect.detect(targz_lot({"a.xml": ubl_invoice()})) is Format.LOT
    assert detect.detect(b"%PDF-1.7\n...") is Format.PDF
    assert detect.detect(b"PK\x03\x04 not really a zip") is Format.UNKNOWN
    assert detect.detect(b"hello") is Format.UNKNOWN


def test_empty_and_oversized_files_are_refused(home):
    ev = evaluate_file(b"", "empty.xml", home)
    assert ev.state is FlowState.IN_REJETE and ev.file_findings[0].code == "IRR_VIDE_F"
    from dataclasses import replace

    small = replace(home, max_file_bytes=100)
    ev = evaluate_file(None, "big.xml", small, size=101)
    assert ev.file_findings[0].code == "IRR_TAILLE_F" and ev.file_findings[0].value == "101"


def test_lot_is_integrated_partially_piece_by_piece(home):
    bad = ubl_invoice().replace(b"<cbc:IssueDate>", b"<cbc:IssueDate>X")
    ev = evaluate_file(zip_lot({"ok1.xml": ubl_invoice(), "bad.xml": bad, "ok2.xml": cii_invoice()}), "lot.zip", home)
    assert ev.format is Format.LOT
    assert ev.state is FlowState.IN_INTEGRE_PARTIEL
    by_name = {v.name: v for v in ev.verdicts}
    assert by_name["ok1.xml"].valid and by_name["ok2.xml"].valid
    (err, *_) = by_name["bad.xml"].errors
    assert err.code == "IRR_SYNTAX" and err.location.line and "IssueDate" in (err.location.xpath or "")


def test_tar_gz_lot(home):
    ev = evaluate_file(targz_lot({"a.xml": ubl_invoice(), "b.xml": cii_invoice()}), "lot.tar.gz", home)
    assert ev.state is FlowState.IN_INTEGRE and [v.index for v in ev.verdicts] == [1, 2]


@pytest.mark.parametrize("name", ["../evil.xml", "/etc/evil.xml", "a/../../evil.xml", "C:/evil.xml"])
def test_lot_with_escaping_paths_is_refused(home, name):
    for data in (zip_lot({name: ubl_invoice()}), targz_lot({name: ubl_invoice()})):
        ev = evaluate_file(data, "lot", home)
        assert ev.state is FlowState.IN_REJETE
        assert ev.file_findings[0].code == "IRR_LOT"


def test_lot_with_a_link_is_refused(home):
    ev = evaluate_file(targz_lot({"a.xml": ubl_invoice()}, links={"b.xml": "/etc/passwd"}), "lot.tgz", home)
    assert ev.state is FlowState.IN_REJETE and ev.file_findings[0].code == "IRR_LOT"
    assert "link" in ev.file_findings[0].message.lower()


def test_zip_bomb_is_refused_without_unpacking(home):
    from dataclasses import replace

    bomb = zip_lot({"zeros.xml": b"\0" * (20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    small = replace(home, max_lot_unpacked_bytes=1024 * 1024)
    ev = evaluate_file(bomb, "bomb.zip", small)
    assert ev.state is FlowState.IN_REJETE and ev.file_findings[0].code == "IRR_LOT"


def test_zip_lying_about_sizes_is_cut_at_the_cap():
    limits = lots.LotLimits(max_members=10, max_unpacked_bytes=10_000, max_member_bytes=10_000)
    data = bytearray(zip_lot({"a.xml": b"x" * 50_000}))
    # forge the declared uncompressed size (central directory) down to 10 bytes
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    with pytest.raises(lots.LotError):
        list(lots.unpack(bytes(data), limits))


def test_too_many_members(home):
    from dataclasses import replace

    ev = evaluate_file(zip_lot({f"{i}.xml": ubl_invoice() for i in range(4)}), "lot.zip", replace(home, max_lot_members=3))
    assert ev.file_findings[0].code == "IRR_LOT" and ev.file_findings[0].value == "4"


def test_nested_lot_member_is_rejected_alone(home):
    ev = evaluate_file(zip_lot({"inner.zip": zip_lot({"a.xml": ubl_invoice()}), "b.xml": ubl_invoice()}), "lot.zip", home)
    assert ev.state is FlowState.IN_INTEGRE_PARTIEL
    assert [e.code for e in ev.verdicts[0].errors] == ["IRR_TYPE_F"]

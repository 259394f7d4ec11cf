"""`gateway report rejections`: counts per partner and code from a home filled by
the real pipeline (`gateway run --once`), filters, the three formats, exit codes."""
from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from conftest import drop, gateway_cli, report_for
from gateway.core import config
from gateway.store import db
from gateway.ops.rejections import parse_since, rejections
from gateway.ops.rejections_render import render_csv, render_html
from gateway.store.repository import Flow, Store
from invoice_support import ubl_invoice

HOSTILE_MEMBER = "<script>alert(1)</script>.xml"  # a lot member may carry a '/', a file name cannot
HOSTILE_LOT = "<img src=x onerror=alert(1)>&'\".zip"
BROKEN = ubl_invoice(number="BAD-1").replace(b"<cbc:ID>", b"<cbc:Bad>", 1)  # IRR_SYNTAX


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _move(settings, partner: str, file_name: str, back: timedelta) -> datetime:
    """Put a flow in the past (as if received `back` ago)."""
    at = db.utcnow() - back
    with Store(settings).session() as s:
        n = s.execute(update(Flow).where(Flow.partner == partner, Flow.file_name == file_name)
                      .values(received_at=at)).rowcount
        s.commit()
    assert n == 1
    return at


def fill_home(root: Path):
    """Two partners' rejections, made by the real CLI:
    ACME   today:     IRR_SYNTAX x2 (a file, a lot member), IRR_VIDE_F x1, DOUBLON x1; two valid flows
    OTHER  3 days ago: IRR_SYNTAX x1;  40 days ago: IRR_VIDE_F x1 (outside the default 30 days)."""
    config.init_home(root)
    (root / "gateway.toml").write_text(
        "[intake]\nstability_seconds = 0.2\nworkers = 0\nopen_partners = true\n[sftp]\nenabled = false\n", encoding="utf-8")
    s = config.load(root)
    drop(s, "ACME", "bad1.xml", BROKEN)
    drop(s, "ACME", HOSTILE_LOT, _zip({"ok-1.xml": ubl_invoice(number="L-1"), HOSTILE_MEMBER: BROKEN}))
    drop(s, "ACME", "empty.xml", b"")
    drop(s, "ACME", "ok.xml", ubl_invoice(number="OK-1"))
    drop(s, "OTHER", "x.xml", b"<not-closed")
    drop(s, "OTHER", "y.xml", b"")
    drop(s, "OTHER", "z.xml", ubl_invoice(number="Z-1"))
    r = gateway_cli("run", "--once", home=s)
    assert r.returncode == 0, r.stdout + r.stderr
    drop(s, "ACME", "again.xml", ubl_invoice(number="OK-1"))  # the same bytes again: DOUBLON
    r = gateway_cli("run", "--once", home=s)
    assert r.returncode == 0, r.stdout + r.stderr
    assert report_for(s, "ACME", HOSTILE_LOT)["state"] == "IN_INTEGRE_PARTIEL"
    _move(s, "OTHER", "x.xml", timedelta(days=3))
    _move(s, "OTHER", "y.xml", timedelta(days=40))
    return s


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    s = fill_home(tmp_path_factory.mktemp("rejections") / "home")
    yield s
    db.dispose_all()


def _counts(report) -> dict[tuple[str, str], int]:
    return {(g.partner, g.code): g.count for g in report.groups}


def _cli(settings, *args: str):
    return gateway_cli("report", "rejections", *args, home=settings)


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_counts_per_partner_and_code_from_pieces_and_whole_flows(filled):
    rep = rejections(filled, parse_since(None))
    assert _counts(rep) == {("ACME", "IRR_SYNTAX"): 2, ("ACME", "IRR_VIDE_F"): 1, ("ACME", "DOUBLON"): 1,
                            ("OTHER", "IRR_SYNTAX"): 1}
    assert rep.total == 5 and rep.flows == 5
    # grouped by partner, largest count first
    assert [(g.partner, g.code) for g in rep.groups][:1] == [("ACME", "IRR_SYNTAX")]
    acme_syntax = next(g for g in rep.groups if (g.partner, g.code) == ("ACME", "IRR_SYNTAX"))
    member = next(e for e in acme_syntax.examples if e.piece_name == HOSTILE_MEMBER)
    assert member.file_name == HOSTILE_LOT and member.piece == 2 and member.flow_id.startswith("F")
    assert "well-formed" in member.message and HOSTILE_MEMBER in member.location
    # a flow refused whole: the code from its validation event, the details from its report
    dup = next(g for g in rep.groups if g.code == "DOUBLON").examples[0]
    assert dup.piece is None and dup.file_name == "again.xml"
    assert dup.message.startswith("Same content as flow") and dup.value  # the sha256, from the report


def test_file_level_details_fall_back_when_the_report_was_fetched(filled):
    rep = rejections(filled, parse_since(None), "ACME")
    dup = next(g for g in rep.groups if g.code == "DOUBLON").examples[0]
    path = filled.reports_dir("ACME") / f"{dup.flow_id}.json"
    aside = path.with_name("aside.json.bak")
    path.rename(aside)  # the partner fetched and deleted it
    try:
        again = next(g for g in rejections(filled, parse_since(None), "ACME").groups if g.code == "DOUBLON")
    finally:
        aside.rename(path)
    assert again.count == 1 and again.examples[0].value is None
    assert re.match(r"Same content as flow F\d{14}-[0-9a-f]{8}", again.examples[0].message)


def test_partner_and_since_filters(filled):
    r = _cli(filled, "--partner", "OTHER", "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert [(x["partner"], x["code"], x["count"]) for x in _csv_rows(r.stdout)] == [("OTHER", "IRR_SYNTAX", "1")]
    two_days_back = (datetime.now(timezone.utc) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    r = _cli(filled, "--since", two_days_back, "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert {x["partner"] for x in _csv_rows(r.stdout)} == {"ACME"}
    day_50_back = (datetime.now(timezone.utc) - timedelta(days=50)).date().isoformat()
    r = _cli(filled, "--since", day_50_back, "--partner", "OTHER", "--format", "csv")
    assert sorted((x["code"], x["count"]) for x in _csv_rows(r.stdout)) == [("IRR_SYNTAX", "1"), ("IRR_VIDE_F", "1")]
    # an offset is honoured: 2 days back at +02:00 is the same instant as in UTC
    assert parse_since("2026-11-20T10:00+02:00") == datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
    assert parse_since("2026-11-20") == datetime(2026, 11, 20, tzinfo=timezone.utc)


def test_csv_parses_with_one_row_per_partner_and_code(filled):
    out = filled.home / "rej.csv"
    r = _cli(filled, "--format", "csv", "--output", str(out))
    assert r.returncode == 0 and r.stdout == "", r.stderr
    rows = _csv_rows(out.read_text(encoding="utf-8"))
    assert len(rows) == 4
    assert {(x["partner"], x["code"]): int(x["count"]) for x in rows} == {
        ("ACME", "IRR_SYNTAX"): 2, ("ACME", "IRR_VIDE_F"): 1, ("ACME", "DOUBLON"): 1, ("OTHER", "IRR_SYNTAX"): 1}
    syntax = next(x for x in rows if (x["partner"], x["code"]) == ("ACME", "IRR_SYNTAX"))
    assert syntax["example_flow_id"].startswith("F") and syntax["example_piece"] in ("1", "2")
    for x in rows:
        first, last = (datetime.fromisoformat(x[k].replace("Z", "+00:00")) for k in ("first", "last"))
        assert first <= last
    vide = next(x for x in rows if x["code"] == "IRR_VIDE_F")
    assert vide["example_file"] == "empty.xml" and vide["example_piece"] == ""


def test_html_page_chart_table_and_escaping(filled):
    r = _cli(filled, "--format", "html")
    assert r.returncode == 0, r.stderr
    page = r.stdout
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # self-contained: nothing fetched from outside, no script at all
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.xml" in page
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;&#x27;&quot;.zip" in page
    # one bar group per day, from the oldest rejection (3 days back) to today
    assert page.count("<svg") == 1
    days = re.findall(r'<g class="day" data-day="(\d{4}-\d{2}-\d{2})" data-total="(\d+)"', page)
    today = datetime.now(timezone.utc).date()
    assert [d for d, _ in days] == [(today - timedelta(days=i)).isoformat() for i in (3, 2, 1, 0)]
    assert [int(n) for _, n in days] == [1, 0, 0, 4]
    bars = re.findall(r'<rect class="bar" data-code="([A-Z_]+)" data-count="(\d+)"', page)
    assert sorted(bars) == sorted([("IRR_SYNTAX", "1"), ("IRR_SYNTAX", "2"), ("IRR_VIDE_F", "1"), ("DOUBLON", "1")])
    legend = re.search(r'<ul class="legend">(.*?)</ul>', page).group(1)
    assert [c for c in re.findall(r"<code>([A-Z_]+)</code>", legend)] == ["IRR_SYNTAX", "DOUBLON", "IRR_VIDE_F"]
    table = re.search(r'<table class="groups">(.*?)</table>', page, re.S).group(1)
    assert table.count("<tr>") == 5  # header + 4 groups
    assert '<table class="latest">' in page


def test_table_is_the_default_and_neutralises_terminal_tricks(filled):
    r = _cli(filled)
    assert r.returncode == 0, r.stderr
    assert "Rejections since" in r.stdout and "5 rejection(s) in 5 flow(s)" in r.stdout
    for partner, code in (("ACME", "IRR_SYNTAX"), ("ACME", "DOUBLON"), ("OTHER", "IRR_SYNTAX")):
        assert re.search(rf"{partner}\s*│\s*{code}\s*│", r.stdout), r.stdout
    assert "\x1b" not in r.stdout  # not a terminal: no colour codes
    from gateway.ops.rejections_render import printable

    assert printable("a\x1b[31mb\u202ec") == "a\\u001b[31mb\\u202ec"


def test_bad_since_or_format_is_a_usage_error(filled):
    r = _cli(filled, "--since", "last tuesday")
    assert r.returncode == 2 and "invalid --since 'last tuesday'" in r.stderr and r.stdout == ""
    r = _cli(filled, "--since", "2026-13-45")
    assert r.returncode == 2 and "invalid --since" in r.stderr
    r = _cli(filled, "--format", "pdf")
    assert r.returncode == 2 and "--format" in r.stderr


def test_empty_store_says_so_and_keeps_outputs_valid(home):
    r = gateway_cli("report", "rejections", "--since", "2026-01-01", home=home)
    assert r.returncode == 0 and "no rejections since 2026-01-01 00:00:00 UTC" in r.stdout
    r = gateway_cli("report", "rejections", "--format", "csv", home=home)
    assert r.returncode == 0 and r.stdout.splitlines() == [",".join(
        ("partner", "code", "count", "first", "last", "example_flow_id", "example_file", "example_piece",
         "example_message", "example_location", "example_value"))]
    assert "no rejections since" in r.stderr
    out = home.home / "r.html"
    r = gateway_cli("report", "rejections", "--format", "html", "--partner", "NOBODY", "-o", str(out), home=home)
    page = out.read_text(encoding="utf-8")
    assert r.returncode == 0 and "no rejections since" in page and "for partner NOBODY" in page
    assert "<svg" not in page and page.rstrip().endswith("</html>")


def test_renderers_agree_with_the_query(filled):
    """CSV and HTML are views of one record: same groups, same counts."""
    rep = rejections(filled, parse_since(None))
    rows = _csv_rows(render_csv(rep))
    assert [(x["partner"], x["code"], int(x["count"])) for x in rows] == [(g.partner, g.code, g.count)
                                                                          for g in rep.groups]
    page = render_html(rep)
    assert sum(int(n) for n in re.findall(r'data-total="(\d+)"', page)) == rep.total


def test_csv_cells_that_look_like_formulas_are_quoted():
    from gateway.ops.rejections_render import _cell

    assert _cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert _cell("@SUM(A1)") == "'@SUM(A1)" and _cell("-2+3") == "'-2+3"
    assert _cell("FA-1.xml") == "FA-1.xml"


def test_a_wrong_home_is_an_error_not_a_new_home(tmp_path):
    """Reports, pages and operators read a home: a mistyped --home creates nothing."""
    wrong = tmp_path / "typo"
    for args in (("report", "rejections"), ("web", "--port", "1"), ("operator", "list"),
                 ("operator", "remove", "alice"), ("pieces",)):
        r = gateway_cli(*args, "--home", str(wrong))
        assert r.returncode == 2 and "not a gateway home" in r.stderr, (args, r.stdout + r.stderr)
    assert not wrong.exists()

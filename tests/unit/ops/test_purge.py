"""`gateway purge`: archived files and sent return files past the retention go,
never one a piece still needs (not final, or its billing file still open)."""
from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from conftest import PgDatabase
from gateway.core import config
from gateway.ops.cli.main import app
from gateway.ops.housekeeping import purge, retention_days
from gateway.store import db
from gateway.store.replays import plan_replays
from gateway.store.repository import FlowResult, NewFlow, Store
from gateway.store.rows import PieceRow

DAY = timedelta(days=1)


def archived(settings, fid: str, age: timedelta, *pieces: tuple[str, str | None]) -> str:
    """A flow received `age` ago, its file in the archive, its pieces (status, link_id)."""
    path = settings.archive / "2026" / "10" / "01" / f"{fid}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"<Invoice/>")
    st = Store(settings)
    st.record_received([NewFlow(fid, "acme", "folder", f"{fid}.xml", fid, 10, db.utcnow() - age, str(path))])
    rows = tuple(PieceRow(id=f"{fid}-{i:03d}", flow_id=fid, index=i, name="x", format="ubl-invoice",
                          valid=status != "IRRECEVABLE", status=status, link_id=link)
                 for i, (status, link) in enumerate(pieces, 1))
    st.complete([FlowResult(fid, "IN_INTEGRE", "ubl-invoice", rows, ())])
    return str(path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def aged(request, home):
    pg = None
    if request.param == "postgres":
        pg = PgDatabase()
        with open(home.config_file, "a", encoding="utf-8") as fh:
            fh.write(f'[store]\ndatabase_url = "{pg.url}"\n')
        home = config.load(home.home)
    old = 40 * DAY
    files = {
        "paid": archived(home, "F-PAID", old, ("MISE_EN_PAIEMENT", None)),
        "refused": archived(home, "F-REFUSED", old, ("IRRECEVABLE", None)),
        "open": archived(home, "F-OPEN", old, ("MISE_A_DISPOSITION", None)),
        # an A4 ASSOCIEE (final) whose A15, received later, is still with the MOE
        "a4": archived(home, "F-A4", old, ("ASSOCIEE", None)),
        "a15": archived(home, "F-A15", old, ("MISE_A_DISPOSITION_MOE", "F-A4-001")),
        "recent": archived(home, "F-RECENT", 2 * DAY, ("MISE_EN_PAIEMENT", None)),
    }
    yield home, files
    if pg is not None:
        pg.close()


def test_only_what_no_piece_needs_goes(aged):
    home, files = aged
    dry = purge(home, 30, dry_run=True)
    assert sorted(str(p.path) for p in dry.purged) == sorted([files["paid"], files["refused"]])
    assert all(os.path.exists(f) for f in files.values())  # a dry run deletes nothing
    kept = {k.flows[0]: k.reason for k in dry.kept}
    assert "MISE_A_DISPOSITION, not a final status" in kept["F-OPEN"]
    assert "billing file" in kept["F-A4"] and "not a final status" in kept["F-A15"]
    assert "F-RECENT" not in kept  # younger than the retention: not even considered
    done = purge(home, 30)
    assert {str(p.path) for p in done.purged} == {files["paid"], files["refused"]} and not done.failed
    assert not os.path.exists(files["paid"]) and os.path.exists(files["open"]) and os.path.exists(files["a4"])
    st = Store(home)
    assert st.flow("F-PAID").archive_path == "" and st.history("F-PAID")[-1].outcome == "archive_purged"
    [choice] = plan_replays(st, ["F-PAID"])
    assert not choice.replay and "purged" in choice.reason
    assert purge(home, 30).purged == ()  # nothing more


def test_sent_return_files_go_once_old_and_unchanged(home):
    reports = home.outbox / "acme" / "reports"
    reports.mkdir(parents=True)
    sent, changed, unsent = (reports / n for n in ("a.json", "b.json", "c.json"))
    old = (db.utcnow() - 40 * DAY).timestamp()
    for f in (sent, changed, unsent):
        f.write_text("{}")
        os.utime(f, (old, old))
    state = {"uploaded": {f"reports/{f.name}": [f.stat().st_size, f.stat().st_mtime_ns] for f in (sent, changed)}}
    (home.work / "pollers").mkdir(parents=True)
    (home.work / "pollers" / "acme.json").write_text(json.dumps(state))
    changed.write_text("{ }")  # rewritten after it was sent: the partner does not have this one
    os.utime(changed, (old, old))
    rep = purge(home, 30)
    assert [p.path for p in rep.purged] == [sent]
    assert not sent.exists() and changed.exists() and unsent.exists()


def test_the_command_needs_an_age_and_takes_the_retention_from_gateway_toml(aged):
    home, files = aged
    r = CliRunner().invoke(app, ["purge", "--home", str(home.home)])
    assert r.exit_code == 2 and "retention_days" in r.output
    with open(home.config_file, "a", encoding="utf-8") as fh:
        fh.write("[housekeeping]\nretention_days = 30\n")
    r = CliRunner().invoke(app, ["purge", "--dry-run", "--json", "--home", str(home.home)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["dry_run"] and sorted(p["path"] for p in out["purged"]) == sorted([files["paid"], files["refused"]])
    r = CliRunner().invoke(app, ["purge", "-v", "--home", str(home.home)])
    assert r.exit_code == 0 and "2 file(s)" in r.stdout and "kept" in r.stdout
    assert not os.path.exists(files["paid"])


def test_a_bad_retention_is_refused(home):
    with open(home.config_file, "a", encoding="utf-8") as fh:
        fh.write("[housekeeping]\nretention_days = \"forever\"\n")
    with pytest.raises(ValueError, match="retention_days"):
        retention_days(config.load(home.home, create=False))

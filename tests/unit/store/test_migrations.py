"""The store's schema through Alembic revisions, on SQLite and on PostgreSQL
(when GATEWAY_TEST_PG_URL names a server): the revisions make exactly the
tables of store/tables.py, a database made before Alembic is brought up and
stamped, a second start applies nothing, and processes starting together
migrate once."""
from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from conftest import REPO, PgDatabase
from gateway.store import db, migrations
from gateway.store.migrations.__main__ import next_revision_id
from gateway.store.repository import NewFlow, Store, new_flow_id


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request, home):
    """A home whose database does not exist yet (SQLite) or is empty (PostgreSQL)."""
    if request.param == "sqlite":
        yield home
        return
    pg = PgDatabase()
    yield replace(home, database_url=pg.url)
    pg.close()


def _differences(eng) -> list:
    """What Alembic's autogenerate finds between the database and the models of tables.py."""
    with eng.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)


def _at(eng) -> str | None:
    with eng.connect() as conn:
        return migrations.current(conn)


def _applied(caplog) -> list[str]:
    """The revisions applied, from the log lines ("database schema: revision 0001 applied (baseline)")."""
    return [r.getMessage().split()[3] for r in caplog.records
            if r.name == "gateway.db" and " applied " in r.getMessage()]


def _revisions() -> list[str]:
    """Every revision, oldest first."""
    return [s.revision for s in reversed(list(ScriptDirectory(str(migrations.SCRIPTS)).walk_revisions()))]


def test_the_revisions_make_exactly_the_tables_of_the_models(settings, caplog):
    """A change to tables.py without its revision fails here."""
    with caplog.at_level("INFO", logger="gateway.db"):
        eng = db.engine(settings)
    assert _at(eng) == migrations.head()
    assert _differences(eng) == []
    assert _applied(caplog) == _revisions() and _revisions()[0] == migrations.BASELINE
    # the one index compare_metadata does not look into: unique among the originals only
    [original] = [i for i in inspect(eng).get_indexes("flow") if i["name"] == "ux_flow_original"]
    where = str(original["dialect_options"].get(f"{eng.dialect.name}_where"))
    assert original["unique"] and "duplicate_of IS NULL" in where.replace("(", "").replace(")", "")


def test_a_database_made_before_alembic_is_upgraded_and_stamped(settings, caplog):
    """An earlier version's database: the baseline's tables, no alembic_version, a column missing."""
    old = create_engine(settings.db_url)
    migrations.baseline_schema().create_all(old)
    now = db.utcnow()
    with old.begin() as c:
        c.execute(text("ALTER TABLE piece DROP COLUMN seq"))
        c.execute(text("INSERT INTO flow (id, partner, channel, file_name, sha256, size, received_at, archive_path, "
                       "state, queue, attempts, pieces_total, pieces_valid) VALUES ('F1', 'ACME', 'folder', 'a.xml', "
                       "'ab', 1, :at, '/a', 'IN_RECU', 'queued', 0, 0, 0)"), {"at": now})
        c.execute(text('INSERT INTO piece (id, flow_id, "index", name, format, valid, status, error_codes, '
                       "created_at, partner, cadre, piece_type) VALUES ('F1-001', 'F1', 1, 'a.xml', 'ubl-invoice', "
                       ":v, 'MISE_A_DISPOSITION', '', :at, 'ACME', 'A1', 'facture')"), {"v": True, "at": now})
    old.dispose()

    with caplog.at_level("INFO", logger="gateway.db"):
        store = Store(settings)
    assert "added piece.seq" in caplog.text
    assert f"stamped at revision {migrations.BASELINE}" in caplog.text
    assert _at(store.engine) == migrations.head()
    assert _differences(store.engine) == []
    assert (store.piece("F1-001").seq, store.flow("F1").partner) == (0, "ACME")


def test_a_second_start_applies_nothing(settings, caplog):
    db.engine(settings)
    db.dispose_all()
    with caplog.at_level("INFO", logger="gateway.db"):
        eng = db.engine(settings)
        assert db.migrate(eng) == []
    assert _applied(caplog) == [] and "stamped" not in caplog.text
    assert _at(eng) == migrations.head()


def test_a_database_of_a_newer_gateway_is_refused(settings):
    with db.engine(settings).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    db.dispose_all()
    with pytest.raises(db.SchemaError, match="revision 9999, which this version of the gateway does not know"):
        db.engine(settings)


def test_every_revision_undoes_and_redoes(settings):
    """Down to an empty database and up again: each revision's downgrade is the inverse of its upgrade."""
    eng = db.engine(settings)
    Store(settings).record_received([NewFlow(new_flow_id(), "ACME", "folder", "a.xml", "ab", 1, db.utcnow(), "/a")])
    with eng.begin() as conn:
        migrations.downgrade(conn, "base")
    assert set(inspect(eng).get_table_names()) == {"alembic_version"} and _at(eng) is None
    with eng.begin() as conn:
        applied = migrations.upgrade(conn)
    assert applied == _revisions()
    assert _differences(eng) == [] and Store(settings).queued() == 0


def test_status_files_waiting_in_the_outbox_survive_the_move_to_one_row_per_file(settings):
    """Revision 0002: a pending notice's two bodies become two files, in order; an empty
    CPPStatut body (none could be made for that party) becomes no file; and back."""
    eng = db.engine(settings)
    with eng.begin() as conn:
        migrations.downgrade(conn, "0001")
    at = db.utcnow()
    rows = [dict(piece_id="P1", party="ACME", name="P1.001", xml=b"<a/>", json_body=b"{}", created_at=at, written_at=None),
            dict(piece_id="P1", party="X", name="P1.001", xml=b"", json_body=b"{1}", created_at=at, written_at=None),
            dict(piece_id="P2", party="ACME", name="P2.001", xml=b"<b/>", json_body=b"{2}", created_at=at, written_at=at)]
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO notice (piece_id, party, name, xml, json_body, created_at, written_at) "
                          "VALUES (:piece_id, :party, :name, :xml, :json_body, :created_at, :written_at)"), rows)
        assert migrations.upgrade(conn, "0002") == ["0002"]
    with eng.connect() as conn:
        files = [(r.party, r.name + r.suffix, bytes(r.body), r.written_at is None) for r in conn.execute(
            text("SELECT party, name, suffix, body, written_at FROM notice ORDER BY id"))]
    assert files == [("ACME", "P1.001.xml", b"<a/>", True), ("ACME", "P1.001.json", b"{}", True),
                     ("X", "P1.001.json", b"{1}", True),
                     ("ACME", "P2.001.xml", b"<b/>", False), ("ACME", "P2.001.json", b"{2}", False)]
    with eng.begin() as conn:
        migrations.upgrade(conn)  # the later revisions leave them be
    assert _differences(eng) == []
    with eng.begin() as conn:
        migrations.downgrade(conn, "0001")
    with eng.connect() as conn:
        pairs = [(r.party, r.name, r.xml and bytes(r.xml), bytes(r.json_body)) for r in conn.execute(
            text("SELECT party, name, xml, json_body FROM notice ORDER BY id"))]
    assert pairs == [("ACME", "P1.001", b"<a/>", b"{}"), ("X", "P1.001", None, b"{1}"),
                     ("ACME", "P2.001", b"<b/>", b"{2}")]


def _start(settings, barrier, out) -> None:
    """One process starting the gateway: opens the store, reports what it applied."""
    seen: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: seen.append(record.getMessage())
    log = logging.getLogger("gateway.db")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    barrier.wait(timeout=60)
    try:
        db.engine(settings)
        out.put(("ok", seen))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        out.put(("failed", repr(exc)))


def test_processes_starting_together_migrate_once(settings):
    ctx = multiprocessing.get_context("spawn")  # fresh processes, as workers and other hosts are
    n = 2
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_start, args=(settings, barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [status for status, _ in results] == ["ok"] * n, results
    applied = [line for _, seen in results for line in seen if " applied " in line]
    assert [line.split()[3] for line in applied] == _revisions(), results  # each once, by one of them
    assert _at(db.engine(settings)) == migrations.head()


def test_a_change_to_the_tables_gets_its_revision_from_the_command_line(tmp_path):
    """`python -m gateway.store.migrations revision --autogenerate -m ...` writes the next numbered
    revision with what tables.py added; applied, the database matches the models again. Run on a
    copy of the revisions, with a column added to the models in that process only."""
    script = textwrap.dedent(f"""
        import shutil
        from pathlib import Path
        from sqlalchemy import Column, Integer, create_engine
        from sqlmodel import SQLModel
        from gateway.store import migrations
        from gateway.store.migrations.__main__ import main
        import gateway.store.tables

        copy = Path({str(tmp_path / "migrations")!r})
        shutil.copytree(migrations.SCRIPTS, copy, ignore=shutil.ignore_patterns("__pycache__"))
        migrations.SCRIPTS = copy
        SQLModel.metadata.tables["event"].append_column(Column("probe_only", Integer, nullable=True))
        main(["revision", "--autogenerate", "-m", "event: probe only"])
        eng = create_engine({f"sqlite:///{tmp_path / 'check.db'}"!r})
        with eng.begin() as conn:
            print("APPLIED", migrations.upgrade(conn))
        main(["--url", str(eng.url), "check"])
    """)
    new = next_revision_id()
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stdout + r.stderr
    source = (tmp_path / "migrations" / "versions" / f"{new}_event_probe_only.py").read_text(encoding="utf-8")
    assert f"revision = {new!r}" in source and f"down_revision = {migrations.head()!r}" in source
    assert "add_column(sa.Column('probe_only', sa.Integer(), nullable=True))" in source
    assert "sqlmodel" not in source
    assert f"APPLIED {[*_revisions(), new]}" in r.stdout
    assert "No new upgrade operations detected" in r.stdout + r.stderr


def test_flows_left_unfinished_by_an_earlier_version_keep_their_tries(settings):
    """Revision 0006: attempts now cap a flow's tries ([intake] max_attempts);
    a flow an earlier version tried five times and left queued keeps one."""
    eng = db.engine(settings)
    store = Store(settings)
    store.record_received([NewFlow("F1", "ACME", "folder", "a.xml", "ab", 1, db.utcnow(), "/a"),
                           NewFlow("F2", "ACME", "folder", "b.xml", "cd", 1, db.utcnow(), "/b")])
    with eng.begin() as conn:
        migrations.downgrade(conn, "0005")
        conn.execute(text("UPDATE flow SET attempts = 5 WHERE id = 'F1'"))
        conn.execute(text("UPDATE flow SET attempts = 2, queue = 'done' WHERE id = 'F2'"))
        assert migrations.upgrade(conn) == ["0006"]
    assert (store.flow("F1").attempts, store.flow("F2").attempts) == (1, 2)  # a done flow's count is history

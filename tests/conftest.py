"""Shared test fixtures: a fresh gateway home per test, and ways to drive the
real CLI as a user would (a subprocess running `gateway`)."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.core import config
from gateway.store import db

REPO = Path(__file__).resolve().parents[1]
AIFE_XSD = REPO / "schemas" / "aife"  # the platform's XSDs, shipped (schemas/MANIFEST.toml)
# fast stability checks, no SFTP, work in-process
TEST_TOML = "[intake]\nstability_seconds = 0.2\nworkers = 0\nopen_partners = true\n[sftp]\nenabled = false\n"
# where the PostgreSQL tests run; whether a missing chromium fails the browser tests (CI), and which: set nothing
KEPT_ENV = ("GATEWAY_TEST_PG_URL", "GATEWAY_REQUIRE_BROWSER", "GATEWAY_CHROMIUM")


@pytest.fixture(autouse=True, scope="session")
def _without_the_callers_gateway_settings():
    """config.load applies every GATEWAY_* variable, and the CLI runs inherit them:
    a developer's GATEWAY_STORE_DATABASE_URL would send every test to that database.
    Tests see none; a test may still set its own (monkeypatch.setenv, env=)."""
    mp = pytest.MonkeyPatch()
    for key in [k for k in os.environ if k.startswith("GATEWAY_") and k not in KEPT_ENV]:
        mp.delenv(key)
    yield
    mp.undo()


def home_with(root: Path, toml: str, **overrides) -> config.Settings:
    """A home at `root` whose gateway.toml is exactly `toml`, loaded."""
    config.init_home(root)
    (root / "gateway.toml").write_text(toml, encoding="utf-8")
    return config.load(root, **overrides)


@pytest.fixture()
def home(tmp_path: Path):
    """A gateway home with fast stability checks, no SFTP, work in-process."""
    yield home_with(tmp_path / "home", TEST_TOML)
    db.dispose_all()


@functools.cache
def _schema(path: Path):  # noqa: ANN202 - an lxml XMLSchema
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(path)))


def aife_schema(name: str):  # noqa: ANN201 - an lxml XMLSchema
    """The platform's schema `name` (e.g. CPPStatutPivot_V1_19.xsd) from
    schemas/aife, compiled once; the test is skipped where it is missing."""
    path = AIFE_XSD / name
    if not path.is_file():
        pytest.skip(f"AIFE schema {name} not in schemas/ ({path})")
    return _schema(path)


def drop(settings, partner: str, name: str, data: bytes) -> Path:
    d = settings.inbox / partner
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_bytes(data)
    old = p.stat().st_mtime - 10  # already stable: --once claims it at once
    os.utime(p, (old, old))
    return p


def gateway_cli(*args: str, home=None, timeout: float = 120, env: dict | None = None,
                cwd: Path | None = None, input: str | None = None) -> subprocess.CompletedProcess:  # noqa: A002
    """`gateway ARGS` run as a user would; `input` is written to its stdin."""
    e = dict(os.environ)
    if home is not None:
        e["GATEWAY_HOME"] = str(home if isinstance(home, (str, os.PathLike)) else home.home)  # Path.home is a method
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "gateway.ops.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=str(cwd or REPO), input=input)


def reports(settings, partner: str) -> list[dict]:
    d = settings.reports_dir(partner)
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(d.glob("*.json"))] if d.exists() else []


def report_for(settings, partner: str, file_name: str) -> dict:
    found = [r for r in reports(settings, partner) if r["file"] == file_name]
    assert len(found) == 1, f"expected one report for {file_name}, got {len(found)}"
    return found[0]


def codes_of(report: dict) -> set[str]:
    out = {e["code"] for e in report["errors"]}
    for p in report["pieces"]:
        out |= {e["code"] for e in p["errors"]}
    return out


PG_URL = os.environ.get("GATEWAY_TEST_PG_URL")


class PgDatabase:
    """A throw-away PostgreSQL database on the server CI gives (GATEWAY_TEST_PG_URL),
    dropped on close; never a mock."""

    def __init__(self) -> None:
        import uuid

        from sqlalchemy import create_engine, text

        if not PG_URL:
            pytest.skip("no PostgreSQL: set GATEWAY_TEST_PG_URL (CI does)")
        self.name = f"gw_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_URL.rsplit("/", 1)[0] + f"/{self.name}"

    def close(self) -> None:
        from sqlalchemy import text

        db.dispose_all()
        with self.admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo_home(request, home):
    """`home` with the demo directory (accepted pieces are delivered), its
    store on SQLite, then on a throw-away PostgreSQL database."""
    from dataclasses import replace

    from gateway.rules import directory

    pg = None
    if request.param == "postgres":
        pg = PgDatabase()
        home = replace(home, database_url=pg.url)
    directory.import_files(home, directory.demo_files())
    yield home
    if pg is not None:
        pg.close()


def interrupted(settings, name: str, partner: str = "acme") -> str:
    """A file whose processing stopped `max_attempts` times (as if it killed
    its worker each time), then refused by a `run --once` with ERR_INTERROMPU:
    a flow refused whole, without a piece. Returns its flow id."""
    from gateway.channels.folders import Claimer, scan
    from gateway.runtime.service import Gateway
    from gateway.store.repository import Store

    drop(settings, partner, name, b"<Invoice/>")
    store = Store(settings)
    [fid] = Claimer(settings, store).claim(list(scan(settings)))
    for n in range(settings.max_attempts):
        store.claim(f"gone:{n}:w0")
        store.release([fid], tried=True, holder=f"gone:{n}:w0")
    Gateway(settings, once=True).run()
    return fid

"""Shared test fixtures: a fresh gateway home per test, and ways to drive the
real CLI as a user would (a subprocess running `gateway`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import config, db

REPO = Path(__file__).resolve().parents[1]
AIFE_XSD = REPO.parent / "shared" / "spec" / "aife-xsd"


@pytest.fixture()
def home(tmp_path: Path):
    """A gateway home with fast stability checks, no SFTP, work in-process."""
    root = tmp_path / "home"
    config.init_home(root)
    (root / "gateway.toml").write_text(
        "[intake]\nstability_seconds = 0.2\nworkers = 0\n[sftp]\nenabled = false\n", encoding="utf-8")
    yield config.load(root)
    db.dispose_all()


def drop(settings, partner: str, name: str, data: bytes) -> Path:
    d = settings.inbox / partner
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_bytes(data)
    old = p.stat().st_mtime - 10  # already stable: --once claims it at once
    os.utime(p, (old, old))
    return p


def gateway_cli(*args: str, home=None, timeout: float = 120, env: dict | None = None,
                cwd: Path | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    if home is not None:
        e["GATEWAY_HOME"] = str(home.home if hasattr(home, "home") else home)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=str(cwd or REPO))


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

"""Two hosts sharing one archive and outbox: each finishes its own crashed
work at once, another host's only once it is stale, a live one's never."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gateway.channels.folders import Candidate, Claimer
from gateway.core.files import STALE_TEMP_SECONDS, atomic_write, sweep_temps, temp_name
from gateway.core.hosts import host_slug
from gateway.store import db
from gateway.store.repository import Store
from invoice_support import ubl_invoice


def _manifest(adir: Path, fid: str, host: str, name: str) -> Path:
    """What a host leaves when it dies between its renames and its insert."""
    (adir / f"{fid}.bin").write_bytes(ubl_invoice(number=name))
    m = adir / f"{fid}@{host}.claim"
    m.write_text(json.dumps([{"flow_id": fid, "partner": "ACME", "name": name, "channel": "folder",
                              "received_at": "2026-12-07T10:00:00+00:00"}]))
    return m


def test_a_host_finishes_its_own_claims_and_leaves_a_live_hosts_alone(home):
    a = Claimer(dataclasses.replace(home, host_name="alpha"), Store(home))
    adir = home.archive / "2026" / "12" / "07"
    adir.mkdir(parents=True)
    own = _manifest(adir, "F20261207100000-0000aaaa", "alpha", "own.xml")
    live = _manifest(adir, "F20261207100000-0000bbbb", "beta", "beta-in-flight.xml")
    assert a.recover() == 1
    assert not own.exists() and a.store.flow("F20261207100000-0000aaaa").file_name == "own.xml"
    # beta may be between its renames and its insert right now: its manifest and flow are its own
    assert live.exists() and a.store.flow("F20261207100000-0000bbbb") is None


def test_a_dead_hosts_claim_is_taken_over_once_stale(home):
    a = Claimer(dataclasses.replace(home, host_name="alpha"), Store(home))
    adir = home.archive / "2026" / "12" / "07"
    adir.mkdir(parents=True)
    dead = _manifest(adir, "F20261207100000-0000cccc", "beta", "orphan.xml")
    assert a.recover(now=time.time() + home.stale_claim_seconds - 5) == 0 and dead.exists()
    assert a.recover(now=time.time() + home.stale_claim_seconds + 5) == 1
    assert not dead.exists() and a.store.flow("F20261207100000-0000cccc").partner == "ACME"


def test_the_periodic_pass_finds_todays_stale_manifests_only(home):
    a = Claimer(dataclasses.replace(home, host_name="alpha"), Store(home))
    today = a._archive_dir(db.utcnow())
    old = home.archive / "2020" / "01" / "01"
    old.mkdir(parents=True)
    recent = _manifest(today, "F20261207100000-0000dddd", "beta", "today.xml")
    ancient = _manifest(old, "F20200101100000-0000eeee", "beta", "ancient.xml")
    later = time.time() + home.stale_claim_seconds + 5
    assert a.recover(now=later, recent=True) == 1
    assert not recent.exists() and ancient.exists()  # the whole archive is walked at start only
    assert a.recover(now=later) == 1 and not ancient.exists()


def test_claims_name_their_host(home):
    drop_dir = home.inbox / "ACME"
    drop_dir.mkdir(parents=True)
    f = drop_dir / "x.xml"
    f.write_bytes(ubl_invoice())
    seen: list[str] = []
    real = atomic_write

    def spy(path, data, **kw):  # noqa: ANN001, ANN003
        seen.append(path.name)
        real(path, data, **kw)

    import gateway.channels.folders as folders
    folders.atomic_write = spy
    try:
        st = f.stat()
        Claimer(dataclasses.replace(home, host_name="gamma.example"), Store(home)).claim(
            [Candidate("ACME", f, st.st_size, st.st_mtime_ns)])
    finally:
        folders.atomic_write = real
    assert len(seen) == 1 and seen[0].endswith("@gamma_example.claim")


def test_temporary_names_are_each_processes_own_and_fit_a_file_system():
    name = temp_name("FA-1.json")
    assert name.startswith(".FA-1.json.") and name.endswith(f".{host_slug()}-{os.getpid()}.tmp")
    other = subprocess.run([sys.executable, "-c", "from gateway.core.files import temp_name;print(temp_name('FA-1.json'))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert other != name  # two writers of one file never share a temporary file
    long = temp_name("é" * 127 + ".xml")  # 258 bytes of name
    assert len(long.encode()) <= 255 and long.endswith(".tmp")


def test_sweep_keeps_live_writers_temps_and_removes_crashed_ones(tmp_path):
    out = tmp_path / "outbox" / "ACME" / "reports"
    out.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os;print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    dead_mine = out / f".F1.json.{host_slug()}-{gone}.tmp"
    live_mine = out / temp_name("F2.json")
    fresh_foreign = out / ".F3.json.otherhost-12.tmp"
    stale_foreign = out / ".F4.json.otherhost-13.tmp"
    legacy = out / ".F5.json.tmp"  # the fixed name earlier versions used
    partner_file = out / "F6.json"
    for p in (dead_mine, live_mine, fresh_foreign, stale_foreign, legacy, partner_file):
        p.write_text("x")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale_foreign, (old, old))
    assert sweep_temps([tmp_path / "outbox"]) == 3
    assert sorted(p.name for p in out.iterdir()) == sorted([live_mine.name, fresh_foreign.name, "F6.json"])

"""A full or read-only disk, from the operator's report (issue #14): the
service pauses instead of dying, says so once, and resumes by itself; a batch
that cannot be written is handed back with a growing wait; a --once run that
cannot move stops with a reason; nothing half-written is left for partners."""
from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import threading
import time

import pytest
import typer

from conftest import drop, gateway_cli, home_with, report_for, reports
from disk_support import MB, disk, fill_up, gateway_lines, tmpfs  # noqa: F401 - disk is a fixture
from gateway.core.hosts import host_slug
from gateway.ops import web
from gateway.ops.cli.run import run as run_command
from gateway.runtime.service import Gateway
from gateway.store.repository import Store
from invoice_support import ubl_invoice
from sftp_support import wait_until


class _Service:
    """`gateway run` (not --once) in a thread, stopped as SIGTERM would."""

    def __init__(self, settings):  # noqa: ANN001
        self.gw = Gateway(settings)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.gw.run()
        except BaseException as exc:  # noqa: BLE001 - the test says what killed it
            self.error = exc

    def __enter__(self) -> "_Service":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.gw.stop.set()
        self.gw.wake.set()
        self.thread.join(60)
        assert not self.thread.is_alive()


def _names(folder) -> list[str]:  # noqa: ANN001
    return sorted(os.listdir(folder))


def _temporaries(folder) -> list[str]:  # noqa: ANN001
    return [str(p) for p in folder.rglob("*") if p.name.endswith(".tmp")]


def _drop_three(home) -> list[str]:  # noqa: ANN001
    names = [f"f{i}.xml" for i in range(3)]
    for i, name in enumerate(names):
        drop(home, "ACME", name, ubl_invoice(number=f"DISK-{i}"))
    return names


def test_a_full_disk_at_start_pauses_intake_says_so_once_and_resumes_when_space_returns(home, disk, caplog):
    caplog.set_level(logging.INFO, logger="gateway")
    names = _drop_three(home)
    disk.fill(home.outbox, free_mb=12)
    with _Service(home) as svc:
        time.sleep(2.5)
        assert svc.thread.is_alive() and svc.error is None  # paused, not dead
        assert _names(home.inbox / "ACME") == names  # the files wait in the inbox, untouched
        assert not list(home.archive.rglob("*.claim")) and not list(home.archive.rglob("*.bin"))
        status, body = web.health(home)
        assert status == 503 and body["status"] == "degraded"
        assert body["reason"] == f"paused: disk low on {home.outbox} (12 MB free, floor 200 MB)"
        paused = [r.getMessage() for r in gateway_lines(caplog) if "intake paused" in r.getMessage()]
        assert paused == [f"intake paused: disk low on {home.outbox} (12 MB free, floor 200 MB); "
                          "files stay in the inbox until space returns"]
        disk.heal()
        wait_until(lambda: len(reports(home, "ACME")) == 3, timeout=30, step=0.2)
        assert web.health(home)[0] == 200
    assert svc.error is None
    assert all(report_for(home, "ACME", n)["state"] == "IN_INTEGRE" for n in names)  # one report per flow
    assert len([r for r in gateway_lines(caplog) if "intake resumed" in r.getMessage()]) == 1
    assert not any(r.exc_info for r in gateway_lines(caplog))


def test_a_claim_manifest_that_cannot_be_written_leaves_no_claim_and_the_files_in_the_inbox(home, disk, caplog):
    # the operator's crash: the floor says there is room, the disk says otherwise (ENOSPC)
    caplog.set_level(logging.INFO, logger="gateway")
    names = _drop_three(home)
    disk.fail(home.archive, errno.ENOSPC)
    with _Service(home) as svc:
        time.sleep(3.5)
        assert svc.thread.is_alive() and svc.error is None
        assert _names(home.inbox / "ACME") == names
        assert not [p for p in home.archive.rglob("*") if p.is_file()]  # no .claim, no temporary, no bytes
        failed = [r for r in gateway_lines(caplog) if "claiming failed" in r.getMessage()]
        assert 1 <= len(failed) <= 3 and not any(r.exc_info for r in failed)  # 1 s, 2 s, 4 s: not once a second
        assert "No space left on device" in failed[0].getMessage()
        disk.heal()
        wait_until(lambda: len(reports(home, "ACME")) == 3, timeout=30, step=0.2)
    assert all(report_for(home, "ACME", n)["state"] == "IN_INTEGRE" for n in names)
    assert not list(home.archive.rglob("*.claim"))


def test_an_outbox_turned_read_only_hands_flows_back_with_a_growing_wait(home, disk, caplog):
    caplog.set_level(logging.INFO, logger="gateway")
    names = _drop_three(home)
    disk.fail(home.outbox, errno.EROFS)
    with _Service(home) as svc:
        time.sleep(4.5)
        lines = gateway_lines(caplog)
        handed = [r.getMessage() for r in lines if "handed back" in r.getMessage()]
        # tries at 0, 1, 3 s (then 7 s): a few lines, each saying why, none with a traceback
        assert 2 <= len(handed) <= 4, handed
        assert all("Read-only file system" in m for m in handed) and "next try in 2 s" in handed[1]
        assert not any(r.exc_info for r in lines)
        assert _temporaries(home.outbox) == [] and reports(home, "ACME") == []
        st = Store(home)
        assert st.pending() == 3 and all(f.attempts == 0 for f in st.recent_flows())  # not the flows' fault
        disk.heal()
        wait_until(lambda: len(reports(home, "ACME")) == 3, timeout=30, step=0.2)
    assert svc.error is None
    assert all(report_for(home, "ACME", n)["state"] == "IN_INTEGRE" for n in names)
    assert all(f.attempts == 1 for f in Store(home).recent_flows())
    assert _temporaries(home.outbox) == []


def _run_once(home, capsys) -> tuple[int, str, float]:  # noqa: ANN001
    t0 = time.monotonic()
    with pytest.raises(typer.Exit) as stopped:
        run_command(home=str(home.home), once=True, workers=None, sftp_port=None, verbose=False)
    stopped_lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("stopped:")]
    assert len(stopped_lines) == 1
    return stopped.value.exit_code, stopped_lines[0], time.monotonic() - t0


def test_run_once_on_a_low_disk_stops_within_the_bound_with_the_reason(home, disk, capsys, monkeypatch):
    monkeypatch.setenv("GATEWAY_INTAKE_ONCE_STALL_SECONDS", "2")
    drop(home, "ACME", "a.xml", ubl_invoice(number="ONCE-1"))
    disk.fill(home.outbox, free_mb=12)
    code, line, seconds = _run_once(home, capsys)
    assert code == 3 and seconds < 10
    assert line == f"stopped: no progress for 2 s: disk low on {home.outbox} (12 MB free, floor 200 MB)"
    assert _names(home.inbox / "ACME") == ["a.xml"] and Store(home).pending() == 0


def test_run_once_whose_writes_fail_hands_the_flow_back_and_stops_with_the_reason(home, disk, capsys, monkeypatch):
    monkeypatch.setenv("GATEWAY_INTAKE_ONCE_STALL_SECONDS", "2")
    drop(home, "ACME", "a.xml", ubl_invoice(number="ONCE-2"))
    disk.fail(home.outbox, errno.ENOSPC)
    code, line, seconds = _run_once(home, capsys)
    assert code == 3 and seconds < 10
    assert line.startswith(f"stopped: no progress for 2 s: No space left on device: {home.outbox}/")
    st = Store(home)
    assert st.queued() == 1 and st.recent_flows()[0].attempts == 0 and _temporaries(home.outbox) == []
    disk.heal()
    assert gateway_cli("run", "--once", home=home).returncode == 0
    assert report_for(home, "ACME", "a.xml")["state"] == "IN_INTEGRE"


def test_a_zero_byte_claim_and_a_manifest_temporary_left_by_an_old_crash_are_cleaned_at_start(home):
    adir = home.archive / "2026" / "01" / "01"
    adir.mkdir(parents=True)
    (adir / "F20260101000000-0badc1a1.claim").write_bytes(b"")
    (adir / ".F20260101000000-0badc1a2.claim.tmp").write_bytes(b"[{")  # an earlier version's fixed name
    gone = subprocess.run([sys.executable, "-c", "import os;print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (adir / f".F20260101000000-0badc1a3@{host_slug()}.claim.{host_slug()}-{gone}.tmp").write_bytes(b"[")
    drop(home, "ACME", "a.xml", ubl_invoice(number="OLD-1"))
    summary = Gateway(home, once=True).run()
    assert summary.stalled is None and summary.processed == 1
    assert not [p for p in home.archive.rglob("*") if "claim" in p.name]


TMPFS_TOML = ("[intake]\nopen_partners = true\nstability_seconds = 0.2\nworkers = 1\nmin_free_mb = 0\nonce_stall_seconds = 3\n"
              "[sftp]\nenabled = false\n")


def test_a_real_full_outbox_on_a_small_tmpfs(tmp_path):
    """The same, on a real 2 MB file system mounted on the outbox, with a worker process."""
    s = home_with(tmp_path / "home", TMPFS_TOML)
    with tmpfs(s.outbox):
        filler = fill_up(s.outbox)
        drop(s, "ACME", "a.xml", ubl_invoice(number="TMPFS-1"))
        drop(s, "ACME", "b.xml", ubl_invoice(number="TMPFS-2"))
        t0 = time.monotonic()
        r = gateway_cli("run", "--once", home=s, timeout=90)
        assert r.returncode == 3, r.stdout + r.stderr
        assert time.monotonic() - t0 < 60
        assert "stopped: no progress for 3 s: No space left on device" in r.stderr
        assert "Traceback" not in r.stderr and _temporaries(s.outbox) == []
        st = Store(s)
        assert st.queued() == 2 and all(f.attempts == 0 for f in st.recent_flows())
        # below the floor, intake does not even claim: the file stays in the inbox
        drop(s, "ACME", "c.xml", ubl_invoice(number="TMPFS-3"))
        r = gateway_cli("run", "--once", home=s, env={"GATEWAY_INTAKE_MIN_FREE_MB": "1"}, timeout=90)
        assert r.returncode == 3, r.stdout + r.stderr
        assert f"stopped: no progress for 3 s: disk low on {s.outbox} (0 MB free, floor 1 MB)" in r.stderr
        assert _names(s.inbox / "ACME") == ["c.xml"]
        filler.unlink()
        r = gateway_cli("run", "--once", home=s, timeout=90)
        assert r.returncode == 0, r.stdout + r.stderr
        assert sorted(x["file"] for x in reports(s, "ACME")) == ["a.xml", "b.xml", "c.xml"]
        assert _temporaries(s.outbox) == []
        assert os.statvfs(s.outbox).f_blocks * os.statvfs(s.outbox).f_frsize <= 2 * MB

"""A claim takes a partner's file by link then unlink (core/files.take): the
file is owned by exactly one claimer, a crash between the two steps is
finished by recover(), and the inbox watcher never sees a move out of the
inbox (which watchdog holds half a second, and every event behind it)."""
from __future__ import annotations

import ctypes
import errno
import json
import os
import struct
import threading

import pytest

from conftest import drop
from gateway.channels.folders import Claimer, scan
from gateway.core import files
from gateway.core.files import take
from gateway.store.repository import Store
from invoice_support import ubl_invoice


def test_take_moves_the_very_file(tmp_path):
    src, dest = tmp_path / "in.xml", tmp_path / "archive.bin"
    src.write_bytes(b"<x/>")
    ino = src.stat().st_ino
    take(src, dest)
    assert not src.exists() and dest.read_bytes() == b"<x/>"
    assert dest.stat().st_ino == ino and dest.stat().st_nlink == 1


def test_take_of_a_file_already_taken_raises_and_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        take(tmp_path / "gone.xml", tmp_path / "archive.bin")
    assert not (tmp_path / "archive.bin").exists()


def test_take_falls_back_to_rename_where_links_are_refused(tmp_path, monkeypatch):
    src, dest = tmp_path / "in.xml", tmp_path / "archive.bin"
    src.write_bytes(b"<x/>")

    def refused(*_a, **_k):
        raise PermissionError(errno.EPERM, "protected hard links")

    monkeypatch.setattr(files.os, "link", refused)
    take(src, dest)
    assert not src.exists() and dest.read_bytes() == b"<x/>"


IN_MOVED_FROM, IN_DELETE, IN_NONBLOCK = 0x40, 0x200, os.O_NONBLOCK


def _inotify_events(folder, action) -> list[tuple[int, str]]:  # noqa: ANN001
    """(mask, name) of the moves out of and deletions in `folder` while `action` runs: the kernel's own
    events, read without watchdog, which pairs and delays them."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK)
    assert fd >= 0
    try:
        assert libc.inotify_add_watch(fd, os.fsencode(folder), IN_MOVED_FROM | IN_DELETE) >= 0
        action()
        data = os.read(fd, 65536)
    finally:
        os.close(fd)
    out, i = [], 0
    while i < len(data):
        _wd, mask, _cookie, size = struct.unpack_from("iIII", data, i)
        out.append((mask, data[i + 16:i + 16 + size].rstrip(b"\0").decode()))
        i += 16 + size
    return out


def test_a_claim_is_a_delete_in_the_inbox_not_a_move_out_of_it(home):
    path = drop(home, "ACME", "a.xml", ubl_invoice())
    claimed: list[str] = []
    events = _inotify_events(path.parent, lambda: claimed.extend(Claimer(home, Store(home)).claim(list(scan(home)))))
    assert len(claimed) == 1
    assert events == [(IN_DELETE, "a.xml")]  # no IN_MOVED_FROM, which watchdog would hold 0.5 s


def test_two_claimers_at_once_take_each_file_once(home):
    for i in range(60):
        drop(home, "ACME", f"f{i:02d}.xml", ubl_invoice(number=f"R-{i}"))
    cands = list(scan(home))
    got: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def run(k: int) -> None:
        claimer = Claimer(home, Store(home))
        start.wait()
        for c in cands:  # one by one: the two threads meet on every file
            got[k] += claimer.claim([c])

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    st = Store(home)
    flows = [st.flow(fid) for fid in got[0] + got[1]]
    assert sorted(f.file_name for f in flows) == sorted(c.path.name for c in cands)
    # the loser of each race removed its link: every archived file is a flow's
    assert sorted(str(p) for p in home.archive.rglob("*.bin")) == sorted(f.archive_path for f in flows)
    assert not list(scan(home))


def _crash_after_link(home, name: str, fid: str):  # noqa: ANN202
    """What a crash between a claim's link and its unlink leaves."""
    src = drop(home, "ACME", name, ubl_invoice(number=name))
    adir = home.archive / "2026" / "12" / "07"
    adir.mkdir(parents=True, exist_ok=True)
    os.link(src, adir / f"{fid}.bin")
    (adir / f"{fid}@{Claimer(home, Store(home)).host}.claim").write_text(json.dumps([{
        "flow_id": fid, "partner": "ACME", "name": name, "channel": "folder",
        "received_at": "2026-12-07T10:00:00+00:00"}]))
    return src


def test_a_crash_between_link_and_unlink_is_finished_once(home):
    src = _crash_after_link(home, "half.xml", "F20261207100000-0000abcd")
    claimer = Claimer(home, Store(home))
    assert claimer.recover() == 1
    assert not src.exists()  # the inbox name went: it is not claimed a second time
    assert claimer.store.flow("F20261207100000-0000abcd").file_name == "half.xml"
    assert list(scan(home)) == []


def test_recovery_keeps_a_new_file_dropped_under_the_same_name(home):
    src = _crash_after_link(home, "again.xml", "F20261207100000-0000abce")
    src.unlink()
    drop(home, "ACME", "again.xml", ubl_invoice(number="NEW"))  # the partner sent a new one meanwhile
    assert Claimer(home, Store(home)).recover() == 1
    assert src.read_bytes() == ubl_invoice(number="NEW")
    assert [c.path.name for c in scan(home)] == ["again.xml"]

"""A claim takes a partner's file by a rename to a hidden name beside it, a
link into the archive and an unlink (core/files.take): the file is owned by
exactly one claimer, a file sent again under the same name meanwhile is never
lost, a crash between the steps is finished by recover(), and the inbox
watcher never sees a move out of the inbox (which watchdog holds half a
second, and every event behind it)."""
from __future__ import annotations

import ctypes
import errno
import json
import os
import struct
import threading
from pathlib import Path

import pytest

from conftest import drop
from gateway.channels.folders import Claimer, scan
from gateway.core import files
from gateway.core.files import take, taking_name
from gateway.store.repository import Store
from invoice_support import ubl_invoice


def test_take_moves_the_very_file(tmp_path):
    src, dest = tmp_path / "in.xml", tmp_path / "archive.bin"
    src.write_bytes(b"<x/>")
    ino = src.stat().st_ino
    take(src, dest, via=taking_name(src.parent, "F1"))
    assert not src.exists() and dest.read_bytes() == b"<x/>"
    assert dest.stat().st_ino == ino and dest.stat().st_nlink == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive.bin"]


def test_take_of_a_file_already_taken_raises_and_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        take(tmp_path / "gone.xml", tmp_path / "archive.bin", via=tmp_path / ".F1.taking")
    assert not (tmp_path / "archive.bin").exists()


def test_take_falls_back_to_rename_where_links_are_refused(tmp_path, monkeypatch):
    src, dest = tmp_path / "in.xml", tmp_path / "archive.bin"
    src.write_bytes(b"<x/>")

    def refused(*_a, **_k):
        raise PermissionError(errno.EPERM, "protected hard links")

    monkeypatch.setattr(files.os, "link", refused)
    take(src, dest, via=taking_name(src.parent, "F1"))
    assert not src.exists() and dest.read_bytes() == b"<x/>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive.bin"]


def test_a_file_sent_again_under_the_same_name_during_a_claim_is_kept(home, monkeypatch):
    """The partner's client renames a new upload over the name being claimed:
    the claim archives the old bytes, the new file stays for the next claim."""
    old = drop(home, "ACME", "INV.xml", ubl_invoice(number="OLD"))
    real_link = os.link

    def link_while_the_partner_sends_again(src, dst, **kw):  # noqa: ANN001, ANN003, ANN202
        upload = old.with_name("INV.xml.part")
        upload.write_bytes(ubl_invoice(number="NEW"))
        os.rename(upload, old)
        return real_link(src, dst, **kw)

    monkeypatch.setattr(files.os, "link", link_while_the_partner_sends_again)
    [fid] = Claimer(home, Store(home)).claim(list(scan(home)))
    monkeypatch.setattr(files.os, "link", real_link)
    assert b"OLD" in Path(Store(home).flow(fid).archive_path).read_bytes()
    assert b"NEW" in old.read_bytes() and [c.path.name for c in scan(home)] == ["INV.xml"]


IN_MOVED_FROM, IN_MOVED_TO, IN_DELETE, IN_NONBLOCK = 0x40, 0x80, 0x200, os.O_NONBLOCK


def _inotify_events(folder, action) -> list[tuple[int, int, str]]:  # noqa: ANN001
    """(mask, cookie, name) of the moves and deletions in `folder` while `action` runs: the kernel's own
    events, read without watchdog, which pairs and delays them."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK)
    assert fd >= 0
    try:
        assert libc.inotify_add_watch(fd, os.fsencode(folder), IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE) >= 0
        action()
        data = os.read(fd, 65536)
    finally:
        os.close(fd)
    out, i = [], 0
    while i < len(data):
        _wd, mask, cookie, size = struct.unpack_from("iIII", data, i)
        out.append((mask, cookie, data[i + 16:i + 16 + size].rstrip(b"\0").decode()))
        i += 16 + size
    return out


def test_a_claim_is_a_delete_in_the_inbox_not_a_move_out_of_it(home):
    path = drop(home, "ACME", "a.xml", ubl_invoice())
    claimed: list[str] = []
    events = _inotify_events(path.parent, lambda: claimed.extend(Claimer(home, Store(home)).claim(list(scan(home)))))
    assert len(claimed) == 1
    hidden = taking_name(path.parent, claimed[0]).name
    # a move within the folder, its two halves side by side, then a deletion: no IN_MOVED_FROM left alone,
    # which watchdog would hold 0.5 s
    [(m1, c1, n1), (m2, c2, n2), (m3, _, n3)] = events
    assert (m1, n1, m2, n2, c1 == c2) == (IN_MOVED_FROM, "a.xml", IN_MOVED_TO, hidden, True)
    assert (m3, n3) == (IN_DELETE, hidden)


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


def _crashed_claim(home, name: str, fid: str, *, linked: bool):  # noqa: ANN001, ANN202
    """What a crash in the middle of take() leaves: the file under its hidden
    name, and (`linked`) in the archive too; the claim's manifest."""
    src = drop(home, "ACME", name, ubl_invoice(number=name))
    hidden = taking_name(src.parent, fid)
    os.rename(src, hidden)
    adir = home.archive / "2026" / "12" / "07"
    adir.mkdir(parents=True, exist_ok=True)
    if linked:
        os.link(hidden, adir / f"{fid}.bin")
    (adir / f"{fid}@{Claimer(home, Store(home)).host}.claim").write_text(json.dumps([{
        "flow_id": fid, "partner": "ACME", "name": name, "channel": "folder",
        "received_at": "2026-12-07T10:00:00+00:00"}]))
    return src, hidden


@pytest.mark.parametrize("linked", [False, True])
def test_a_claim_cut_in_the_middle_is_finished_once(home, linked):
    src, hidden = _crashed_claim(home, "half.xml", "F20261207100000-0000abcd", linked=linked)
    assert list(scan(home)) == []  # the hidden name is no partner's file
    claimer = Claimer(home, Store(home))
    assert claimer.recover() == 1
    flow = claimer.store.flow("F20261207100000-0000abcd")
    assert flow.file_name == "half.xml" and b"half.xml" in Path(flow.archive_path).read_bytes()
    assert not hidden.exists() and not src.exists() and list(scan(home)) == []
    assert not list(home.archive.rglob("*.claim"))


def test_recovery_leaves_a_new_file_under_the_same_name_alone(home):
    src, _hidden = _crashed_claim(home, "again.xml", "F20261207100000-0000abce", linked=False)
    drop(home, "ACME", "again.xml", ubl_invoice(number="NEW"))  # the partner sent a new one meanwhile
    assert Claimer(home, Store(home)).recover() == 1
    assert b"NEW" in src.read_bytes()
    assert [c.path.name for c in scan(home)] == ["again.xml"]

"""Polling a partner's SFTP server: the gateway's own SftpServer plays the partner.

On that server the gateway's account sees `/outbox` (files the partner offers:
our remote_inbox) and `/inbox` (where we drop return files: our remote_outbox).
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.store import db
from gateway.store import partners
from gateway.channels import deposit
from gateway.channels.poller import PollerService, RemotePoller
from gateway.channels.remote import RemoteConfig
from gateway.channels.sftp.server import SftpServer, host_keys

from sftp_support import ecdsa_key, ed25519_key, hidden, make_home, visible, wait_until


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """The partner's server, shared by the module; each test has its own account on it."""
    root = tmp_path_factory.mktemp("remote")
    settings = make_home(root / "home")
    server = SftpServer(settings, "127.0.0.1", 0)
    server.start()
    address = server.address
    yield SimpleNamespace(settings=settings, server=server, address=address, root=root)
    server.stop()
    db.dispose_all()


_n = iter(range(10**6))


def host_public_keys(settings):
    """OpenSSH lines of the server's host keys, as a partner pins them."""
    return [f"{k.get_name()} {k.get_base64()}" for k in host_keys(settings)]


@pytest.fixture()
def link(remote, tmp_path):
    """A local home, an account on the remote server, and the [[remote]] entry joining them."""
    user = f"gw{next(_n)}"
    key = ed25519_key(tmp_path, "poll_key")
    partners.add_partner(remote.settings, user, [key.pub])
    local = make_home(tmp_path / "local", stability_seconds=0.0)
    cfg = dict(partner="ACME", host="127.0.0.1", port=remote.address[1], user=user, key=str(key.path),
               known_host_key=host_public_keys(remote.settings)[0], remote_inbox="/outbox",
               remote_outbox="/inbox", poll_seconds=30, retry_seconds=1, max_backoff_seconds=4,
               timeout_seconds=10)
    offered = remote.settings.outbox / user  # what the partner leaves for us
    received = remote.settings.inbox / user  # where our return files land
    return SimpleNamespace(local=local, cfg=cfg, offered=offered, received=received, remote=remote,
                                 inbox=local.inbox / "ACME", outbox=local.outbox / "ACME")


def test_stable_files_downloaded_once_and_removed_only_after_store(link):
    (link.offered / "a.xml").write_bytes(b"<Invoice>a</Invoice>")
    seen_at_store = []
    poller = RemotePoller(link.local, link.cfg)
    clean_up = poller._after

    def after(sftp, name, listing, counts):  # the remote clean-up starts: what is stored, what is left
        seen_at_store.append((name, (link.inbox / name).read_bytes(), (link.offered / name).exists()))
        clean_up(sftp, name, listing, counts)

    poller._after = after
    first = poller.poll_once()
    assert (first.downloaded, first.errors) == (0, 0) and first.skipped == 1  # seen once: not yet stable
    assert visible(link.inbox) == [] and (link.offered / "a.xml").exists()

    growing = link.offered / "b.xml"
    growing.write_bytes(b"<Inv")
    second = poller.poll_once()
    assert second.downloaded == 1
    assert (link.inbox / "a.xml").read_bytes() == b"<Invoice>a</Invoice>"
    assert seen_at_store == [("a.xml", b"<Invoice>a</Invoice>", True)]  # remote still there while storing
    assert not (link.offered / "a.xml").exists()  # ... removed after

    with open(growing, "ab") as fh:
        fh.write(b"oice>b</Invoice>")
    assert poller.poll_once().downloaded == 0  # b changed since the last poll
    assert poller.poll_once().downloaded == 1
    assert (link.inbox / "b.xml").read_bytes() == b"<Invoice>b</Invoice>"
    assert poller.poll_once().downloaded == 0
    assert visible(link.inbox) == ["a.xml", "b.xml"]
    assert not any(p.name.startswith(".") for p in link.inbox.iterdir())


def test_done_marker_and_name_clash(link):
    link.cfg.update(completion="done-marker")
    poller = RemotePoller(link.local, link.cfg)  # creates the local inbox/ACME/
    (link.offered / "c.xml").write_bytes(b"new c")
    (link.inbox / "c.xml").write_bytes(b"older c, not yet claimed")
    assert poller.poll_once().downloaded == 0
    assert poller.poll_once().downloaded == 0  # stable, but no marker
    (link.offered / "c.xml.done").write_bytes(b"")
    summary = poller.poll_once()
    assert summary.downloaded == 1 and summary.errors == 0
    assert (link.inbox / "c.xml").read_bytes() == b"older c, not yet claimed"  # never overwritten
    assert (link.inbox / "c.2.xml").read_bytes() == b"new c"
    assert sorted(p.name for p in link.offered.iterdir()) == []  # file and marker removed


def test_not_stored_means_kept_remotely_and_fetched_again(link, monkeypatch):
    link.cfg.update(completion="done-marker")
    (link.offered / "d.xml").write_bytes(b"d")
    (link.offered / "d.xml.done").write_bytes(b"")
    free_name, failures = deposit.free_name, [OSError(28, "No space left on device")]

    def disk_full_once(folder, name):  # the local store fails once, after the download
        if failures:
            raise failures.pop()
        return free_name(folder, name)

    monkeypatch.setattr(deposit, "free_name", disk_full_once)
    poller = RemotePoller(link.local, link.cfg)
    s1 = poller.poll_once()
    assert (s1.downloaded, s1.errors) == (0, 1)
    assert (link.offered / "d.xml").exists() and visible(link.inbox) == []
    s2 = poller.poll_once()
    assert s2.downloaded == 1 and not (link.offered / "d.xml").exists()
    assert (link.inbox / "d.xml").read_bytes() == b"d"


def test_failed_cleanup_never_downloads_twice(link):
    # The remote refuses the move (this server has no folders to move into): the
    # file is kept there, reported, and still not fetched a second time.
    link.cfg.update(completion="done-marker", after="move:archive")
    (link.offered / "e.xml").write_bytes(b"e")
    (link.offered / "e.xml.done").write_bytes(b"")
    poller = RemotePoller(link.local, link.cfg)
    s1 = poller.poll_once()
    assert s1.downloaded == 1 and s1.errors == 2
    s2 = RemotePoller(link.local, link.cfg).poll_once()  # state survives a restart
    assert s2.downloaded == 0 and s2.skipped == 1
    assert visible(link.inbox) == ["e.xml"]
    state = json.loads((link.local.work / "pollers" / "ACME.json").read_text())
    assert "e.xml" in state["downloaded"]


def test_names_the_inbox_ignores_are_neither_fetched_nor_removed(link):
    writing = ["X.filepart", "X.partial", "X.crdownload", "X.PART", "X.TMP", "~X.xml", ".X.xml", "X.part"]
    for name in writing:
        (link.offered / name).write_bytes(b"still being written")
    (link.offered / "ready.xml").write_bytes(b"ready")
    poller = RemotePoller(link.local, link.cfg)
    poller.poll_once()
    summary = poller.poll_once()  # stable now
    assert summary.downloaded == 1 and visible(link.inbox) == ["ready.xml"]
    assert sorted(p.name for p in link.offered.iterdir()) == sorted(writing)  # left where they are
    assert hidden(link.inbox) == []


def test_partial_downloads_left_by_a_crash_are_swept_at_start(link):
    link.inbox.mkdir(parents=True)
    old, young = link.inbox / ".poll-0000.part", link.inbox / ".poll-1111.part"
    old.write_bytes(b"partial")
    young.write_bytes(b"another poller's, in progress")
    past = time.time() - 7200  # stale_upload_seconds is 3600
    os.utime(old, (past, past))
    RemotePoller(link.local, link.cfg)
    assert not old.exists() and young.exists()


def test_return_files_uploaded_once(link):
    reports = link.outbox / "reports"
    reports.mkdir(parents=True)
    (reports / "flow-1.json").write_text('{"state": "IN_INTEGRE"}')
    (reports / "flow-2.xml").write_text("<status/>")
    (reports / ".flow-3.json.tmp").write_text("being written")
    poller = RemotePoller(link.local, link.cfg)
    s1 = poller.poll_once()
    assert s1.uploaded == 2 and s1.errors == 0
    assert sorted(p.name for p in link.received.iterdir()) == ["flow-1.json", "flow-2.xml"]  # no .part left
    assert (link.received / "flow-1.json").read_text() == '{"state": "IN_INTEGRE"}'
    for p in link.received.iterdir():
        p.unlink()  # the partner takes them
    assert poller.poll_once().uploaded == 0
    assert list(link.received.iterdir()) == []
    (reports / "flow-4.json").write_text("{}")
    assert poller.poll_once().uploaded == 1
    assert [p.name for p in link.received.iterdir()] == ["flow-4.json"]


def test_unknown_or_wrong_host_key_is_refused(link, tmp_path, caplog):
    link.cfg.update(completion="done-marker")
    (link.offered / "f.xml").write_bytes(b"f")
    (link.offered / "f.xml.done").write_bytes(b"")
    impostor = ecdsa_key(tmp_path, "impostor").pub
    link.cfg.update(known_host_key=impostor)
    with caplog.at_level(logging.WARNING, "gateway.sftp.poller"):
        summary = RemotePoller(link.local, link.cfg).poll_once()
    assert summary.downloaded == 0 and summary.errors == 1 and "host key" in summary.error.lower()
    assert any("connection problem" in r.getMessage() for r in caplog.records)
    assert (link.offered / "f.xml").exists() and visible(link.inbox) == []

    hosts = tmp_path / "known_hosts"  # a known_hosts file works as well as a key line
    hosts.write_text(f"[127.0.0.1]:{link.cfg['port']} {host_public_keys(link.remote.settings)[0]}\n")
    link.cfg.update(known_host_key=str(hosts))
    assert RemotePoller(link.local, link.cfg).poll_once().downloaded == 1

    hosts.write_text(f"[otherhost]:{link.cfg['port']} {impostor}\n")  # nothing for this host: refused
    summary = RemotePoller(link.local, link.cfg).poll_once()
    assert summary.errors == 1 and "known_hosts" in summary.error


def test_server_down_backs_off_then_recovers_without_loss(link, tmp_path):
    remote_home = make_home(tmp_path / "flaky")
    user, key = "gw", ed25519_key(tmp_path, "flaky_key")
    partners.add_partner(remote_home, user, [key.pub])
    server = SftpServer(remote_home, "127.0.0.1", 0)
    server.start()
    port = server.address[1]
    server.stop()  # the partner's server is down
    link.cfg.update(port=port, user=user, key=str(key.path), known_host_key=host_public_keys(remote_home)[0],
                    completion="done-marker")
    (remote_home.outbox / user / "g.xml").write_bytes(b"g")
    (remote_home.outbox / user / "g.xml.done").write_bytes(b"")
    poller = RemotePoller(link.local, link.cfg)
    delays = []
    for _ in range(4):
        s = poller.poll_once()
        assert s.errors == 1 and s.downloaded == 0
        delays.append(round(poller.next_delay()))
    assert delays == [1, 2, 4, 4]  # exponential, capped at max_backoff_seconds
    status = poller.status
    assert status.failures == 4 and status.last_success is None
    assert "Connection refused" in status.last_error or "Unable to connect" in status.last_error
    assert status.next_attempt > db.utcnow()

    with SftpServer(remote_home, "127.0.0.1", port):
        s = poller.poll_once()
    assert s.downloaded == 1 and s.errors == 0
    status = poller.status
    assert status.failures == 0 and status.last_success is not None and status.downloaded == 1
    assert round(poller.next_delay()) == 30
    assert (link.inbox / "g.xml").read_bytes() == b"g" and not (remote_home.outbox / user / "g.xml").exists()


def test_poller_service_runs_configured_remotes(link, tmp_path, caplog):
    cfg = dict(link.cfg, completion="done-marker")
    toml = "[[remote]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in cfg.items())
    toml += '[[remote]]\npartner = "../bad"\nhost = "x"\n'
    local = make_home(tmp_path / "svc", extra_toml=toml)
    (link.offered / "h.xml").write_bytes(b"h")
    (link.offered / "h.xml.done").write_bytes(b"")
    with caplog.at_level(logging.ERROR, "gateway.sftp.poller"):
        service = PollerService(local)
    assert [p.cfg.partner for p in service.pollers] == ["ACME"]
    assert any("entry 2 ignored" in r.getMessage() for r in caplog.records)
    started = time.monotonic()
    with service:
        assert wait_until(lambda: (local.inbox / "ACME" / "h.xml").exists(), timeout=15)
    assert time.monotonic() - started < 15
    assert [p.status.partner for p in service.pollers] == ["ACME"]


def test_config_is_checked():
    good = dict(partner="ACME", host="h", user="u", key="k", known_host_key="ssh-ed25519 AAAA", remote_inbox="/o")
    cfg = RemoteConfig.parse(good, Path("/home/gw"))
    assert cfg.key == Path("/home/gw/k") and cfg.port == 22 and cfg.after == "delete"
    for bad in ({"partner": "a/b"}, {"completion": "sometimes"}, {"after": "move:"}, {"after": "shred"},
                {"remote_inbox": ""}, {"colour": "blue"}):
        with pytest.raises(ValueError):
            RemoteConfig.parse({**good, **bad}, Path("/home/gw"))

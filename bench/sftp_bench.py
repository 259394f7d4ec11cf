"""The SFTP run (issue #6): files uploaded by parallel paramiko clients to
the gateway's own SFTP server, beside the same files dropped straight into
the inbox folder, both through `gateway run` as a service with the same
settings, each timed from the first file in to the last report written."""
from __future__ import annotations

import multiprocessing as mp
import queue
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import (PARTNER, Measure, Service, checks, cpu_between, link_into_inbox, mb, show, show_ratio, states,
                      tree_cpu, wait_reports)
from conftest import home_with
from sftp_support import ecdsa_key, free_port
from xml_bench import generate

from gateway.core import config
from gateway.store import db
from gateway.store import partners
from gateway.channels.sftp import server as sftp_server

WARMUP = "WARMUP"
WARMUP_FILES = 40  # two claim batches of 20: both workers start Saxon before the clock runs


@dataclass(frozen=True)
class ModeResult:
    files: int
    first_in: float  # wall clock: first drop or first upload started
    last_in: float  # wall clock: last file completely in the inbox
    last_report: float  # wall clock: mtime of the last report
    gateway_cpu: float  # CPU seconds of the gateway's process tree, first file in to last report
    peak_rss: int  # bytes, over the gateway's process tree, warm-up included
    peak_pss: int
    states: str
    upload_ms: float = 0.0  # mean per file, as one client sees it (open, write, close)
    client_cpu: float = 0.0  # CPU seconds the SFTP clients spent uploading (they share the machine)

    @property
    def measure(self) -> Measure:
        return Measure(self.files, self.last_report - self.first_in, self.gateway_cpu)


def _toml(port: int, workers: int, rules: bool) -> str:
    return (f"[intake]\nworkers = {workers}\n[validation]\nschematron = {str(rules).lower()}\n"
            f"[sftp]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}\n"
            "max_sessions_per_partner = 10000\n")  # every client logs in as the one partner


def _warm_up(home: Path, files: list[Path], svc: Service) -> None:
    """Workers spawned and Saxon started before the clock runs."""
    link_into_inbox(files, home, WARMUP)
    wait_reports(home / "outbox" / WARMUP / "reports", len(files), timeout=180, service=svc)


def _new_home(root: Path, name: str, workers: int, rules: bool) -> tuple[Path, int]:
    """A fresh home, the same settings for every mode, on a free port."""
    port = free_port()
    home = root / f"home-{name}"
    home_with(home, _toml(port, workers, rules))
    return home, port


def _started(home: Path, port: int, log: Path, warm: list[Path]) -> Service:
    svc = Service(home, port, log)
    try:
        svc.wait_listening()
        _warm_up(home, warm, svc)
    except BaseException:
        svc.abort()
        raise
    return svc


def folder_mode(root: Path, files: list[Path], workers: int, rules: bool, warm: list[Path]) -> ModeResult:
    """One writer drops every file straight into inbox/BENCH/ (write, close)."""
    home, port = _new_home(root, "folder", workers, rules)
    svc = _started(home, port, root / "gateway-folder.log", warm)
    try:
        datas = [(f.name, f.read_bytes()) for f in files]
        inbox = home / "inbox" / PARTNER
        inbox.mkdir(parents=True, exist_ok=True)
        cpu0, first = tree_cpu(svc.proc.pid), time.time()
        for name, data in datas:
            (inbox / name).write_bytes(data)
        last_in = time.time()
        reports = home / "outbox" / PARTNER / "reports"
        last = wait_reports(reports, len(files), timeout=120 + len(files) / 5, service=svc)
        cpu = cpu_between(cpu0, tree_cpu(svc.proc.pid))
    except BaseException:
        svc.abort()
        raise
    svc.stop()
    return ModeResult(len(files), first, last_in, last, cpu, svc.rss.peak, svc.rss.peak_pss, states(reports))


def _client(address: tuple[str, int], key_path: str, host_keys: list[str], files: list[str],
            ready: "mp.Queue", start: "mp.Event", results: "mp.Queue") -> None:
    """One partner connection: log in, wait for the start, upload its share."""
    import paramiko

    try:
        t = paramiko.Transport(address)
        t.start_client(timeout=60)
        srv = t.get_remote_server_key()
        if f"{srv.get_name()} {srv.get_base64()}" not in host_keys:
            raise RuntimeError(f"unexpected host key {srv.fingerprint}")
        t.auth_publickey(PARTNER, paramiko.PKey.from_path(key_path))
        sftp = paramiko.SFTPClient.from_transport(t)
        datas = [(Path(f).name, Path(f).read_bytes()) for f in files]
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        ready.put(f"error: {type(exc).__name__}: {exc}")
        return
    ready.put("ready")
    start.wait()
    first, spent, cpu0 = time.time(), 0.0, time.process_time()
    try:
        for name, data in datas:
            t0 = time.perf_counter()
            with sftp.open(f"/inbox/{name}", "wb") as fh:  # the server renames it into place on close
                fh.write(data)
            spent += time.perf_counter() - t0
        results.put(("ok", first, time.time(), spent, len(datas), time.process_time() - cpu0))
    except Exception as exc:  # noqa: BLE001
        results.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        sftp.close()
        t.close()


def sftp_mode(root: Path, files: list[Path], workers: int, rules: bool, warm: list[Path],
              clients: int) -> ModeResult:
    """`clients` processes, each its own SSH connection, upload in parallel."""
    home, port = _new_home(root, "sftp", workers, rules)
    settings = config.load(home)
    # created now; the server loads the same, and a client checks it gets one of them
    host_keys = [f"{k.get_name()} {k.get_base64()}" for k in sftp_server.host_keys(settings)]
    key = ecdsa_key(root, "partner-key")
    partners.add_partner(settings, PARTNER, [key.pub])
    db.dispose_all()  # the service opens the database on its own
    svc = _started(home, port, root / "gateway-sftp.log", warm)
    ctx = mp.get_context("spawn")
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_client, daemon=True,
                         args=(("127.0.0.1", port), str(key.path), host_keys,
                               [str(f) for f in files[i::clients]], ready, start, results))
             for i in range(clients)]
    try:
        for p in procs:
            p.start()
        for _ in procs:
            msg = ready.get(timeout=120)
            if msg != "ready":
                raise SystemExit(f"SFTP client failed to log in: {msg}")
        cpu0 = tree_cpu(svc.proc.pid)
        start.set()
        got = []
        for _ in procs:
            res = results.get(timeout=120 + len(files) / 5)
            if res[0] != "ok":
                raise SystemExit(f"SFTP client failed: {res[1]}")
            got.append(res)
        reports = home / "outbox" / PARTNER / "reports"
        last = wait_reports(reports, len(files), timeout=120 + len(files) / 5, service=svc)
        cpu = cpu_between(cpu0, tree_cpu(svc.proc.pid))
    except BaseException as exc:
        svc.abort()
        if isinstance(exc, queue.Empty):
            raise SystemExit("SFTP clients did not answer in time") from None
        raise
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    svc.stop()
    first, last_in = min(g[1] for g in got), max(g[2] for g in got)
    upload_ms = 1000 * sum(g[3] for g in got) / sum(g[4] for g in got)
    return ModeResult(len(files), first, last_in, last, cpu, svc.rss.peak, svc.rss.peak_pss, states(reports),
                      upload_ms, sum(g[5] for g in got))


def run(out: Path, n: int, workers: int, rules: bool, clients: int) -> None:
    root = out / f"sftp-{'rules' if rules else 'xsd'}"
    files = generate(root / "files", n)
    warm = generate(root / "warm", WARMUP_FILES, prefix="W")
    print(f"[SFTP, {n} invoices (UBL and CII, about {files[0].stat().st_size // 1024} KB), "
          f"gateway run as a service, {workers} workers, {checks(rules)}]")
    folder = folder_mode(root, files, workers, rules, warm)
    sftp = sftp_mode(root, files, workers, rules, warm, clients)
    f, s = folder.measure, sftp.measure
    show("baseline", "dropped in inbox/ by 1 writer, first drop to last report:", f,
         f"  ({f.seconds:.1f} s; {folder.states})")
    show("gateway", f"SFTP, {clients} paramiko clients, first upload to last report:", s,
         f"  ({s.seconds:.1f} s; {sftp.states})")
    show_ratio("SFTP / folder", s, f)
    print(f"  memory    peak RSS {mb(sftp.peak_rss)}, PSS {mb(sftp.peak_pss)} with SFTP; RSS {mb(folder.peak_rss)}, "
          f"PSS {mb(folder.peak_pss)} with the folder, over the gateway's process tree (warm-up included)")
    up, drop = sftp.last_in - sftp.first_in, folder.last_in - folder.first_in
    print("  per-stage cost:")
    print(f"    SFTP uploads alone, first to last   {n / up:7.0f} files/s ({up:.1f} s); {sftp.upload_ms:.1f} ms per "
          f"upload as one client sees it (open, write, close); the clients used "
          f"{1000 * sftp.client_cpu / n:.1f} ms CPU/file of the same 2 cores")
    print(f"    folder drops alone, first to last   {n / max(drop, 1e-9):7.0f} files/s ({drop:.2f} s)")
    print(f"    last file in to last report         SFTP {sftp.last_report - sftp.last_in:.1f} s, folder "
          f"{folder.last_report - folder.last_in:.1f} s (includes the 1 s stability delay)")
    print(f"    gateway CPU per file                SFTP {s.cpu_ms:.1f} ms, folder {f.cpu_ms:.1f} ms: "
          f"{s.cpu_ms - f.cpu_ms:+.1f} ms for the SFTP channel (SSH, SFTP, fsync), give or take the noise")

"""Search on a million pieces: builds a SQLite store of N pieces (default
1,000,000, in flows of two, over a year) in one bulk load, then times the
typical searches of `gateway search` / the web's /search page, each the
best of three runs after a first (cold) one.

    PYTHONPATH=. python bench/search.py [--pieces 1000000] [--home /tmp/search-bench] [--keep]
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gateway.core import config  # noqa: E402
from gateway.store.repository import Store  # noqa: E402
from gateway.store.search import PieceQuery, count_pieces, search_pieces  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
CADRES = (("A1", 70), ("A9", 10), ("A2", 6), ("A4", 5), ("A15", 4), ("A12", 3), ("A19", 2))
STATUSES = (("MISE_A_DISPOSITION", 40), ("MISE_EN_PAIEMENT", 25), ("SERVICE_FAIT", 10), ("A_VALIDER_1", 5),
            ("MISE_A_DISPOSITION_MOE", 5), ("REJETEE", 5), ("SUSPENDUE", 3), ("DEPOSEE", 4), ("ASSOCIEE", 3))
CODES = ("DEST_INC", "REJ_CONT_B2G", "REJ_UNI", "REJ_SEMAN", "SIRET_ERR")
FLOW_COLUMNS = ("id", "partner", "channel", "file_name", "sha256", "size", "received_at", "archive_path", "format",
                "state", "queue", "attempts", "pieces_total", "pieces_valid", "report_written_at", "updated_at")
PIECE_COLUMNS = ("id", "flow_id", '"index"', "name", "format", "valid", "status", "error_codes", "verdict_json",
                 "created_at", "partner", "cadre", "piece_type", "invoice_number", "issue_date", "supplier_id",
                 "recipient_siret", "service_code", "parties_json", "summary_json", "seq", "link_id")
EVENT_COLUMNS = ("flow_id", "piece_id", "stage", "outcome", "at", "detail_json")
# (a flow's row, its pieces' rows) -> (the flow's row, its pieces' rows, its events' rows), in the columns above
PerFlow = Callable[[tuple, list[tuple]], tuple[tuple, list[tuple], list[tuple]]]


def build(settings: config.Settings, n_pieces: int, seed: int = 7, *, per_flow: PerFlow | None = None) -> float:
    """Bulk-load n_pieces (two per flow) through the store's engine; returns seconds.
    `per_flow` may reshape each flow and its pieces, and gives the events to record with them."""
    rng = random.Random(seed)
    store = Store(settings)  # the schema, indexes included, from the migrations
    suppliers = [f"{rng.randrange(10**13, 10**14)}" for _ in range(2000)]
    recipients = [f"{rng.randrange(10**13, 10**14)}" for _ in range(500)]
    partners = [f"editeur-{i:03d}" for i in range(200)]
    span = 365 * 86400
    t0 = time.perf_counter()
    with store.engine.begin() as conn:  # one transaction: synchronous=NORMAL costs one sync at the end
        # a bulk load: the secondary indexes are made once at the end, not row by row
        indexes = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                                       "tbl_name IN ('flow', 'piece', 'event') AND sql IS NOT NULL").all()
        for name, _ in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
        n_flows = n_pieces // 2
        cadres = rng.choices([v for v, _ in CADRES], [w for _, w in CADRES], k=n_flows * 2)
        statuses = rng.choices([v for v, _ in STATUSES], [w for _, w in STATUSES], k=n_flows * 2)
        flows, pieces, events = [], [], []
        for f in range(n_flows):
            at = START + timedelta(seconds=span * f / n_flows)
            stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy writes a UTC datetime in SQLite
            later = (at + timedelta(seconds=3)).strftime("%Y-%m-%d %H:%M:%S.%f")
            fid = f"F{at:%Y%m%d%H%M%S}-{f:08x}"
            partner = partners[f % len(partners)]
            flow = (fid, partner, "folder", f"FA-{at:%Y-%m}-{f:07d}.xml", f"{f:064x}", 5000, stamp,
                    f"/archive/{fid}.bin", "ubl-invoice", "IN_INTEGRE", "done", 1, 2, 2, later, later)
            mine = []
            issued = (at - timedelta(days=f % 30)).date().isoformat()
            for i in (1, 2):
                k = 2 * f + i - 1
                bad = rng.random() < 0.03
                mine.append((f"{fid}-{i:03d}", fid, i, f"piece-{i}.xml", "ubl-invoice", not bad,
                             "IRRECEVABLE" if bad else statuses[k], CODES[k % len(CODES)] if bad else "", "{}",
                             later, partner, cadres[k], "facture", f"PDM-{f}-{i}", issued,
                             suppliers[k % len(suppliers)], recipients[(k * 7) % len(recipients)],
                             f"S{k % 20}", "{}", "{}", 0, None))
            if per_flow is not None:
                flow, mine, evs = per_flow(flow, mine)
                events.extend(evs)
            flows.append(flow)
            pieces.extend(mine)
            if len(pieces) >= 100_000:
                _flush(conn, flows, pieces, events)
                flows, pieces, events = [], [], []
        _flush(conn, flows, pieces, events)
        for _, sql in indexes:
            conn.exec_driver_sql(sql)
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - t0


def _flush(conn, flows: list, pieces: list, events: list) -> None:  # noqa: ANN001
    for table, columns, rows in (("flow", FLOW_COLUMNS, flows), ("piece", PIECE_COLUMNS, pieces),
                                 ("event", EVENT_COLUMNS, events)):
        if rows:
            conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) "
                                 f"VALUES ({', '.join('?' * len(columns))})", rows)


def timed(label: str, fn) -> tuple[str, float, int]:  # noqa: ANN001
    fn()  # cold
    best, n = float("inf"), 0
    for _ in range(3):
        t0 = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t0)
    return label, best, n


def queries(store: Store) -> list[tuple[str, float, int]]:
    day = lambda s: datetime.fromisoformat(s).replace(tzinfo=timezone.utc)  # noqa: E731
    nov = dict(since=day("2026-11-01"), until=day("2026-12-01"))
    some = search_pieces(store, PieceQuery(), offset=60_000, limit=1)[0]  # one of November
    cases = [
        ("newest 50, no filter", PieceQuery()),
        ("--cadre A4 --status MISE_A_DISPOSITION_MOE --since 2026-11-01 --until 2026-11-30",
         PieceQuery(cadres=("A4",), statuses=("MISE_A_DISPOSITION_MOE",), **nov)),
        ("--code DEST_INC --since 2026-11-01", PieceQuery(codes=("DEST_INC",), since=day("2026-11-01"))),
        ("--code DEST_INC (whole year)", PieceQuery(codes=("DEST_INC",))),
        ("--number PDM-5", PieceQuery(number=some.invoice_number)),
        ("--recipient SIRET", PieceQuery(recipient=some.recipient_siret)),
        ("--supplier SIRET --issued-since 2026-06-01", PieceQuery(supplier=some.supplier_id,
                                                                   issued_since="2026-06-01")),
        ("--partner P --status SUSPENDUE", PieceQuery(partners=(some.partner,), statuses=("SUSPENDUE",))),
        ("--file NAME (exact)", PieceQuery(file_name=some.file_name)),
        ("--file PREFIX* (a prefix of 100 files)", PieceQuery(file_name=some.file_name[:-6] + "*")),
        ("--billing-file PDM-5", PieceQuery(billing_file=some.invoice_number)),
    ]
    out = [timed(label, lambda q=q: len(search_pieces(store, q, limit=50))) for label, q in cases]
    out.append(timed("count: --cadre A4 --status ... --since/--until (the page's total)",
                     lambda: count_pieces(store, cases[1][1])))
    out.append(timed("count: --code DEST_INC (whole year)", lambda: count_pieces(store, cases[3][1])))
    return out


def bench_home(home: Path | None, prefix: str) -> tuple[Path, bool, config.Settings]:
    """The bench's home (`home`, else a new temporary one), whether its store is
    still to build, and its settings (no demo data)."""
    root = home or Path(tempfile.mkdtemp(prefix=prefix))
    fresh = not (root / "gateway.db").exists()
    config.init_home(root)
    (root / "gateway.toml").write_text("[demo]\nseed = false\n", encoding="utf-8")
    return root, fresh, config.load(root, create=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pieces", type=int, default=1_000_000)
    ap.add_argument("--home", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the home (reuse it with --home, no rebuild)")
    args = ap.parse_args()
    root, fresh, settings = bench_home(args.home, "search-bench-")
    try:
        if fresh:
            secs = build(settings, args.pieces)
            print(f"built {args.pieces:,} pieces in {args.pieces // 2:,} flows in {secs:.1f} s "
                  f"({(root / 'gateway.db').stat().st_size / 1e6:.0f} MB)")
        store = Store(settings)
        print(f"{'search (50 rows at most)':<88} {'best of 3':>10} {'rows':>8}")
        for label, secs, n in queries(store):
            print(f"{label:<88} {secs * 1000:>8.1f} ms {n:>8}")
    finally:
        if not args.keep and not args.home:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

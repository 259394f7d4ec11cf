"""The search's SQL (store/search.py) on SQLite and PostgreSQL: every filter
narrows as documented, codes and wildcards match whole values, a billing
file is found along its links, exports page through everything."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from conftest import PgDatabase
from gateway.store import db
from gateway.store.replays import plan_replays, record_replays
from gateway.store.repository import FlowResult, NewFlow, Store
from gateway.store.rows import EventRow, PieceRow
from gateway.store.search import (PieceQuery, count_pieces, iter_pieces, matching_flows, refused_flows,
                                   search_pieces)

NOV = datetime(2026, 11, 10, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, home):
    if request.param == "sqlite":
        yield Store(home)
        return
    pg = PgDatabase()
    yield Store(replace(home, database_url=pg.url))
    pg.close()


def add_flow(store: Store, fid: str, *, partner: str = "acme", file: str = "f.xml", at: datetime = NOV,
             pieces: tuple[dict, ...] = ({},)) -> list[str]:
    store.record_received([NewFlow(fid, partner, "folder", file, fid, 10, at, f"/archive/{fid}.bin")])
    rows = []
    for i, p in enumerate(pieces, 1):
        valid = not p.get("error_codes")
        rows.append(PieceRow(**{**dict(id=f"{fid}-{i:03d}", flow_id=fid, index=i, name=file, format="ubl-invoice",
                                       valid=valid, status="DEPOSEE" if valid else "IRRECEVABLE", partner=partner,
                                       cadre="A1", piece_type="facture", invoice_number=f"N-{fid}-{i}",
                                       issue_date="2026-11-02", supplier_id="79990011300017",
                                       recipient_siret="21990001600011", service_code="ACHATS"), **p}))
    store.complete([FlowResult(fid, "IN_INTEGRE", "ubl-invoice", tuple(rows), ())])
    return [r.id for r in rows]


def ids(store: Store, **query) -> set[str]:
    return {p.id for p in search_pieces(store, PieceQuery(**query), limit=1000)}


def test_each_filter_narrows_to_the_pieces_it_names(store):
    a = add_flow(store, "F1", file="FA-2026-01.xml", pieces=({"cadre": "A4", "piece_type": "projet de décompte "
                                                                "mensuel", "status": "MISE_A_DISPOSITION_MOE",
                                                                "invoice_number": "PDM-5"},))
    b = add_flow(store, "F2", partner="beta", file="other.xml", at=datetime(2026, 12, 1, tzinfo=timezone.utc),
                 pieces=({"error_codes": "DEST_INC", "recipient_siret": "28990008600017", "service_code": "X",
                          "issue_date": "2026-11-20", "supplier_id": "11111111111111"},
                         {"error_codes": "DEST_INC_X,REJ_UNI"}))
    assert ids(store) == {*a, *b}
    assert ids(store, cadres=("A4",)) == set(a)
    assert ids(store, piece_types=("projet de décompte mensuel",)) == set(a)
    assert ids(store, statuses=("MISE_A_DISPOSITION_MOE", "DEPOSEE")) == set(a)
    assert ids(store, codes=("DEST_INC",)) == {b[0]}  # whole codes: not DEST_INC_X
    assert ids(store, codes=("REJ_UNI", "DEST_INC")) == set(b)
    assert ids(store, number="PDM-5") == set(a) and ids(store, number="PDM-") == set()
    assert ids(store, number="PDM*") == set(a)
    assert ids(store, number="N_F2*") == set()  # "_" is a character, not LIKE's wildcard
    assert ids(store, number="pdm*") == set() and ids(store, number="*DM-?") == set()  # case, and only * is wild
    assert ids(store, number="*-F2-*") == set(b) and ids(store, file_name="*2026*") == set(a)
    assert ids(store, supplier="11111111111111") == {b[0]}
    assert ids(store, recipient="28990008600017") == {b[0]}
    assert ids(store, service="X") == {b[0]}
    assert ids(store, partners=("beta",)) == set(b)
    assert ids(store, file_name="FA-2026*") == set(a) and ids(store, file_name="FA-2026-01.xml") == set(a)
    assert ids(store, flow_id="F2") == set(b)
    assert ids(store, since=datetime(2026, 11, 30, tzinfo=timezone.utc)) == set(b)
    assert ids(store, until=datetime(2026, 11, 30, tzinfo=timezone.utc)) == set(a)
    assert ids(store, issued_since="2026-11-10") == {b[0]}
    assert ids(store, issued_until="2026-11-02") == {a[0], b[1]}
    assert ids(store, valid=True) == set(a) and ids(store, valid=False) == set(b)
    assert ids(store, cadres=("A4",), partners=("beta",)) == set()  # filters add up
    assert count_pieces(store, PieceQuery(valid=False)) == 2
    assert matching_flows(store, PieceQuery(codes=("DEST_INC", "REJ_UNI"))) == ["F2"]
    found = search_pieces(store, PieceQuery(codes=("DEST_INC",)))[0]
    assert found.file_name == "other.xml" and found.error_codes == ("DEST_INC",) and found.partner == "beta"
    assert found.received_at == datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_a_billing_file_is_found_by_its_first_number_along_its_links(store):
    a4 = add_flow(store, "F1", pieces=({"cadre": "A4", "invoice_number": "PDM-1"},))[0]
    a15 = add_flow(store, "F2", pieces=({"cadre": "A15", "invoice_number": "EA-1", "link_id": a4},))[0]
    a19 = add_flow(store, "F3", pieces=({"cadre": "A19", "invoice_number": "DGD-1", "link_id": a15},))[0]
    other = add_flow(store, "F4", pieces=({"cadre": "A4", "invoice_number": "PDM-2"},))[0]
    assert ids(store, billing_file="PDM-1") == {a4, a15, a19}
    assert ids(store, billing_file="PDM-2") == {other}
    assert ids(store, billing_file="EA-1") == set()  # a later piece's number names no billing file


def test_results_come_newest_first_or_by_deadline_and_exports_read_everything(store):
    for n in range(7):
        add_flow(store, f"F{n}", pieces=({"due_at": datetime(2026, 12, 20 - n, tzinfo=timezone.utc)},))
    newest = search_pieces(store, PieceQuery(), limit=3)
    assert [p.id for p in newest] == ["F6-001", "F5-001", "F4-001"]
    assert [p.id for p in search_pieces(store, PieceQuery(), limit=3, offset=3)] == ["F3-001", "F2-001", "F1-001"]
    assert [p.id for p in search_pieces(store, PieceQuery(due=True), limit=2)] == ["F6-001", "F5-001"]
    every = [p.id for p in iter_pieces(store, PieceQuery(), batch=2)]  # pages of 2, several with one instant
    assert sorted(every) == [f"F{n}-001" for n in range(7)] and len(every) == 7


def test_a_flow_is_replayed_once_as_a_new_flow_linked_to_it(store):
    add_flow(store, "F1", pieces=({"error_codes": "DEST_INC"},))
    [choice] = plan_replays(store, ["F1"])
    assert choice.replay and choice.reason == ""
    made = record_replays(store, ["F1"], by="test")
    new = made["F1"]
    f = store.flow(new)
    assert (f.replay_of, f.channel, f.queue, f.sha256, f.archive_path, f.duplicate_of) == (
        "F1", "replay", "queued", "F1", "/archive/F1.bin", None)
    assert record_replays(store, ["F1"]) == {}  # the unique index: never twice, even racing
    [again] = plan_replays(store, ["F1"])
    assert not again.replay and again.reason == f"already replayed by {new}"
    assert [e.outcome for e in store.history("F1")][-1] == "replayed"
    # the partner sending the same bytes again is still a duplicate of the original, not of the replay
    store.record_received([NewFlow("F9", "acme", "folder", "f.xml", "F1", 10, db.utcnow(), "/archive/F9.bin")])
    assert store.flow("F9").duplicate_of == "F1"


def _refuse_whole(store: Store, fid: str, codes: list[str], *, partner: str = "acme", file: str = "bad.xml",
                  at: datetime = NOV) -> None:
    """A flow refused whole, as the worker records it: no piece, its codes in its validation event."""
    store.record_received([NewFlow(fid, partner, "folder", file, fid, 10, at, f"/archive/{fid}.bin")])
    event = EventRow(fid, None, "validation", "IN_REJETE", json.dumps({"format": "unknown", "errors": codes}))
    store.complete([FlowResult(fid, "IN_REJETE", "unknown", (), (event,))])


def test_replay_finds_flows_refused_whole_by_what_they_have(store):
    """A flow refused without a piece (an unreadable file, ERR_INTERROMPU)
    is reached by its id, partner, file name, arrival and codes; never by
    what only a piece has, nor by --accepted."""
    kept = add_flow(store, "F1", pieces=({"error_codes": "DEST_INC"},))
    _refuse_whole(store, "F2", ["ERR_INTERROMPU"], file="poison.zip")
    _refuse_whole(store, "F3", ["IRR_SYNTAX"], partner="beta", at=datetime(2026, 12, 1, tzinfo=timezone.utc))

    def flows(**query) -> list[str]:
        return matching_flows(store, PieceQuery(**query))

    assert flows(flow_id="F2") == ["F2"]
    assert flows(codes=("ERR_INTERROMPU",)) == ["F2"] and flows(codes=("ERR_INTERROMP",)) == []  # whole codes
    assert flows(codes=("IRR_SYNTAX", "DEST_INC")) == ["F1", "F3"]
    assert flows(codes=("IRRXSYNTAX",)) == []  # "_" is a character, not LIKE's wildcard
    assert flows(partners=("beta",)) == ["F3"] and flows(file_name="poison*") == ["F2"]
    assert flows(since=datetime(2026, 11, 30, tzinfo=timezone.utc)) == ["F3"]
    assert flows(until=datetime(2026, 11, 30, tzinfo=timezone.utc), valid=False) == ["F1", "F2"]
    assert flows(flow_id="F2", cadres=("A1",)) == [] and flows(flow_id="F2", valid=True) == []
    assert ids(store, flow_id="F2") == set() and kept  # the piece search itself is unchanged



def test_replay_leaves_refused_status_files_and_duplicates_unless_named(store):
    """A refused status file replayed would apply changes refused long ago; a
    duplicate is the same bytes again: neither is found by a filter, only
    named by its id."""
    _refuse_whole(store, "F1", ["IRR_SYNTAX"])
    store.record_received([NewFlow("F2", "acme", "folder", "s.json", "F2", 10, NOV, "/archive/F2.bin")])
    event = EventRow("F2", None, "validation", "IN_REJETE", json.dumps({"format": "status", "errors": ["STATUT_INCONNU"]}))
    store.complete([FlowResult("F2", "IN_REJETE", "status", (), (event,))])
    [(dup, of)] = store.record_received([NewFlow("F3", "acme", "folder", "bad2.xml", "F1", 10, NOV, "/archive/F3.bin")])
    assert (dup, of) == ("F3", "F1")
    event = EventRow("F3", None, "validation", "IN_REJETE", json.dumps({"format": "unknown", "errors": ["DOUBLON"]}))
    store.complete([FlowResult("F3", "IN_REJETE", "unknown", (), (event,))])
    assert matching_flows(store, PieceQuery(partners=("acme",))) == ["F1"]
    assert matching_flows(store, PieceQuery(codes=("STATUT_INCONNU", "DOUBLON"))) == []
    assert matching_flows(store, PieceQuery(flow_id="F2")) == ["F2"]
    assert matching_flows(store, PieceQuery(flow_id="F3")) == ["F3"]


def test_the_pieces_of_many_flows_come_in_one_read_as_flow_by_flow(store):
    add_flow(store, "F1", pieces=({}, {"error_codes": "DEST_INC"}, {}))
    add_flow(store, "F2")
    _refuse_whole(store, "F3", ["IRR_SYNTAX"])
    many = store.pieces_of(["F2", "F1", "F3", "F9", "F1"])
    assert set(many) == {"F1", "F2"}  # a flow without a piece is absent
    for fid in ("F1", "F2"):
        assert [p.id for p in many[fid]] == [p.id for p in store.pieces(fid)]
    assert [p.index for p in many["F1"]] == [1, 2, 3]


def test_the_flows_refused_whole_are_listed_newest_first_with_their_codes(store):
    _refuse_whole(store, "F1", ["IRR_SYNTAX", "IRR_SYNTAX"], file="a.xml")
    _refuse_whole(store, "F2", ["ERR_INTERROMPU"], file="b.zip", at=datetime(2026, 12, 1, tzinfo=timezone.utc))
    add_flow(store, "F3", pieces=({"error_codes": "DEST_INC"},))
    listed = refused_flows(store, PieceQuery())
    assert [(f.id, f.file_name, f.codes) for f in listed] == [("F2", "b.zip", ("ERR_INTERROMPU",)),
                                                              ("F1", "a.xml", ("IRR_SYNTAX",))]
    assert listed[0].received_at == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert [f.id for f in refused_flows(store, PieceQuery(codes=("IRR_SYNTAX",)))] == ["F1"]
    assert refused_flows(store, PieceQuery(cadres=("A1",))) == []  # what only a piece has
    assert [f.id for f in refused_flows(store, PieceQuery(), limit=1)] == ["F2"]

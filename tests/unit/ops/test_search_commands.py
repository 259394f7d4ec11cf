"""`gateway search`, `pieces`, `replay`, `flows`/`flow --json` and the small
fixes, through the real command line (typer's CliRunner, 80 columns) on
flows the service really processed."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import drop, interrupted, report_for
from gateway.ops.cli.main import app
from gateway.rules import directory
from gateway.runtime.service import Gateway
from gateway.store.repository import Store
from invoice_support import COMMUNE_SIRET, SUPPLIER_SIRET, ubl_invoice

FLOW_KEYS = {"flow_id", "partner", "channel", "file", "sha256", "size", "received_at", "format", "state",
             "processing", "attempts", "pieces_total", "pieces_valid", "duplicate_of", "replay_of", "replayed_by",
             "processed_at", "archived"}


def cli(*args: str, home=None) -> "object":
    full = [*args, "--home", str(home.home)] if home is not None else list(args)
    return CliRunner().invoke(app, full, env={"COLUMNS": "80"})


@pytest.fixture()
def gw(home):
    """The demo directory; one invoice accepted, one refused for a service the directory lacks."""
    directory.import_files(home, directory.demo_files())
    drop(home, "acme", "ok.xml", ubl_invoice(number="FA-OK-1"))
    drop(home, "acme", "nouveau.xml", ubl_invoice(number="FA-NEW-1", service_code="NOUVEAU"))
    Gateway(home, once=True).run()
    return home


def test_search_by_flags_as_a_table_json_and_csv(gw):
    refused = report_for(gw, "acme", "nouveau.xml")
    assert refused["state"] == "IN_REJETE"
    r = cli("search", "--code", "REJ_CONT_B2G", "--json", home=gw)
    assert r.exit_code == 0, r.output
    [row] = [json.loads(line) for line in r.stdout.splitlines()]
    assert (row["flow_id"], row["invoice_number"], row["status"], row["error_codes"], row["valid"]) == (
        refused["flow_id"], "FA-NEW-1", "IRRECEVABLE", ["REJ_CONT_B2G"], False)
    r = cli("search", "--status", "mise_a_disposition", "--cadre", "A1", "--since", "2020-01-01", "--csv", home=gw)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("piece_id,flow_id,partner,file,") and len(lines) == 2 and ",FA-OK-1," in lines[1]
    # 80 columns: ids and SIRETs whole, on one line each
    ok = report_for(gw, "acme", "ok.xml")["pieces"][0]["piece_id"]
    r = cli("search", "--number", "FA-*", home=gw)
    assert r.exit_code == 0 and max(len(line) for line in r.stdout.splitlines()) <= 80
    assert ok in r.stdout and SUPPLIER_SIRET in r.stdout and COMMUNE_SIRET in r.stdout
    assert "2 piece(s)" in r.stdout
    assert cli("search", "--number", "FA-*", "--json", "--csv", home=gw).exit_code == 2


@pytest.mark.parametrize("args, valid", [
    (("search", "--cadre", "A99"), "valid: A1, A2"),
    (("search", "--status", "PAYEE"), "MISE_A_DISPOSITION_MOE"),
    (("search", "--code", "NOPE"), "DEST_INC"),
    (("search", "--since", "yesterday"), "YYYY-MM-DD"),
    (("pieces", "--cadre", "Z1"), "valid: A1"),
    (("replay", "--status", "nope"), "valid: DEPOSEE"),
    (("flows", "--state", "DONE"), "valid: IN_RECU, IN_INTEGRE, IN_INTEGRE_PARTIEL, IN_REJETE"),
])
def test_unknown_filter_values_are_refused_with_the_valid_ones(gw, args, valid):
    r = cli(*args, home=gw)
    assert r.exit_code == 2 and valid in " ".join(r.output.split()), r.output


def test_pieces_takes_the_search_filters(gw):
    r = cli("pieces", "--cadre", "A1", "--recipient", COMMUNE_SIRET, "--json", home=gw)
    assert [json.loads(line)["invoice_number"] for line in r.stdout.splitlines()] == ["FA-OK-1"]  # accepted only
    assert cli("pieces", "--cadre", "A4", "--json", home=gw).stdout == ""


def test_replay_after_the_directory_is_fixed(gw, tmp_path):
    old = report_for(gw, "acme", "nouveau.xml")["flow_id"]
    r = cli("replay", "--code", "REJ_CONT_B2G", "--since", "2020-01-01", "--dry-run", "--json", home=gw)
    assert [json.loads(line)["flow_id"] for line in r.stdout.splitlines()] == [old]
    assert Store(gw).queued() == 0  # a dry run changes nothing
    assert cli("replay", home=gw).exit_code == 2  # replaying everything is never meant
    services = tmp_path / "services.csv"
    services.write_text("Identifiant;CodeService;NomService;Actif;EngagementObligatoire\n"
                        f"{COMMUNE_SIRET};NOUVEAU;Nouveau service;true;false\n", encoding="utf-8")
    directory.import_files(gw, [services])
    r = cli("replay", "--code", "REJ_CONT_B2G", home=gw)
    assert r.exit_code == 0 and "1 flow(s) replayed" in r.stdout, r.output
    Gateway(gw, once=True).run()
    [again] = [x for x in (json.loads(p.read_text()) for p in gw.reports_dir("acme").glob("*.json"))
               if x["flow_id"] != old and x["file"] == "nouveau.xml"]
    assert again["state"] == "IN_INTEGRE" and again["pieces"][0]["status"] == "MISE_A_DISPOSITION"
    assert again["replay_of"] == old  # the partner's report says which earlier flow it answers again
    new = json.loads(cli("flow", again["flow_id"], "--json", home=gw).stdout)
    assert new["flow"]["replay_of"] == old and new["flow"]["channel"] == "replay"
    assert json.loads(cli("flow", old, "--json", home=gw).stdout)["flow"]["replayed_by"] == again["flow_id"]
    # the same selection again: nothing new (replayed already; the replay holds no refused piece)
    r = cli("replay", "--code", "REJ_CONT_B2G", "--json", home=gw)
    assert [(x["flow_id"], x["replay"]) for x in map(json.loads, r.stdout.splitlines())] == [(old, False)]
    assert Store(gw).queued() == 0


def test_flows_and_flow_json_give_the_documented_shape(gw):
    rows = [json.loads(line) for line in cli("flows", "--json", home=gw).stdout.splitlines()]
    assert len(rows) == 2 and all(set(r) == FLOW_KEYS for r in rows)
    detail = json.loads(cli("flow", rows[0]["flow_id"], "--json", home=gw).stdout)
    assert set(detail) == {"version", "flow", "pieces", "history"} and set(detail["flow"]) == FLOW_KEYS
    text = json.dumps(detail)
    assert "locked_by" not in text and "archive_path" not in text and str(gw.archive) not in text
    piece = detail["pieces"][0]
    assert {"piece_id", "status", "error_codes", "invoice_number", "recipient", "verdict"} <= set(piece)
    assert piece["verdict"]["invoice"]["number"] == piece["invoice_number"]
    assert {"at", "stage", "outcome", "piece_id", "detail"} == set(detail["history"][0])


def test_read_only_commands_never_make_a_home(tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    for args in (("flows",), ("flow", "F1"), ("pieces",), ("piece", "P1"), ("search", "--cadre", "A1"),
                 ("replay", "--cadre", "A1"), ("purge", "--older-than", "30"), ("directory", "show", "1")):
        r = CliRunner().invoke(app, [*args, "--home", str(empty)])
        assert r.exit_code == 2 and "not a gateway home" in r.output, (args, r.output)
    assert list(empty.iterdir()) == []


def test_conformance_without_expected_tsv_says_so(tmp_path):
    r = CliRunner().invoke(app, ["conformance", str(tmp_path)])
    assert r.exit_code == 2 and "has no EXPECTED.tsv" in r.output and "Traceback" not in r.output


def test_reading_signatures_prints_no_library_warning():
    code = "import gateway.pipeline, pyhanko.sign.validation, warnings; warnings.warn('still shown', UserWarning)"
    r = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ))
    assert "DSA" not in r.stderr and "CryptographyDeprecationWarning" not in r.stderr
    assert "still shown" in r.stderr  # only that one warning is silenced


def test_a_search_table_lists_the_flows_refused_whole_its_filters_fit(gw):
    """An unreadable file has no piece: the table lists it below the pieces,
    by its code, and not for a filter only a piece has."""
    interrupted(gw, "broken.xml")
    broken = report_for(gw, "acme", "broken.xml")
    r = cli("search", "--code", "ERR_INTERROMPU", home=gw)
    assert r.exit_code == 0, r.output
    assert broken["flow_id"] in r.stdout and "ERR_INTERROMPU" in r.stdout and "broken.xml" in r.stdout
    assert "0 piece(s)" in r.stdout and "1 flow(s) refused whole, without a piece" in r.stdout
    assert broken["flow_id"] not in cli("search", "--partner", "acme", "--cadre", "A1", home=gw).stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    # the same flow, reached by the replay the table points to
    dry = cli("replay", "--code", "ERR_INTERROMPU", "--dry-run", home=gw)
    assert dry.exit_code == 0 and broken["flow_id"] in dry.stdout, dry.output

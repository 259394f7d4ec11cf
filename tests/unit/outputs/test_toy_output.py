"""A new format of status file is one module and one line: an `Output`
(here a toy plain-text one, the "module"), registered by one line, then
received by the parties whose settings name it, beside their other status
files, through the whole chain (deposit, a party's status file, the
transactional outbox, its rewrite after a crash); the others never get it."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from sqlalchemy import update

from conftest import TEST_TOML, drop, home_with, report_for
from gateway.core import config
from gateway.outputs import registry
from gateway.outputs.status_files import ForReceiver, StatusNotice, Statuses
from gateway.rules import directory
from gateway.runtime.service import Gateway
from gateway.store.repository import Store
from gateway.store.tables import Notice
from invoice_support import COMMUNE_SIRET, ubl_invoice


# --- the new format's module ------------------------------------------------------------------

@dataclass(frozen=True)
class TextOutput:
    """One line per status change, for a party whose software reads plain text."""

    name: str = "text"
    suffix: str = ".txt"

    def render(self, notices: Sequence[StatusNotice], machine: Statuses, *, platform_id: str,
               flow_id: str | None = None) -> ForReceiver:
        lines = [f"{n.piece_id};{n.status};{machine.info(n.status).label_fr};{n.comment or ''}\n" for n in notices]

        def for_receiver(receiver_id: str, receiver_name: str) -> bytes:
            return f"# {platform_id} -> {receiver_name}\n{''.join(lines)}".encode()

        return for_receiver


# --- a home where the recipient receives it ----------------------------------------------------

@pytest.fixture()
def toy_home(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.OUTPUTS, "text", TextOutput())  # the one registration line
    toml = TEST_TOML + f'[statuses.parties]\n"{COMMUNE_SIRET}" = ["cppstatut", "json", "text"]\n'
    s = home_with(tmp_path / "home", toml)
    directory.import_files(s, directory.demo_files())
    return s


def run(settings) -> None:
    Gateway(settings, once=True).run()


def statuses(settings, party: str) -> list[str]:
    d = settings.outbox / party / "statuses"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_a_new_format_reaches_the_parties_that_ask_for_it(toy_home):
    s = toy_home
    drop(s, "fournisseur", "FA-TOY-1.xml", ubl_invoice(number="FA-TOY-1"))
    run(s)
    pid = report_for(s, "fournisseur", "FA-TOY-1.xml")["pieces"][0]["piece_id"]
    # at intake (written with the flow): the recipient gets the toy file beside the XML and the JSON
    assert statuses(s, COMMUNE_SIRET) == [f"{pid}.003.json", f"{pid}.003.txt", f"{pid}.003.xml"]
    text = (s.outbox / COMMUNE_SIRET / "statuses" / f"{pid}.003.txt").read_text()
    assert text.splitlines()[0] == f"# GTW001 -> {COMMUNE_SIRET}"
    assert [line.split(";")[1] for line in text.splitlines()[1:]] == [
        "DEPOSEE", "EN_COURS_ACHEMINEMENT", "MISE_A_DISPOSITION"]
    # the supplier's settings do not name it: its usual two files only
    assert statuses(s, "fournisseur") == [f"{pid}.003.json", f"{pid}.003.xml"]

    # a later change, through the notice table and flush_notices
    drop(s, COMMUNE_SIRET, "st1.json", json.dumps({"statuses": [
        {"piece_id": pid, "status": "SERVICE_FAIT", "comment": "reçu"}]}).encode())
    run(s)
    assert report_for(s, COMMUNE_SIRET, "st1.json")["state"] == "IN_INTEGRE"
    assert f"{pid}.004.txt" in statuses(s, COMMUNE_SIRET)
    assert (s.outbox / COMMUNE_SIRET / "statuses" / f"{pid}.004.txt").read_text().splitlines()[1] == (
        f"{pid};SERVICE_FAIT;Service fait;reçu")
    assert statuses(s, "fournisseur") == [f"{pid}.{n:03d}.{ext}" for n in (3, 4) for ext in ("json", "xml")]

    # one outbox row per file; a crash before they were written: the next start writes them all again
    store = Store(s)
    with store.session() as ses:
        rows = ses.execute(Notice.__table__.select().where(Notice.piece_id == pid,
                                                           Notice.name == f"{pid}.004")).all()
        assert sorted((r.party, r.suffix) for r in rows) == [
            (COMMUNE_SIRET, ".json"), (COMMUNE_SIRET, ".txt"), (COMMUNE_SIRET, ".xml"),
            ("fournisseur", ".json"), ("fournisseur", ".xml")]
        ses.execute(update(Notice.__table__).where(Notice.name == f"{pid}.004").values(written_at=None))
        ses.commit()
    for party in (COMMUNE_SIRET, "fournisseur"):
        for f in (s.outbox / party / "statuses").glob("*.004.*"):
            f.unlink()
    run(s)
    assert f"{pid}.004.txt" in statuses(s, COMMUNE_SIRET)
    assert statuses(s, "fournisseur") == [f"{pid}.{n:03d}.{ext}" for n in (3, 4) for ext in ("json", "xml")]


def test_the_homes_formats_and_a_partys_own(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.OUTPUTS, "text", TextOutput())
    s = home_with(tmp_path / "home", '[statuses]\nformats = ["json"]\n[statuses.parties]\nacme = ["text", "json"]\n')
    assert [o.name for o in registry.outputs_for(s, "other")] == ["json"]
    assert [o.name for o in registry.outputs_for(s, "acme")] == ["json", "text"]  # the registry's order
    s = home_with(tmp_path / "home", "")
    assert [o.name for o in registry.outputs_for(s, "acme")] == ["cppstatut", "json"]  # today's default


def test_unknown_or_misshapen_format_names_are_refused(tmp_path, monkeypatch):
    s = home_with(tmp_path / "home", TEST_TOML + '[statuses]\nformats = ["cppstatut", "pdf"]\n'
                                                 '[statuses.parties]\nacme = ["xml"]\n')
    with pytest.raises(registry.UnknownFormat) as err:
        Gateway(s, once=True)
    msg = str(err.value)
    assert "[statuses] formats: unknown status-file format 'pdf'" in msg
    assert "[statuses.parties] acme: unknown status-file format 'xml'" in msg and "cppstatut, cdar, json" in msg
    with pytest.raises(registry.UnknownFormat):
        registry.outputs_for(s, "acme")
    for bad in ('[statuses]\nformats = [1]\n', '[statuses]\nparties = ["json"]\n',
                '[statuses.parties]\nacme = {json = true}\n'):
        with pytest.raises(ValueError, match=r"\[statuses"):
            home_with(tmp_path / "bad", bad)
    # from the environment, one name or a list
    monkeypatch.setenv("GATEWAY_STATUSES_FORMATS", "json")
    assert config.load(tmp_path / "home").status_formats == ("json",)
    monkeypatch.setenv("GATEWAY_STATUSES_FORMATS", "[JSON, cppstatut]")
    assert config.load(tmp_path / "home").status_formats == ("json", "cppstatut")

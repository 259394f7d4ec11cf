"""Directory: import of the platform's export and of services files, update in
place, bad rows with their line numbers, lookups, the `directory` CLI."""
from __future__ import annotations

import csv

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from gateway.core import config
from gateway.store import db
from gateway.rules import directory
from gateway.ops.cli.directory import app
from gateway.rules.directory import import_file, import_files
from gateway.store.tables import DirectoryStructure
from gateway.core.invoice import siret_error

import invoice_support as demo

HEADER = ("TypeIdentifiant;Identifiant;RaisonSociale;EmetteurEdi;RecepteurEdi;GestionStatutMiseEnPaiement;"
          "GestionEngagement;GestionService;GestionServiceEngagement;EstMOA;EstMOAUniquement;StructureActive;"
          "Adresse;ComplementAdresse1;ComplementAdresse2;CodePostal;Ville;NumTelephone;Courriel;CodePays;LibellePays")


def row(siret: str, name: str = "MAIRIE TEST", *, flags: str = "false;true;false;false;true;false;false;false;true",
        typ: str = "SIRET") -> str:
    return f"{typ};{siret};{name};{flags};1 rue X;;;99000;TESTVILLE;;;FR;FRANCE"


@pytest.fixture
def settings(tmp_path):
    return config.load(tmp_path / "home")


def write(tmp_path, name: str, lines: list[str], encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def count(settings) -> int:
    with db.engine(settings).connect() as conn:
        return conn.execute(select(func.count()).select_from(DirectoryStructure)).scalar()


def test_demo_directory_imports_and_answers_lookups(settings):
    assert not directory.directory_loaded(settings)
    structures, services = import_files(settings, reversed(directory.demo_files()))  # services given first
    assert (structures.kind, structures.created, structures.updated, structures.errors) == ("structures", 8, 0, ())
    assert (services.kind, services.created, services.errors) == ("services", 6, ())
    assert directory.directory_loaded(settings)

    commune = directory.find_structure(settings, demo.COMMUNE_SIRET)
    assert commune.raison_sociale == "COMMUNE DE VALBRUNE" and commune.active
    assert (commune.service_required, commune.engagement_required, commune.service_or_engagement) == (True, False, False)
    assert [(s.code, s.active, s.engagement_required) for s in commune.services] == [
        ("ACHATS", True, False), ("ANCIEN", False, False), ("VOIRIE", True, True)]
    assert commune.service("VOIRIE").name == "Voirie et réseaux"
    assert commune.service("NOPE") is None
    assert directory.find_structure(settings, demo.UNKNOWN_SIRET) is None


def test_demo_directory_covers_every_case(settings):
    import_files(settings, directory.demo_files())
    get = lambda siret: directory.find_structure(settings, siret)  # noqa: E731
    assert get(demo.HOPITAL_SIRET).engagement_required
    assert get(demo.DEPARTEMENT_SIRET).service_or_engagement
    u = get(demo.UNIVERSITE_SIRET)
    assert not (u.service_required or u.engagement_required or u.service_or_engagement)
    assert not get(demo.SYNDICAT_SIRET).active
    assert get(demo.OPH_MOA_SIRET).is_moa and get(demo.OPH_MOA_SIRET).moa_only
    assert not get(demo.DDT_MOE_SIRET).is_moa
    assert get(demo.TITULAIRE_SIRET).edi_emitter
    for siret in (demo.SUPPLIER_SIRET, demo.SUBCONTRACTOR_SIRET, demo.COTRAITANT_SIRET, demo.UNKNOWN_SIRET):
        assert siret_error(siret) is None and get(siret) is None
    with directory.demo_files()[0].open(encoding="utf-8") as fh:
        for rec in csv.DictReader(fh, delimiter=";"):
            assert siret_error(rec["Identifiant"]) is None


def test_import_again_updates_in_place(settings, tmp_path):
    first = write(tmp_path, "a.csv", [HEADER, row(demo.COMMUNE_SIRET), row(demo.HOPITAL_SIRET)])
    assert import_file(settings, first).created == 2
    changed = write(tmp_path, "b.csv", [
        HEADER, row(demo.COMMUNE_SIRET, "MAIRIE RENOMMEE", flags="false;true;false;true;false;false;false;false;false"),
        row(demo.UNIVERSITE_SIRET)])
    report = import_file(settings, changed)
    assert (report.created, report.updated, report.errors) == (1, 1, ())
    assert count(settings) == 3
    s = directory.find_structure(settings, demo.COMMUNE_SIRET)
    assert (s.raison_sociale, s.engagement_required, s.service_required, s.active) == (
        "MAIRIE RENOMMEE", True, False, False)


def test_header_case_accents_and_yes_no_words(settings, tmp_path):
    header = ("type identifiant;IDENTIFIANT;Raison sociale;Émetteur EDI;Récepteur EDI;gestion statut mise en paiement;"
              "Gestion engagement;Gestion service;Gestion service engagement;Est MOA;Est MOA uniquement;"
              "Structure active;Adresse;Complément adresse 1;Complément adresse 2;Code postal;Ville;"
              "Num téléphone;Courriel;Code pays;Libellé pays")
    line = f"SIRET;{demo.COMMUNE_SIRET};MAIRIE;non;OUI;0;Non;oui;1;vrai;faux;Oui;;;;99000;V;;;FR;FRANCE"
    report = import_file(settings, write(tmp_path, "h.csv", [header, line], encoding="cp1252"))
    assert report.errors == () and report.created == 1
    s = directory.find_structure(settings, demo.COMMUNE_SIRET)
    assert (s.edi_emitter, s.edi_receiver, s.engagement_required, s.service_required, s.service_or_engagement,
            s.is_moa, s.moa_only, s.active) == (False, True, False, True, True, True, False, True)


def test_bad_rows_are_reported_with_their_line_and_the_rest_imported(settings, tmp_path):
    lines = [
        HEADER,
        row(demo.COMMUNE_SIRET),                                    # 2 ok
        row("21990001600012"),                                      # 3 bad key
        row(demo.HOPITAL_SIRET, flags="false;peut-être;false;false;false;false;false;false;true"),  # 4 bad yes/no
        "SIRET;22990003000011;TROP COURT",                          # 5 column count
        "",                                                         # 6 blank: ignored
        row("", "SANS IDENTIFIANT"),                                # 7 empty id
        row("A1234", "STRUCTURE UE", typ="UE_HORS_FRANCE"),          # 8 ok: not a SIRET type
        row(demo.UNIVERSITE_SIRET),                                 # 9 ok
        row(demo.DEPARTEMENT_SIRET, "DEPAR\x00TEMENT"),             # 10 control character
        '"' + "x" * 200_000 + '"',                                  # 11 field over the csv limit
    ]
    report = import_file(settings, write(tmp_path, "bad.csv", lines))
    assert (report.created, report.updated) == (3, 0)
    assert [n for n, _ in report.errors] == [3, 4, 5, 7, 10, 11]
    messages = dict(report.errors)
    assert "not a valid SIRET" in messages[3]
    assert "RecepteurEdi" in messages[4] and "peut-être" in messages[4]
    assert "expected 21 columns, found 3" == messages[5]
    assert "Identifiant is empty" == messages[7]
    assert "control character" in messages[10] and "unreadable row" in messages[11]
    assert directory.find_structure(settings, "A1234").type_identifiant == "UE_HORS_FRANCE"


def test_services_file(settings, tmp_path):
    import_file(settings, write(tmp_path, "s.csv", [HEADER, row(demo.COMMUNE_SIRET)]))
    services = write(tmp_path, "svc.csv", [
        "identifiant;code service;Nom service;ACTIF;Engagement obligatoire",
        f"{demo.COMMUNE_SIRET};COMPTA;Comptabilité;oui;non",
        f"{demo.COMMUNE_SIRET};TECH;Services techniques;non;oui",
        f"{demo.HOPITAL_SIRET};ECO;Économat;oui;non",      # structure not imported
        f"{demo.COMMUNE_SIRET};;Sans code;oui;non",         # empty code
    ])
    report = import_file(settings, services)
    assert (report.kind, report.created, [n for n, _ in report.errors]) == ("services", 2, [4, 5])
    assert "import the structures file first" in report.errors[0][1]
    again = write(tmp_path, "svc2.csv", ["Identifiant;CodeService", f"{demo.COMMUNE_SIRET};TECH"])
    report = import_file(settings, again)  # optional columns take their defaults: active, no engagement
    assert (report.created, report.updated) == (0, 1)
    tech = directory.find_structure(settings, demo.COMMUNE_SIRET).service("TECH")
    assert (tech.active, tech.engagement_required, tech.name) == (True, False, "")


@pytest.mark.parametrize("lines, message", [
    (["Nom;Prenom", "a;b"], "header not recognised"),
    ([HEADER.replace(";StructureActive", "")], "missing column(s): StructureActive"),
    (["Identifiant;NomService", "1;2"], "header not recognised"),
    ([], "empty file"),
])
def test_unusable_files_are_refused_at_line_1(settings, tmp_path, lines, message):
    report = import_file(settings, write(tmp_path, "x.csv", lines))
    assert report.errors[0][0] in (1,) and message in report.errors[0][1]
    assert (report.created, report.updated) == (0, 0) and not directory.directory_loaded(settings)


def test_each_file_is_read_once(settings, tmp_path, monkeypatch):
    structures, services = directory.demo_files()
    reads: list[str] = []
    open_ = type(structures).open

    def counting_open(self, *a, **kw):  # noqa: ANN001, ANN202 - read_bytes opens through it too
        reads.append(self.name)
        return open_(self, *a, **kw)

    monkeypatch.setattr(type(structures), "open", counting_open)
    reports = import_files(settings, [services, structures])  # services given first
    assert [r.kind for r in reports] == ["structures", "services"] and all(r.ok for r in reports)
    assert sorted(reads) == ["directory.csv", "services.csv"]


def test_directory_loaded_asks_the_store_once_in_a_while(settings, monkeypatch):
    import_files(settings, directory.demo_files())
    assert directory.directory_loaded(settings)  # cached from here
    stats: list[str] = []
    exists = type(settings.home).exists
    monkeypatch.setattr(type(settings.home), "exists", lambda self: stats.append(self.name) or exists(self))
    for _ in range(3):
        assert directory.directory_loaded(settings)
    assert stats == []  # not a stat of the database file per piece


def test_missing_file_is_an_error_not_a_crash(settings, tmp_path):
    report = import_file(settings, tmp_path / "absent.csv")
    assert report.errors and report.errors[0][0] == 0 and "cannot read" in report.errors[0][1]


# --- CLI --------------------------------------------------------------------

def test_cli_import_and_show(tmp_path):
    runner = CliRunner()
    home = str(tmp_path / "home")
    structures, services = directory.demo_files()
    result = runner.invoke(app, ["import", str(structures), str(services), "--home", home])
    assert result.exit_code == 0, result.output
    assert "directory.csv" in result.output and "structures" in result.output

    result = runner.invoke(app, ["show", demo.COMMUNE_SIRET, "--home", home])
    assert result.exit_code == 0, result.output
    for text in ("COMMUNE DE VALBRUNE", "ACHATS", "VOIRIE", "ANCIEN", "Code service obligatoire"):
        assert text in result.output

    result = runner.invoke(app, ["show", demo.UNKNOWN_SIRET], env={"GATEWAY_HOME": home})
    assert result.exit_code == 1 and "not in the directory" in result.output

    result = runner.invoke(app, ["show", demo.UNIVERSITE_SIRET], env={"GATEWAY_HOME": home})
    assert result.exit_code == 0 and "No services listed" in result.output


def test_cli_import_reports_bad_rows_and_fails(tmp_path):
    bad = write(tmp_path, "bad.csv", [HEADER, row(demo.COMMUNE_SIRET), row("123")])
    result = CliRunner().invoke(app, ["import", str(bad), "--home", str(tmp_path / "home")])
    assert result.exit_code == 1
    assert "bad.csv:3" in result.output and "not a valid SIRET" in result.output


def test_cli_import_demo_and_nothing(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["import", "--demo", "--home", str(tmp_path / "home")])
    assert result.exit_code == 0 and "services.csv" in result.output
    assert directory.directory_loaded(config.load(tmp_path / "home"))
    assert runner.invoke(app, ["import", "--home", str(tmp_path / "home")]).exit_code != 0

"""Who may deposit what, end to end through folders (#16): structures and
their roles in a contract, declared with `gateway structure import`; a foreign
deposit refused; the same numbers at two suppliers linked to the right one;
a deposit made for the MOE with and without the actors' agreement;
co-contracting with the mandataire validating. SQLite and PostgreSQL."""
from __future__ import annotations

import json
import re

import pytest

from conftest import PgDatabase, REPO, codes_of, drop, gateway_cli, report_for
from gateway.core import config
from gateway.rules import directory
from gateway.runtime.service import Gateway
from gateway.store.repository import Store
from invoice_support import (COMMUNE_SIRET, COTRAITANT_SIRET, DDT_MOE_SIRET, OPH_MOA_SIRET,
                             SUPPLIER_SIRET, TITULAIRE_SIRET, UNIVERSITE_SIRET, ubl_invoice)

K1, K2 = "M-2026-014", "M-2026-099"
DECLARED = f"""
[[partner]]
name = "titulaire"
acts_for = ["{TITULAIRE_SIRET}"]
[[partner]]
name = "autre"
acts_for = ["{SUPPLIER_SIRET}"]
[[partner]]
name = "cotraitant"
acts_for = ["{COTRAITANT_SIRET}"]
[[partner]]
name = "ddt"
acts_for = ["{DDT_MOE_SIRET}"]
[[partner]]
name = "oph"
acts_for = [{{ siret = "{OPH_MOA_SIRET}", services = ["TRAVAUX"] }}]

[[contract]]
number = "{K1}"
actor = [{{ siret = "{TITULAIRE_SIRET}", role = "titulaire" }}, {{ siret = "{TITULAIRE_SIRET}", role = "mandataire" }},
         {{ siret = "{COTRAITANT_SIRET}", role = "cotraitant" }}, {{ siret = "{DDT_MOE_SIRET}", role = "moe" }},
         {{ siret = "{OPH_MOA_SIRET}", role = "moa", service = "TRAVAUX" }}]
[[contract]]
number = "{K2}"
actor = [{{ siret = "{SUPPLIER_SIRET}", role = "titulaire" }}, {{ siret = "{DDT_MOE_SIRET}", role = "moe" }},
         {{ siret = "{OPH_MOA_SIRET}", role = "moa" }}]
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gw(request, home, tmp_path):
    """A home with the demo directory and the contracts above, declared with the CLI."""
    pg = None
    if request.param == "postgres":
        pg = PgDatabase()
        with open(home.config_file, "a", encoding="utf-8") as fh:
            fh.write(f'[store]\ndatabase_url = "{pg.url}"\n')
        home = config.load(home.home)
    directory.import_files(home, directory.demo_files())
    f = tmp_path / "actors.toml"
    f.write_text(DECLARED, encoding="utf-8")
    out = gateway_cli("structure", "import", str(f), home=home)
    assert out.returncode == 0, out.stdout + out.stderr
    yield home
    if pg is not None:
        pg.close()


def deposit(settings, partner: str, name: str, data: bytes) -> dict:
    drop(settings, partner, name, data)
    Gateway(settings, once=True).run()
    return report_for(settings, partner, name)


def works(number: str, cadre: str, *, supplier: str = TITULAIRE_SIRET, contract: str = K1, **kw) -> bytes:
    return ubl_invoice(number=number, cadre=cadre, recipient_siret=OPH_MOA_SIRET, recipient_name="OPH de Valbrune",
                       service_code="TRAVAUX", supplier_siret=supplier, supplier_name="Exemple", contract=contract,
                       **kw)


def accepted(report: dict) -> str:
    assert report["state"] == "IN_INTEGRE", report
    return report["pieces"][0]["piece_id"]


def refused(report: dict, code: str) -> dict:
    assert report["state"] == "IN_REJETE", report
    (err,) = [e for e in report["pieces"][0]["errors"] if e["code"] == code]
    return err


def status_of(settings, pid: str) -> str:
    return Store(settings).piece(pid).status


def a4(settings, number: str, supplier: str = TITULAIRE_SIRET, contract: str = K1, partner: str = "titulaire") -> str:
    return accepted(deposit(settings, partner, f"{number}-{supplier}.xml",
                            works(number, "A4", supplier=supplier, contract=contract, moe_siret=DDT_MOE_SIRET)))


def test_a_foreign_deposit_is_refused_and_changes_nothing(gw):
    pdm = a4(gw, "PDM-5")
    # another supplier's partner closes the titulaire's statement: not the MOE of that contract
    err = refused(deposit(gw, "autre", "EA-F.xml", works("EA-F", "A15", original_invoice="PDM-5")), "REJ_ROLE")
    assert "maîtrise d'œuvre (MOE)" in err["message"] and K1 in err["message"] and err["value"] == K1
    # ... nor in its own contract, where it is the titulaire
    err = refused(deposit(gw, "autre", "EA-G.xml", works("EA-G", "A15", supplier=SUPPLIER_SIRET, contract=K2,
                                                         original_invoice="PDM-5")), "REJ_ROLE")
    assert f"{SUPPLIER_SIRET} as titulaire" in err["message"]
    # a partner [parties]-free but declared for another structure, in a contract nobody declared:
    # the A4 was not deposited to it
    out = gateway_cli("partner", "acts-for", "faux-moe", UNIVERSITE_SIRET, home=gw)
    assert out.returncode == 0, out.stderr
    err = refused(deposit(gw, "faux-moe", "EA-H.xml", works("EA-H", "A15", contract="AUTRE",
                                                            original_invoice="PDM-5")), "REJ_COH")
    assert "contract number" in err["message"]
    err = refused(deposit(gw, "faux-moe", "EA-I.xml", works("EA-I", "A15", original_invoice="PDM-5")), "REJ_ROLE")
    assert status_of(gw, pdm) == "MISE_A_DISPOSITION_MOE"
    # the refused numbers are free: the real MOE deposits EA-F and closes the statement
    ea = accepted(deposit(gw, "ddt", "EA-F2.xml", works("EA-F", "A15", original_invoice="PDM-5")))
    assert (status_of(gw, pdm), status_of(gw, ea)) == ("ASSOCIEE", "MISE_A_DISPOSITION_MOA")
    # `gateway validate --home --partner` says the same, read-only
    f = gw.home / "try.xml"
    f.write_bytes(works("EA-V", "A15", original_invoice="PDM-5"))
    out = gateway_cli("validate", "--json", "--home", str(gw.home), "--partner", "autre", str(f))
    assert out.returncode == 1 and "REJ_ROLE" in {e["code"] for e in json.loads(out.stdout)["errors"]}, out.stdout


def test_the_same_number_at_two_suppliers_links_each_to_its_own(gw):
    mine = a4(gw, "PDM-5")
    theirs = a4(gw, "PDM-5", supplier=SUPPLIER_SIRET, contract=K2, partner="autre")
    ea = accepted(deposit(gw, "ddt", "EA-1.xml", works("EA-1", "A15", original_invoice="PDM-5")))
    assert (status_of(gw, mine), status_of(gw, theirs)) == ("ASSOCIEE", "MISE_A_DISPOSITION_MOE")
    assert Store(gw).piece(ea).link_id == mine
    ea2 = accepted(deposit(gw, "ddt", "EA-2.xml", works("EA-2", "A15", supplier=SUPPLIER_SIRET, contract=K2,
                                                        original_invoice="PDM-5")))
    assert status_of(gw, theirs) == "ASSOCIEE" and Store(gw).piece(ea2).link_id == theirs
    # an A15 of one supplier naming the other's contract matches nothing: refused, saying what did not match
    a4(gw, "PDM-6", supplier=SUPPLIER_SIRET, contract=K2, partner="autre")
    err = refused(deposit(gw, "ddt", "EA-3.xml", works("EA-3", "A15", contract=K2, original_invoice="PDM-6")),
                  "REJ_COH")
    assert "supplier SIRET does not match" in err["message"]


def test_a_deposit_for_the_moe_needs_the_actors_agreement(gw):
    pdm = a4(gw, "PDM-7")
    err = refused(deposit(gw, "titulaire", "EA-7.xml", works("EA-7", "A15", original_invoice="PDM-7")), "REJ_ROLE")
    assert "maîtrise d'œuvre (MOE)" in err["message"] and status_of(gw, pdm) == "MISE_A_DISPOSITION_MOE"
    out = gateway_cli("structure", "agree", K1, "--by", "titulaire", "--for", "moe", home=gw)
    assert out.returncode == 0, out.stderr
    ea = accepted(deposit(gw, "titulaire", "EA-7b.xml", works("EA-7", "A15", original_invoice="PDM-7", note="again")))
    assert status_of(gw, pdm) == "ASSOCIEE"
    p = Store(gw).piece(ea)
    assert (p.partner, p.deposited_as, p.deposited_for) == ("titulaire", "titulaire", "maitrise_oeuvre")
    assert json.loads(p.parties_json)["moe"]["siret"] == DDT_MOE_SIRET  # the MOE stays a party
    out = gateway_cli("piece", ea, home=gw)
    assert "deposited by titulaire (titulaire) for the maitrise_oeuvre" in out.stdout, out.stdout
    # the MOE receives the A15's status files in its partner's folder, saying who deposited it for whom
    told = json.loads((gw.outbox / "ddt" / "statuses" / f"{ea}.002.json").read_text())["statuses"][0]
    assert (told["deposited_by"], told["deposited_for"]) == ("titulaire", "maitrise_oeuvre")
    assert "déposée par titulaire" in (gw.outbox / "ddt" / "statuses" / f"{ea}.002.xml").read_text()
    drop(gw, "oph", "moa.json", json.dumps({"statuses": [{"piece_id": ea, "status": "PRISE_EN_COMPTE_MOA"}]}).encode())
    Gateway(gw, once=True).run()
    assert report_for(gw, "oph", "moa.json")["state"] == "IN_INTEGRE"
    assert (gw.outbox / "ddt" / "statuses" / f"{ea}.003.json").exists()
    # the MOA's own deposit in the chain: its partner acts for the OPH in TRAVAUX only
    a19 = accepted(deposit(gw, "oph", "EAV-7.xml", works("EAV-7", "A19", original_invoice="EA-7")))
    assert status_of(gw, ea) == "ASSOCIEE" and status_of(gw, a19) == "MISE_A_DISPOSITION"


def test_co_contracting_with_the_mandataire_validating(gw):
    def a12(number: str, validator: str) -> bytes:
        return ubl_invoice(number=number, cadre="A12", supplier_siret=COTRAITANT_SIRET, contract=K1,
                           supplier_name="Cotraitant Exemple SARL", validator_siret=validator)

    pid = accepted(deposit(gw, "cotraitant", "CO-1.xml", a12("CO-1", TITULAIRE_SIRET)))
    assert status_of(gw, pid) == "A_VALIDER_1"
    assert (gw.outbox / "titulaire" / "_" / f"{pid}.pivot.xml").exists()  # the mandataire's partner's folder
    # a validator that is not the contract's mandataire; the mandataire depositing a cotraitant's invoice
    err = refused(deposit(gw, "cotraitant", "CO-2.xml", a12("CO-2", DDT_MOE_SIRET)), "REJ_ROLE")
    assert "mandataire" in err["message"] and err["value"] == DDT_MOE_SIRET
    err = refused(deposit(gw, "titulaire", "CO-3.xml", a12("CO-3", TITULAIRE_SIRET)), "REJ_ROLE")
    assert "co-contractor" in err["message"]
    # the cotraitant cannot validate its own invoice; the mandataire's partner does
    drop(gw, "cotraitant", "self.json", json.dumps({"statuses": [{"piece_id": pid, "status": "VALIDEE_1"}]}).encode())
    drop(gw, "titulaire", "ok.json", json.dumps({"statuses": [{"piece_id": pid, "status": "VALIDEE_1"}]}).encode())
    Gateway(gw, once=True).run()
    assert codes_of(report_for(gw, "cotraitant", "self.json")) == {"STATUT_NON_AUTORISE"}
    assert report_for(gw, "titulaire", "ok.json")["state"] == "IN_INTEGRE"
    assert status_of(gw, pid) == "MISE_A_DISPOSITION"
    assert (gw.outbox / COMMUNE_SIRET / "ACHATS" / f"{pid}.pivot.xml").exists()


def test_the_documented_example_file_imports(home):
    out = gateway_cli("structure", "import", str(REPO / "docs" / "examples" / "structures.toml"), home=home)
    assert out.returncode == 0 and "5 contract actor(s), 1 agreement(s)" in out.stdout, out.stdout + out.stderr
    out = gateway_cli("structure", "actor", "list", "M-2026-014", "--json", home=home)
    roles = {json.loads(x).get("role") for x in out.stdout.splitlines()}
    assert {"titulaire", "mandataire", "cotraitant", "maitrise_oeuvre", "maitrise_ouvrage"} <= roles
    bad = home.home / "bad.toml"
    bad.write_text('[[contract]]\nnumber = "X"\nactor = [{ siret = "49990010800014", role = "chef" }]\n')
    out = gateway_cli("structure", "import", str(bad), home=home)
    assert out.returncode == 2 and "contract X, actor #1: unknown role 'chef'" in out.stderr


def test_parties_in_gateway_toml_are_the_simple_case(tmp_path):
    """No contract declared: a partner `[parties]` declares deposits only as its SIRETs."""
    from conftest import TEST_TOML, home_with

    s = home_with(tmp_path / "h", TEST_TOML + f'[parties]\nfournisseur = ["{SUPPLIER_SIRET}"]\n')
    directory.import_files(s, directory.demo_files())
    accepted(deposit(s, "fournisseur", "ok.xml", ubl_invoice(number="FA-P-1", supplier_siret=SUPPLIER_SIRET)))
    err = refused(deposit(s, "fournisseur", "other.xml", ubl_invoice(number="FA-P-2", supplier_siret=TITULAIRE_SIRET)),
                  "REJ_ROLE")
    assert TITULAIRE_SIRET in err["message"] and SUPPLIER_SIRET in err["message"]


def test_the_deposit_rights_file_is_checked_when_loaded(tmp_path):
    from gateway.lifecycle.compiler import LifecycleError
    from gateway.lifecycle.machine import Machine
    from gateway.lifecycle.rights import compile_rights

    cadres = frozenset(Machine.load(None).cadres())
    for text, said in (('[cadres]\nA15 = ["chef"]\n', "A15: unknown role(s) chef"),
                       ('[cadres]\nA99 = ["titulaire"]\n', "A99: no such cadre"),
                       ('[droits]\n', "unknown section(s) droits")):
        with pytest.raises(LifecycleError, match=re.escape(said)):
            compile_rights(text, cadres=cadres)
    assert Machine.load(None).rights.roles("A19") == ("maitrise_ouvrage",)

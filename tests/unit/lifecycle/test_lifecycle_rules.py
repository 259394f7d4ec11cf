"""The life of a piece after delivery, as data (gateway/lifecycle/lifecycle.toml):
who may set which status, what the platform sets on its own, delays, links,
and a clear error when the file is wrong."""
from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.core import config
from gateway.lifecycle.compiler import LifecycleError
from gateway.lifecycle.machine import Machine, packaged_file
from gateway.lifecycle.terms import PARTIES, ROLES
from gateway.core.invoice import CADRES

GENERIC_ROUTE = ("EN_COURS_ACHEMINEMENT", "MISE_A_DISPOSITION")


@pytest.fixture(scope="module")
def m() -> Machine:
    return Machine.load(None)


def packaged_text() -> str:
    return packaged_file().read_text(encoding="utf-8")


def settings_with(tmp_path: Path, toml: str) -> config.Settings:
    root = tmp_path / "home"
    config.init_home(root)
    (root / "gateway.toml").write_text(toml, encoding="utf-8")
    return config.load(root)


# --- every cadre has a life ----------------------------------------------------------

def test_every_cadre_has_an_entry_that_reaches_someone(m):
    assert set(m.cadres()) >= CADRES and "A11" not in m.cadres()
    for cadre in sorted(CADRES, key=lambda c: int(c[1:])):
        for levels in (0, 1, 2):
            entry = m.entry(cadre, levels)
            assert entry[0] == "DEPOSEE", cadre
            last = entry[-1]
            assert not m.info(last).final and m.holder(cadre, last) not in (None, "platform"), (cadre, levels, entry)
        assert m.depositor(cadre) in PARTIES


def test_a_file_without_a_cadre_is_refused_naming_it(tmp_path):
    text = re.sub(r"\[cadres\.A7\]\n(.+\n)+?\n", "", packaged_text())
    assert "[cadres.A7]" not in text
    with pytest.raises(LifecycleError, match=r"cadres\.A7: missing"):
        Machine.from_text(text)


def test_what_the_platform_does_on_its_own_is_an_allowed_move(m):
    """entry, follow, deadlines and links are moves the platform may make, and only the platform."""
    for cadre in m.cadres():
        for levels in (0, 1, 2):
            seq = m.entry(cadre, levels)
            for a, b in zip(seq, seq[1:]):
                assert m.check(cadre=cadre, current=a, new=b, role="platform", reason=None) is None, (cadre, a, b)
        for info in m.statuses():
            for levels in (1, 2):
                seq = (info.name, *m.follow(cadre, info.name, levels))
                for a, b in zip(seq, seq[1:]):
                    assert m.check(cadre=cadre, current=a, new=b, role="platform", reason=None) is None
            dl = m.deadline(cadre, info.name)
            if dl:
                assert m.check(cadre=cadre, current=info.name, new=dl[1], role="platform", reason=None) is None
                f = m.check(cadre=cadre, current=info.name, new=dl[1], role="supplier", reason=None)
                assert f is not None and f.code == "STATUT_NON_AUTORISE"


def test_final_statuses_have_no_holder_and_no_way_out(m):
    finals = [s.name for s in m.statuses() if s.final]
    assert {"REJETEE", "MISE_EN_PAIEMENT", "REFUSEE_1", "REFUSEE_2", "REFUSEE_MOE", "REFUSEE_MOA", "ASSOCIEE"} <= set(finals)
    for cadre in m.cadres():
        for status in finals:
            assert m.holder(cadre, status) is None
            assert m.moves_from(cadre, status) == {}


# --- statuses: pivot numbers and CDV codes ---------------------------------------------

def test_documented_pivot_numbers_and_cdv_codes(m):
    documented = ["DEPOSEE", "EN_COURS_ACHEMINEMENT", "MISE_A_DISPOSITION", "A_RECYCLER", "REJETEE", "SUSPENDUE",
                  "SERVICE_FAIT", "MANDATEE", "MISE_A_DISPOSITION_COMPTABLE", "COMPTABILISEE", "MISE_EN_PAIEMENT",
                  "COMPLETEE"]
    assert [m.info(s).pivot_id for s in documented] == [f"{i:02d}" for i in range(1, 13)]
    pivots = [s.pivot_id for s in m.statuses()]
    assert len(set(pivots)) == len(pivots) and all(1 <= int(p) <= 41 for p in pivots)
    assert m.by_pivot("7") == m.by_pivot("07") == "SERVICE_FAIT" and m.by_pivot("99") is None
    assert {s: m.info(s).cdv for s in ("DEPOSEE", "MISE_A_DISPOSITION", "PRISE_EN_COMPTE_MOE", "SERVICE_FAIT",
                                        "SUSPENDUE", "COMPLETEE", "REJETEE", "MISE_EN_PAIEMENT")} == {
        "DEPOSEE": 200, "MISE_A_DISPOSITION": 203, "PRISE_EN_COMPTE_MOE": 204, "SERVICE_FAIT": 205,
        "SUSPENDUE": 208, "COMPLETEE": 209, "REJETEE": 210, "MISE_EN_PAIEMENT": 211}
    assert m.info("MANDATEE").cdv is None and m.info("REJETEE").cdv_label == "Refusée"
    assert m.info("REJETEE").final and m.info("REJETEE").needs_reason and not m.info("SERVICE_FAIT").needs_reason
    assert not m.known("VALIDATION_1_HORS_DELAI") and not m.known("MISE_A_DISPOSITION_PREMIER_VALIDEUR")


# --- who may set what ----------------------------------------------------------------------

MOVES = [
    # cadre, current, new, role, reason, expected code (None = allowed)
    ("A1", "MISE_A_DISPOSITION", "SERVICE_FAIT", "recipient", None, None),
    ("A1", "MISE_A_DISPOSITION", "MISE_EN_PAIEMENT", "recipient", None, None),
    ("A1", "MISE_A_DISPOSITION", "COMPLETEE", "recipient", None, "STATUT_INTERDIT"),
    ("A1", "SUSPENDUE", "COMPLETEE", "recipient", None, "STATUT_NON_AUTORISE"),
    ("A1", "SUSPENDUE", "COMPLETEE", "supplier", None, None),
    ("A1", "MISE_A_DISPOSITION", "MANDATEE", "supplier", None, "STATUT_NON_AUTORISE"),
    ("A1", "MISE_A_DISPOSITION", "REJETEE", "recipient", None, "STATUT_MOTIF"),
    ("A1", "MISE_A_DISPOSITION", "REJETEE", "recipient", "   ", "STATUT_MOTIF"),
    ("A1", "MISE_A_DISPOSITION", "REJETEE", "recipient", "Montant erroné", None),
    ("A1", "MISE_A_DISPOSITION", "SUSPENDUE", "recipient", None, "STATUT_MOTIF"),
    ("A1", "MISE_A_DISPOSITION", "SUSPENDUE", "recipient", "Bon de livraison manquant", None),
    ("A1", "MISE_A_DISPOSITION", "A_RECYCLER", "recipient", None, None),
    ("A1", "A_RECYCLER", "DEPOSEE", "supplier", None, None),
    ("A1", "A_RECYCLER", "DEPOSEE", "recipient", None, "STATUT_NON_AUTORISE"),
    ("A1", "REJETEE", "MISE_A_DISPOSITION", "platform", None, "STATUT_INTERDIT"),
    ("A1", "REJETEE", "COMPLETEE", "supplier", "x", "STATUT_INTERDIT"),
    ("A1", "MISE_EN_PAIEMENT", "COMPTABILISEE", "recipient", None, "STATUT_INTERDIT"),
    # the payment chain: forward, skipping allowed, never back
    ("A1", "SERVICE_FAIT", "MANDATEE", "recipient", None, None),
    ("A1", "SERVICE_FAIT", "COMPTABILISEE", "recipient", None, None),
    ("A1", "MANDATEE", "SERVICE_FAIT", "recipient", None, "STATUT_INTERDIT"),
    ("A1", "COMPTABILISEE", "MANDATEE", "recipient", None, "STATUT_INTERDIT"),
    ("A1", "SERVICE_FAIT", "REJETEE", "recipient", "x", "STATUT_INTERDIT"),
    ("A1", "MISE_A_DISPOSITION", "EN_COURS_ACHEMINEMENT", "platform", None, "STATUT_INTERDIT"),
    # validation
    ("A9", "A_VALIDER_1", "VALIDEE_1", "validator1", None, None),
    ("A9", "A_VALIDER_1", "VALIDEE_1", "recipient", None, "STATUT_NON_AUTORISE"),
    ("A9", "A_VALIDER_1", "REFUSEE_1", "validator1", None, "STATUT_MOTIF"),
    ("A9", "A_VALIDER_1", "REFUSEE_1", "validator1", "Travaux non réalisés", None),
    ("A9", "A_VALIDER_2", "VALIDEE_2", "validator1", None, "STATUT_NON_AUTORISE"),
    ("A9", "A_VALIDER_2", "VALIDEE_2", "validator2", None, None),
    ("A9", "A_VALIDER_1", "ERREUR_FOURNISSEUR_SUR_VALIDEUR", "validator1", None, None),
    ("A9", "ERREUR_FOURNISSEUR_SUR_VALIDEUR", "A_VALIDER_1", "supplier", None, None),
    ("A9", "MISE_A_DISPOSITION", "SERVICE_FAIT", "recipient", None, None),
    ("A12", "A_VALIDER_1", "VALIDEE_1", "validator1", None, None),
    ("A1", "MISE_A_DISPOSITION", "VALIDEE_1", "validator1", None, "STATUT_INTERDIT"),
    # public works
    ("A4", "MISE_A_DISPOSITION_MOE", "PRISE_EN_COMPTE_MOE", "moe", None, None),
    ("A4", "MISE_A_DISPOSITION_MOE", "REFUSEE_MOE", "moe", None, "STATUT_MOTIF"),
    ("A4", "MISE_A_DISPOSITION_MOE", "REFUSEE_MOE", "recipient", "x", "STATUT_NON_AUTORISE"),
    ("A4", "MISE_A_DISPOSITION_MOE", "ERREUR_DE_MOE", "moe", None, None),
    ("A4", "MISE_A_DISPOSITION_MOE", "SERVICE_FAIT", "recipient", None, "STATUT_INTERDIT"),
    ("A4", "PRISE_EN_COMPTE_MOE", "ASSOCIEE", "platform", None, None),
    ("A4", "PRISE_EN_COMPTE_MOE", "ASSOCIEE", "moe", None, "STATUT_NON_AUTORISE"),
    ("A15", "MISE_A_DISPOSITION_MOA", "PRISE_EN_COMPTE_MOA", "moa", None, None),
    ("A15", "MISE_A_DISPOSITION_MOA", "REFUSEE_MOA", "moa", "x", None),
    ("A15", "MISE_A_DISPOSITION_MOA", "PRISE_EN_COMPTE_MOA", "moe", None, "STATUT_NON_AUTORISE"),
    ("A19", "MISE_A_DISPOSITION", "MANDATEE", "recipient", None, None),
    ("A19", "SUSPENDUE", "COMPLETEE", "moa", None, None),  # the MOA deposited it, so completes it
    ("A19", "SUSPENDUE", "COMPLETEE", "supplier", None, "STATUT_NON_AUTORISE"),
    ("A20", "A_ASSOCIER_FOURNISSEUR", "REFUSEE_FOURNISSEUR", "supplier", "désaccord", None),
    # nonsense
    ("A1", "MISE_A_DISPOSITION", "PAYEE", "recipient", None, "STATUT_INCONNU"),
    ("A1", "MISE_A_DISPOSITION", "SERVICE_FAIT", "mayor", None, "STATUT_NON_AUTORISE"),
    ("A11", "MISE_A_DISPOSITION", "SERVICE_FAIT", "recipient", None, "STATUT_INTERDIT"),
]


@pytest.mark.parametrize("cadre,current,new,role,reason,expected", MOVES)
def test_who_may_set_what(m, cadre, current, new, role, reason, expected):
    f = m.check(cadre=cadre, current=current, new=new, role=role, reason=reason)
    if expected is None:
        assert f is None, f
    else:
        assert f is not None and f.code == expected, f
        assert f.value == new and f.message and f.message_fr and f.message != f.message_fr


def test_a_refusal_says_what_is_allowed_instead(m):
    f = m.check(cadre="A1", current="SUSPENDUE", new="COMPLETEE", role="recipient", reason=None)
    assert "Only supplier" in f.message and "fournisseur" in f.message_fr
    f = m.check(cadre="A1", current="MANDATEE", new="SERVICE_FAIT", role="recipient", reason=None)
    assert "from MANDATEE, recipient may set MISE_A_DISPOSITION_COMPTABLE, COMPTABILISEE, MISE_EN_PAIEMENT" in f.message
    f = m.check(cadre="A9", current="A_VALIDER_2", new="VALIDEE_2", role="validator1", reason=None)
    assert "validator1 may set nothing" in f.message and "validator2: VALIDEE_2" in f.message
    f = m.check(cadre="A1", current="REJETEE", new="SERVICE_FAIT", role="recipient", reason=None)
    assert "final" in f.message and "final" in f.message_fr


# --- entry, follow, holder, deadline, link, notify ---------------------------------------

def test_a1(m):
    assert m.entry("A1", 0) == ("DEPOSEE", *GENERIC_ROUTE)
    assert m.follow("A1", "DEPOSEE", 0) == GENERIC_ROUTE  # a recycled piece is routed again
    assert m.follow("A1", "COMPLETEE", 0) == ("MISE_A_DISPOSITION",)
    assert m.follow("A1", "SERVICE_FAIT", 0) == ()
    assert [m.holder("A1", s) for s in ("MISE_A_DISPOSITION", "SUSPENDUE", "A_RECYCLER", "SERVICE_FAIT",
                                         "REJETEE")] == ["recipient", "supplier", "supplier", "recipient", None]
    assert m.deadline("A1", "MISE_A_DISPOSITION") is None and m.link("A1") is None
    assert set(m.notify("A1", "REJETEE")) >= {"supplier", "recipient"} and "platform" not in m.notify("A1", "REJETEE")


@pytest.mark.parametrize("cadre", ["A9", "A12"])
def test_validated_cadres(m, cadre):
    assert m.entry(cadre, 1) == m.entry(cadre, 2) == ("DEPOSEE", "A_VALIDER_1")
    assert m.entry(cadre, 0) == ("DEPOSEE", *GENERIC_ROUTE)
    for done in ("VALIDEE_1", "ABSENCE_VALIDATION_1_HORS_DELAI"):
        assert m.follow(cadre, done, 1) == GENERIC_ROUTE
        assert m.follow(cadre, done, 2) == ("A_VALIDER_2",)
    assert m.follow(cadre, "VALIDEE_2", 2) == m.follow(cadre, "ABSENCE_VALIDATION_2_HORS_DELAI", 2) == GENERIC_ROUTE
    assert m.holder(cadre, "A_VALIDER_1") == "validator1" and m.holder(cadre, "A_VALIDER_2") == "validator2"
    assert m.holder(cadre, "ERREUR_FOURNISSEUR_SUR_VALIDEUR") == "supplier"
    assert m.deadline(cadre, "A_VALIDER_1") == (timedelta(days=15), "ABSENCE_VALIDATION_1_HORS_DELAI")
    assert m.deadline(cadre, "A_VALIDER_2") == (timedelta(days=15), "ABSENCE_VALIDATION_2_HORS_DELAI")
    assert m.deadline(cadre, "MISE_A_DISPOSITION") is None
    assert "recipient" not in m.notify(cadre, "A_VALIDER_1") and "validator1" in m.notify(cadre, "A_VALIDER_1")
    assert "recipient" in m.notify(cadre, "MISE_A_DISPOSITION")


def test_a4_goes_to_the_moe_then_is_linked_by_an_a15(m):
    assert m.entry("A4", 0) == ("DEPOSEE", "MISE_A_DISPOSITION_MOE")
    assert m.holder("A4", "MISE_A_DISPOSITION_MOE") == "moe" and m.holder("A4", "PRISE_EN_COMPTE_MOE") == "moe"
    assert m.deadline("A4", "MISE_A_DISPOSITION_MOE") == (timedelta(days=7), "ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE")
    assert m.follow("A4", "ERREUR_DE_MOE", 0) == ("A_RECYCLER",) and m.holder("A4", "A_RECYCLER") == "supplier"
    assert m.follow("A4", "DEPOSEE", 0) == ("MISE_A_DISPOSITION_MOE",)
    assert m.follow("A4", "COMPLETEE", 0) == ("MISE_A_DISPOSITION_MOE",)
    assert m.link("A4") is None
    link = m.link("A15")
    assert link.cadre == "A15" and "A4" in link.links_to and link.linked_status == "ASSOCIEE"
    assert "PRISE_EN_COMPTE_MOE" in link.from_statuses


def test_a10_is_validated_then_goes_to_the_moe(m):
    assert m.entry("A10", 1) == ("DEPOSEE", "A_VALIDER_1")
    assert m.follow("A10", "VALIDEE_1", 1) == ("MISE_A_DISPOSITION_MOE",)


def test_a15_goes_to_the_moa_and_is_continued_by_an_a19(m):
    assert m.depositor("A15") == "moe"
    assert m.entry("A15", 0) == ("DEPOSEE", "MISE_A_DISPOSITION_MOA")
    assert m.holder("A15", "MISE_A_DISPOSITION_MOA") == "moa"
    assert m.follow("A15", "ERREUR_DE_MOA", 0) == ("A_RECYCLER",) and m.holder("A15", "A_RECYCLER") == "moe"
    assert m.deadline("A15", "MISE_A_DISPOSITION_MOA") is None
    link = m.link("A19")
    assert "A15" in link.links_to and link.linked_status == "ASSOCIEE"
    assert m.check(cadre="A15", current="PRISE_EN_COMPTE_MOA", new="ASSOCIEE", role="platform", reason=None) is None


def test_a19_to_the_service_financier(m):
    assert m.depositor("A19") == "moa"
    assert m.entry("A19", 0) == ("DEPOSEE", *GENERIC_ROUTE)
    assert m.holder("A19", "MISE_A_DISPOSITION") == "recipient" and m.holder("A19", "SUSPENDUE") == "moa"


def test_end_of_contract_chain_links(m):
    assert "A7" in m.link("A17").links_to and "A17" in m.link("A20").links_to and "A20" in m.link("A8").links_to
    assert m.entry("A20", 0) == ("DEPOSEE", "A_ASSOCIER_FOURNISSEUR")
    assert m.holder("A20", "A_ASSOCIER_FOURNISSEUR") == "supplier"
    assert m.check(cadre="A20", current="A_ASSOCIER_FOURNISSEUR", new="ASSOCIEE", role="platform", reason=None) is None


# --- settings ------------------------------------------------------------------------------

def test_delays_are_overridden_by_the_settings(tmp_path, m):
    s = settings_with(tmp_path, "[lifecycle]\ndelays = { A_VALIDER_1 = 3, MISE_A_DISPOSITION_MOE = 0.5 }\n")
    mine = Machine.load(s)
    assert mine.deadline("A9", "A_VALIDER_1") == (timedelta(days=3), "ABSENCE_VALIDATION_1_HORS_DELAI")
    assert mine.deadline("A4", "MISE_A_DISPOSITION_MOE")[0] == timedelta(hours=12)
    assert mine.deadline("A9", "A_VALIDER_2")[0] == timedelta(days=15)
    assert m.deadline("A9", "A_VALIDER_1")[0] == timedelta(days=15)  # the shared default is untouched


@pytest.mark.parametrize("toml,key", [
    ("[lifecycle]\ndelays = { A_VALIDER_1 = -1 }\n", "delays.A_VALIDER_1"),
    ("[lifecycle]\ndelays = { A_VALIDER_9 = 3 }\n", "delays.A_VALIDER_9"),
    ("[lifecycle]\ndelays = 3\n", "delays"),
    ("[lifecycle]\nfile = \"nowhere.toml\"\n", "[lifecycle] file"),
])
def test_bad_settings_are_named(tmp_path, toml, key):
    with pytest.raises(LifecycleError) as err:
        Machine.load(settings_with(tmp_path, toml))
    assert key in str(err.value)


def test_a_file_of_the_home_replaces_the_packaged_one_and_reloads_when_changed(tmp_path):
    s = settings_with(tmp_path, '[lifecycle]\nfile = "my-lifecycle.toml"\n')
    mine = s.home / "my-lifecycle.toml"
    mine.write_text(packaged_text().replace("A_VALIDER_1 = 15", "A_VALIDER_1 = 20"), encoding="utf-8")
    first = Machine.load(s)
    assert first.deadline("A9", "A_VALIDER_1")[0] == timedelta(days=20)
    assert Machine.load(s) is first  # cached
    mine.write_text(packaged_text().replace("A_VALIDER_1 = 15", "A_VALIDER_1 = 21"), encoding="utf-8")
    os.utime(mine, (1, 1))  # a different mtime even on a coarse clock
    assert Machine.load(s).deadline("A9", "A_VALIDER_1")[0] == timedelta(days=21)


# --- a malformed file is an error naming the key --------------------------------------------

@pytest.mark.parametrize("old,new,key", [
    ('REJETEE = { pivot = "05"', 'REJETEE = { pivot = "5"', "statuses.REJETEE.pivot"),
    ('REJETEE = { pivot = "05"', 'REJETEE = { pivot = "04"', "statuses.REJETEE.pivot"),  # duplicate number
    ('SERVICE_FAIT = { pivot = "07", cdv = 205', 'SERVICE_FAIT = { pivot = "07", cdv = 299', "statuses.SERVICE_FAIT.cdv"),
    ('label = "Déposée" }', 'label = "Déposée", colour = "blue" }', "statuses.DEPOSEE.colour"),
    ('to = ["PRISE_EN_COMPTE_DESTINATAIRE", "SUSPENDUE"', 'to = ["PRISE_EN_COMPTE_DESTINATAIRE", "SUSPENDU"',
     "circuits.generic.moves[0].to[1]"),
    ('by = "validator1"\nfrom = ["A_VALIDER_1"]', 'by = "validateur"\nfrom = ["A_VALIDER_1"]', "circuits.validation.moves[0].by"),
    ('circuits = ["works_moe"]      # the MOE', 'circuits = ["works_moe", "nope"]      # the MOE', "cadres.A7.circuits[1]"),
    ("A_VALIDER_2 = 15", "A_VALIDER_2 = true", "delays.A_VALIDER_2"),
    ("A_VALIDER_2 = 15 ", "", "delays.A_VALIDER_2"),  # a deadline without its delay
    (', MISE_A_DISPOSITION = "recipient"', "", "holders.MISE_A_DISPOSITION"),  # a status nobody holds
    ('from = ["SUSPENDUE"]\nto = ["COMPLETEE"]', 'from = ["REJETEE"]\nto = ["COMPLETEE"]', "REJETEE is final"),
    ("version = 1", "version = 2", "version"),
    ('correction = ["recipient_siret"', 'correction = ["recipient_name"', "circuits.generic.moves[4].correction[0]"),
    ('link = { to = ["A4", "A10", "A13"], status = "ASSOCIEE"', 'link = { to = ["A4", "A99", "A13"], status = "ASSOCIEE"',
     "cadres.A15.link.to[1]"),
])
def test_malformed_file_names_the_key(old, new, key):
    text = packaged_text()
    assert old in text, old
    with pytest.raises(LifecycleError) as err:
        Machine.from_text(text.replace(old, new, 1), source="lifecycle.toml")
    assert key in str(err.value) and "lifecycle.toml" in str(err.value)


def test_not_toml_at_all():
    with pytest.raises(LifecycleError, match="not valid TOML"):
        Machine.from_text("[statuses\nDEPOSEE = ")


def test_roles_are_the_documented_ones():
    doc = (Path(__file__).resolve().parents[3] / "docs" / "lifecycle.md").read_text(encoding="utf-8")
    table = doc.split("## Roles", 1)[1].split("\n## ", 1)[0]
    assert ROLES == tuple(re.findall(r"^\| `(\w+)` \|", table, re.M))


def test_the_reference_documents_every_status_and_cadre(m):
    doc = (Path(__file__).resolve().parents[3] / "docs" / "lifecycle.md").read_text(encoding="utf-8")
    missing = [s.name for s in m.statuses() if f"`{s.name}`" not in doc]
    assert not missing, missing
    assert all(re.search(rf"\b{c}\b", doc) for c in m.cadres())


# --- corrections ----------------------------------------------------------------------------------

def test_a_correction_goes_only_with_the_moves_marked_for_it(m):
    """A correction rewrites where a piece goes: a recipient taking a piece
    into account must not re-address it, a validator correction must not
    change the recipient."""
    def check(cadre, current, new, role, *keys, reason=None):
        return m.check(cadre=cadre, current=current, new=new, role=role, reason=reason, correction=keys)

    assert check("A1", "MISE_A_DISPOSITION", "PRISE_EN_COMPTE_DESTINATAIRE", "recipient") is None
    refused = check("A1", "MISE_A_DISPOSITION", "PRISE_EN_COMPTE_DESTINATAIRE", "recipient", "recipient_siret")
    assert refused.code == "STATUT_INTERDIT" and "recipient_siret" in refused.message and refused.message_fr
    assert check("A1", "A_RECYCLER", "DEPOSEE", "supplier", "recipient_siret", "service_code") is None
    assert check("A1", "A_RECYCLER", "DEPOSEE", "supplier", "moe_siret").code == "STATUT_INTERDIT"
    assert check("A4", "A_RECYCLER", "DEPOSEE", "supplier", "moe_siret", "recipient_siret") is None
    assert check("A15", "A_RECYCLER", "DEPOSEE", "moe", "service_code") is None
    assert check("A9", "ERREUR_FOURNISSEUR_SUR_VALIDEUR", "A_VALIDER_1", "supplier", "validator_siret") is None
    refused = check("A9", "ERREUR_FOURNISSEUR_SUR_VALIDEUR", "A_VALIDER_1", "supplier", "recipient_siret")
    assert refused.code == "STATUT_INTERDIT" and "validator_siret" in refused.message
    assert check("A12", "ERREUR_COTRAITANT_SUR_VALIDEUR", "A_VALIDER_2", "validator1", "validator2_siret") is None
    # the other checks come first: a move nobody may make is refused as such
    assert check("A1", "MISE_A_DISPOSITION", "DEPOSEE", "supplier", "recipient_siret").code in (
        "STATUT_INTERDIT", "STATUT_NON_AUTORISE")
    # only recycling and the validator corrections, in every cadre
    for cadre in m.cadres():
        for (current, new, _role), keys in m.rules(cadre).corrections.items():
            assert (current, new) in {("A_RECYCLER", "DEPOSEE"), ("ERREUR_FOURNISSEUR_SUR_VALIDEUR", "A_VALIDER_1"),
                                      ("ERREUR_COTRAITANT_SUR_VALIDEUR", "A_VALIDER_2")} and keys, (cadre, current)

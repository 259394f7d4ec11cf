"""Status files in (CPPStatut / CPPFactureStatuts XML, JSON) and out: what a
partner asks is read with locations, hostile input is refused with a code, and
what the gateway writes is valid against the platform's XSD and reads back."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from lxml import etree

from conftest import AIFE_XSD
from gateway.core import config
from gateway.lifecycle import status_in, status_in_json, status_in_xml
from gateway.lifecycle.machine import Machine
from gateway.lifecycle.status_in import is_status_file, parse_status_file, status_xsd
from gateway.outputs.reports import flux_status_xml
from gateway.outputs.status_cppstatut import status_xml
from gateway.outputs.status_files import StatusFileError, StatusNotice
from gateway.outputs.status_json import status_json
from invoice_support import COMMUNE_SIRET, SUBCONTRACTOR_SIRET, SUPPLIER_SIRET, ubl_invoice

XSD = AIFE_XSD / "CPPStatutPivot_V1_19.xsd"
PIECE = "F20261122091501-1a2b3c4d-001"
AT = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def m() -> Machine:
    return Machine.load(None)


@pytest.fixture(scope="module")
def schema():
    if not XSD.exists():
        pytest.skip(f"status XSD not found at {XSD} (shared spec folder missing)")
    return etree.XMLSchema(etree.parse(str(XSD)))


# --- building XML status files as a recipient's software would -----------------------

ENVELOPE = """<Enveloppe><EnveloppeUnitaire NumOrdre="1"><Parametres>
<ParametreIndiv NumOrdre="0001"><Code>DtPrd</Code><Valeurparametre>2026-03-02</Valeurparametre></ParametreIndiv>
<ParametreIndiv NumOrdre="0002"><Code>IdFlx</Code><Valeurparametre>ERP-42</Valeurparametre></ParametreIndiv>
</Parametres><Partenaires><Recepteur><Id>GTW001</Id></Recepteur><Emetteur><Id>COMMUNE</Id></Emetteur></Partenaires>
</EnveloppeUnitaire></Enveloppe>"""


def unit(status: str = "07", *, facture: str = "FA-2026-0001", supplier: str = SUPPLIER_SIRET, debtor: str = COMMUNE_SIRET,
         comment: str | None = None, complement: str | None = None, at: str = "2026-03-02T09:30:00",
         data_extra: str = "", raw_data: str | None = None) -> str:
    data = raw_data if raw_data is not None else (
        f"<IdStatut>{status}</IdStatut>"
        + (f"<ComplementStatut>{complement}</ComplementStatut>" if complement else "")
        + (f"<Commentaire>{comment}</Commentaire>" if comment else "")
        + f"<Horodatage>{at}</Horodatage>{data_extra}<IdFacture>{facture}</IdFacture>")
    return (f"<CPPFactureStatutUnitaire>\n<Fournisseur><TypeIdentifiant>1</TypeIdentifiant><Identifiant>{supplier}"
            f"</Identifiant><RaisonSociale>Fournitures Exemple</RaisonSociale></Fournisseur>\n"
            f"<Debiteur><TypeIdentifiant>1</TypeIdentifiant><Identifiant>{debtor}</Identifiant></Debiteur>\n"
            f"<DonneesStatut>{data}</DonneesStatut>\n</CPPFactureStatutUnitaire>\n")


def cpp(*units: str, envelope: str = ENVELOPE) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<CPPStatut Version="1.19">\n' + envelope
            + "\n<CPPFactureStatuts>\n" + "".join(units) + "</CPPFactureStatuts>\n</CPPStatut>\n").encode("utf-8")


def xsd_valid(schema, data: bytes) -> bool:
    return schema.validate(etree.fromstring(data))


def codes_of(findings) -> list[str]:
    return [f.code for f in findings]


# --- XML in --------------------------------------------------------------------------------

def test_xml_status_changes_are_read_with_their_location(m, schema):
    data = cpp(unit("7"), unit("05", comment="Montant erroné", facture=PIECE), unit("10", comment="lot 3"))
    assert is_status_file(data) and xsd_valid(schema, data)
    requests, findings = parse_status_file(data, m)
    assert findings == []
    first, second, third = requests
    assert (first.index, first.status, first.invoice_number, first.supplier_id, first.piece_id) == (
        1, "SERVICE_FAIT", "FA-2026-0001", SUPPLIER_SIRET, None)
    assert first.at == datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc) and first.debtor_siret == COMMUNE_SIRET
    # IdFacture holding the gateway's piece id names the piece directly
    assert (second.status, second.piece_id, second.invoice_number) == ("REJETEE", PIECE, None)
    # one text in the XML: the motif of a status that needs one, else a comment
    assert (second.reason, second.comment) == ("Montant erroné", None)
    assert (third.status, third.reason, third.comment) == ("COMPTABILISEE", None, "lot 3")
    assert third.location.xpath == "/CPPStatut/CPPFactureStatuts/CPPFactureStatutUnitaire[3]"
    starts = [n for n, line in enumerate(data.decode().splitlines(), 1) if line == "<CPPFactureStatutUnitaire>"]
    assert [r.location.line for r in requests] == starts


def test_a_bad_unit_is_refused_and_the_others_still_read(m, schema):
    data = cpp(unit("07"), unit("41"), unit("08", raw_data="<IdStatut>08</IdStatut><Horodatage>2026-03-02T09:30:00"
                                                          "</Horodatage>"), unit("11"))
    assert not xsd_valid(schema, data)
    requests, findings = parse_status_file(data, m)
    assert [r.index for r in requests] == [1, 4]
    unknown, missing = findings
    assert unknown.code == "STATUT_INCONNU" and unknown.value == "41"
    assert unknown.location.xpath == "/CPPStatut/CPPFactureStatuts/CPPFactureStatutUnitaire[2]/DonneesStatut/IdStatut"
    assert unknown.location.line is not None
    assert missing.code == "IRR_SYNTAX" and "IdFacture is missing" in missing.message and "IdFacture" in missing.message_fr
    assert missing.location.xpath == "/CPPStatut/CPPFactureStatuts/CPPFactureStatutUnitaire[3]/DonneesStatut"


@pytest.mark.parametrize("bad,words", [
    (unit(raw_data="<Horodatage>2026-03-02T09:30:00</Horodatage><IdStatut>07</IdStatut><IdFacture>F</IdFacture>"),
     "IdStatut must come before Horodatage"),
    (unit(debtor="2199000160001"), "debtor SIRET is 14 characters"),
    (unit(at="02/03/2026"), "Horodatage is an xs:dateTime"),
    (unit(at="2026-03-02"), "Horodatage is an xs:dateTime"),
    (unit(at="2026-13-45T25:00:00"), "Horodatage is an xs:dateTime"),
    (unit(data_extra="<DateFacture>2026-02-30</DateFacture>").replace("<DateFacture>2026-02-30</DateFacture><IdFacture>FA-2026-0001</IdFacture>", "<IdFacture>FA-2026-0001</IdFacture><DateFacture>2026-02-30</DateFacture>"), "DateFacture is an xs:date"),
    (unit("abc"), "IdStatut is a number from 01 to 41"),
    (unit("42"), "IdStatut is a number from 01 to 41"),
    (unit().replace("<TypeIdentifiant>1</TypeIdentifiant><Identifiant>2199", "<TypeIdentifiant>2</TypeIdentifiant>"
                                                                           "<Identifiant>2199"), "debtor id type is 1"),
    (unit().replace("<RaisonSociale>Fournitures Exemple</RaisonSociale>", ""), "RaisonSociale is missing"),
    (unit(data_extra="<IdFacture>X</IdFacture>"), "IdFacture may appear at most 1"),
    (unit(data_extra="<Inconnu/>"), "unexpected element Inconnu"),
    (unit(data_extra='<Producteur Id="ERP"><Signe/></Producteur>'), "Producteur holds elements"),
    (unit().replace("<Fournisseur>", "<Fournisseur>texte"), "text is not allowed"),
])
def test_structure_is_checked_as_the_xsd_would(m, schema, bad, words):
    data = cpp(bad)
    assert not xsd_valid(schema, data)  # our checks are never stricter than the platform's schema
    requests, findings = parse_status_file(data, m)
    assert requests == [] and findings[0].code == "IRR_SYNTAX"
    assert words in findings[0].message and findings[0].message_fr, findings[0].message
    assert findings[0].location.xpath.startswith("/CPPStatut/CPPFactureStatuts/CPPFactureStatutUnitaire[1]")


def test_a_broken_envelope_refuses_the_whole_file(m, schema):
    one_param = ENVELOPE.split('<ParametreIndiv NumOrdre="0002">')[0] + "</Parametres>" + ENVELOPE.split("</Parametres>")[1]
    for data in (cpp(unit(), envelope=one_param), cpp(unit(), envelope=ENVELOPE.replace("<Id>COMMUNE</Id>", "<Id>C</Id>")),
                 cpp(unit(), envelope="")):
        assert not xsd_valid(schema, data)
        requests, findings = parse_status_file(data, m)
        assert requests == [] and findings and all(f.code == "IRR_SYNTAX" for f in findings)
        assert findings[0].location.xpath.startswith("/CPPStatut")


def test_status_number_and_name_must_agree(m):
    ok, _ = parse_status_file(cpp(unit("06", complement="SUSPENDUE", comment="PV manquant")), m)
    assert ok[0].status == "SUSPENDUE" and ok[0].reason == "PV manquant"
    free, _ = parse_status_file(cpp(unit("06", complement="Attente du PV")), m)  # free text is fine
    assert free[0].status == "SUSPENDUE"
    requests, findings = parse_status_file(cpp(unit("05", complement="SUSPENDUE")), m)
    assert requests == [] and codes_of(findings) == ["STATUT_INCONNU"] and findings[0].value == "SUSPENDUE"


def test_a_flow_report_is_not_a_status_change(m):
    report = {"processed_at": "2026-03-02T09:30:00Z", "flow_id": "F1", "partner": "ACME", "flux_status": "90",
              "state": "IN_INTEGRE", "file": "a.xml", "pieces": [], "errors": []}
    data = flux_status_xml(report)
    assert not is_status_file(data)
    requests, findings = parse_status_file(data, m)
    assert requests == [] and codes_of(findings) == ["IRR_SYNTAX"] and "CPPFluxStatuts" in findings[0].message


def test_namespaced_elements_are_refused(m, schema):
    data = cpp(unit()).replace(b"<CPPStatut ", b'<CPPStatut xmlns="urn:x" ')
    assert not xsd_valid(schema, data)
    requests, findings = parse_status_file(data, m)
    assert requests == [] and codes_of(findings) == ["IRR_SYNTAX"] and "CPPStatut" in findings[0].message


def test_the_platform_schema_is_used_when_given(m, tmp_path):
    if not XSD.exists():
        pytest.skip("status XSD missing")
    # our light checks leave attributes alone; the schema wants NumOrdre to be a number
    data = cpp(unit("07"), unit("08").replace("<CPPFactureStatutUnitaire>", '<CPPFactureStatutUnitaire NumOrdre="deux">'))
    requests, findings = parse_status_file(data, m)
    assert [r.index for r in requests] == [1, 2] and findings == []
    requests, findings = parse_status_file(data, m, xsd=XSD)
    assert [r.index for r in requests] == [1]
    assert codes_of(findings) == ["IRR_SYNTAX"] and "NumOrdre" in findings[0].message and findings[0].location.line
    # a deployment gives it through its schema folders
    root = tmp_path / "home"
    config.init_home(root)
    (root / "gateway.toml").write_text(f'[validation]\nschema_dirs = ["{AIFE_XSD.parent}"]\n', encoding="utf-8")
    assert status_xsd(config.load(root)) == XSD
    assert status_xsd(config.load(tmp_path / "bare")) == XSD  # the one shipped in schemas/aife


# --- hostile and broken input ----------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol9 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<CPPStatut><CPPFactureStatuts>&lol9;</CPPFactureStatuts></CPPStatut>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<CPPStatut><CPPFactureStatuts>&x;</CPPFactureStatuts></CPPStatut>"""


@pytest.mark.parametrize("data,code", [
    (BILLION_LAUGHS, "IRR_SYNTAX"),
    (XXE, "IRR_SYNTAX"),
    (cpp(unit())[:300], "IRR_SYNTAX"),
    (b"\x00\x01\x02garbage\xff", "IRR_TYPE_F"),
    (b"%PDF-1.7\n", "IRR_TYPE_F"),
    (b"   \n", "IRR_VIDE_F"),
    (b"<CPPStatut>" + "é".encode("latin-1") + b"</CPPStatut>", "IRR_SYNTAX"),
    (b'{"statuses": [', "IRR_SYNTAX"),
    (b"[" * 100_000 + b"]" * 100_000, "IRR_SYNTAX"),
    (b'{"statuses": [{"status": "SERVICE_FAIT", "piece_id": ' + b"9" * 50_000 + b"}]}", "IRR_SYNTAX"),
    (b'{"statuses": "all"}', "IRR_SYNTAX"),
    (b'{"statuses": []}', "IRR_VIDE_F"),
    (b'{"statuts": [{"status": "SERVICE_FAIT"}]}', "IRR_SYNTAX"),
    ('{"statuses": []}'.encode("utf-16"), "IRR_SYNTAX"),
])
def test_hostile_or_broken_files_get_a_code_not_a_crash(m, data, code):
    t0 = time.monotonic()
    requests, findings = parse_status_file(data, m)
    assert time.monotonic() - t0 < 2.0
    assert requests == [] and findings and findings[0].code == code, findings
    assert findings[0].message and findings[0].message_fr


def test_size_and_count_are_bounded(m, monkeypatch):
    monkeypatch.setattr(status_in, "MAX_BYTES", 2000)
    requests, findings = parse_status_file(cpp(*[unit()] * 10), m)
    assert requests == [] and codes_of(findings) == ["IRR_TAILLE_F"]
    monkeypatch.setattr(status_in, "MAX_BYTES", 10**6)
    monkeypatch.setattr(status_in_xml, "MAX_ENTRIES", 3)
    monkeypatch.setattr(status_in_json, "MAX_ENTRIES", 3)
    for data in (cpp(*[unit()] * 4), json.dumps({"statuses": [{"status": "SERVICE_FAIT", "piece_id": PIECE}] * 4}).encode()):
        requests, findings = parse_status_file(data, m)
        assert requests == [] and codes_of(findings) == ["IRR_TAILLE_F"]


# --- JSON in --------------------------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_json_status_changes_are_read_with_their_pointer(m):
    doc = {"statuses": [
        {"piece_id": PIECE, "status": "service_fait", "comment": "reçu", "at": "2026-03-02T10:30:00+01:00"},
        {"invoice_number": "FA-1", "supplier": SUPPLIER_SIRET, "status": "PAYEE"},
        {"status": "MANDATEE"},
        {"piece_id": PIECE, "status": "REJETEE", "reason": "Doublon", "at": "hier"},
        "SERVICE_FAIT",
        {"piece_id": PIECE, "status": "COMPLETEE", "comment": "PV joint",
         "attachments": [{"name": "pv.pdf", "mime": "application/pdf", "content_base64": b64(b"%PDF-1.4 pv")}]},
        {"piece_id": PIECE, "status": "DEPOSEE", "correction": {"service_code": "VOIRIE", "engagement_number": "EJ-9"}},
        {"piece_id": PIECE, "status": "DEPOSEE", "correction": {"recipient_name": "X"}},
        {"invoice_number": "FA-2", "supplier_id": SUPPLIER_SIRET, "pivot_id": "11"},
    ]}
    requests, findings = parse_status_file(json.dumps(doc).encode(), m)
    assert [r.index for r in requests] == [1, 6, 7, 9]
    one, six, seven, nine = requests
    assert (one.status, one.piece_id, one.comment, one.at) == ("SERVICE_FAIT", PIECE, "reçu", AT + timedelta(hours=0))
    assert one.location.xpath == "/statuses/0"
    assert six.attachments[0].name == "pv.pdf" and six.attachments[0].data == b"%PDF-1.4 pv"
    assert seven.correction == (("service_code", "VOIRIE"), ("engagement_number", "EJ-9"))
    assert (nine.status, nine.invoice_number, nine.supplier_id) == ("MISE_EN_PAIEMENT", "FA-2", SUPPLIER_SIRET)
    assert [(f.code, f.location.xpath) for f in findings] == [
        ("STATUT_INCONNU", "/statuses/1/status"),
        ("PIECE_INCONNUE", "/statuses/2/piece_id"),
        ("IRR_SYNTAX", "/statuses/3/at"),
        ("IRR_SYNTAX", "/statuses/4"),
        ("IRR_SYNTAX", "/statuses/7/correction/recipient_name"),
    ]
    assert all(f.message.startswith("Status change ") and f.message_fr.startswith("Changement de statut ")
               for f in findings)


@pytest.mark.parametrize("att,code", [
    ({"name": "pv.pdf", "mime": "application/pdf", "content_base64": "!!!"}, "IRR_SYNTAX"),
    ({"name": "pv.exe", "mime": "application/octet-stream", "content_base64": b64(b"MZ")}, "IRR_EXT_DOC"),
    ({"name": "vide.pdf", "mime": "application/pdf", "content_base64": ""}, "IRR_VID_PJ"),
    ({"name": "../../etc/passwd.txt", "content_base64": b64(b"x")}, "IRR_NOM_PJ"),
    ({"name": "gros.pdf", "content_base64": "A" * 16_000_000}, "IRR_TAILLE_PJ"),
    ({"nom": "pv.pdf"}, "IRR_SYNTAX"),
])
def test_bad_attachments_refuse_their_change(m, att, code):
    doc = {"statuses": [{"piece_id": PIECE, "status": "COMPLETEE", "attachments": [att]},
                        {"piece_id": PIECE, "status": "SERVICE_FAIT"}]}
    requests, findings = parse_status_file(json.dumps(doc).encode(), m)
    assert [r.index for r in requests] == [2]
    assert findings[0].code == code and "/statuses/0/attachments/0" in findings[0].location.xpath


# --- sniffing -------------------------------------------------------------------------------------

def test_sniffing_tells_status_files_from_invoices(m):
    assert is_status_file(cpp(unit()))
    assert is_status_file(b"\xef\xbb\xbf<?xml version='1.0'?>\n<!-- ERP -->\n" + cpp(unit()).split(b"?>", 1)[1])
    assert is_status_file(b' \n{"statuses": []}')
    assert is_status_file(b'{"version": 1, "statuses" : [{"piece_id": "x"}]}')
    assert not is_status_file(ubl_invoice())
    assert not is_status_file(b'{"report_version": 1, "pieces": []}')
    assert not is_status_file(b"%PDF-1.7")
    assert not is_status_file(b"")
    assert not is_status_file(b"<CPPStatuts><CPPFactureStatuts/></CPPStatuts>")


# --- out ------------------------------------------------------------------------------------

def notice(status: str, **kw) -> StatusNotice:
    base = dict(piece_id=PIECE, invoice_number="FA-2026-0001", invoice_date=date(2026, 2, 27), cadre="A1",
                supplier_id=SUPPLIER_SIRET, supplier_name="Fournitures Exemple SARL", supplier_country="FR",
                debtor_siret=COMMUNE_SIRET, debtor_name="Commune de Valbrune", service_code="VOIRIE", status=status,
                previous="MISE_A_DISPOSITION", reason=None, comment=None, at=AT, by_role="recipient")
    base.update(kw)
    return StatusNotice(**base)


def every_kind_of_notice(m) -> list[StatusNotice]:
    """One notice per status, with every kind of supplier and optional field missing or not."""
    kinds = [dict(), dict(supplier_id="DE811569869", supplier_country="DE", supplier_name=None),
             dict(supplier_id="CHE-123.456.789", supplier_country="CH", service_code=None, debtor_name=None),
             dict(supplier_id=SUBCONTRACTOR_SIRET, supplier_country=None, invoice_number=None, invoice_date=None),
             dict(at=datetime(2026, 3, 2, 10, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1))))]
    out = []
    for i, info in enumerate(m.statuses()):
        extra = dict(kinds[i % len(kinds)])
        if info.needs_reason:
            extra["reason"] = "Motif <avec> & caractères spéciaux"
        elif i % 2:
            extra["comment"] = "Commentaire libre"
        out.append(notice(info.name, piece_id=f"F20261122091501-1a2b3c4d-{i + 1:03d}", **extra))
    return out


def test_status_xml_is_valid_against_the_platform_schema(m, schema):
    notices = every_kind_of_notice(m)
    data = status_xml(notices, m, platform_id="GTW001", receiver_id="acme-industries", receiver_name="ACME")
    assert xsd_valid(schema, data), [str(e) for e in schema.error_log][:5]
    root = etree.fromstring(data)
    units = root.findall("CPPFactureStatuts/CPPFactureStatutUnitaire")
    assert len(units) == len(notices) == len(m.statuses())
    assert root.find("CPPFactureStatuts").get("compteur") == str(len(notices))
    rejected = next(u for u in units if u.findtext("DonneesStatut/ComplementStatut") == "REJETEE")
    assert rejected.findtext("DonneesStatut/IdStatut") == "05"
    assert rejected.findtext("DonneesStatut/Commentaire") == "Motif <avec> & caractères spéciaux"
    kinds = [u.findtext("Fournisseur/TypeIdentifiant") for u in units]
    assert {"1", "2", "3"} <= set(kinds)
    assert root.findtext("Enveloppe/EnveloppeUnitaire/Partenaires/Recepteur/Id") == "ACME-IND"
    assert is_status_file(data)


def test_status_xml_refuses_what_the_format_cannot_hold(m):
    with pytest.raises(StatusFileError, match="14 characters"):
        status_xml([notice("SERVICE_FAIT", debtor_siret="123")], m, platform_id="GTW", receiver_id="ACME",
                   receiver_name="ACME")
    with pytest.raises(StatusFileError):
        status_xml([], m, platform_id="GTW", receiver_id="ACME", receiver_name="ACME")


def test_xml_round_trip(m):
    notices = every_kind_of_notice(m)
    data = status_xml(notices, m, platform_id="GTW001", receiver_id="ACME", receiver_name="ACME")
    requests, findings = parse_status_file(data, m)
    assert findings == [] and len(requests) == len(notices)
    for n, r in zip(notices, requests):
        assert r.status == n.status and r.supplier_id == n.supplier_id and r.debtor_siret == n.debtor_siret
        assert r.at == n.at.replace(microsecond=0)
        if n.invoice_number:
            assert (r.invoice_number, r.piece_id) == (n.invoice_number, None)
        else:
            assert (r.invoice_number, r.piece_id) == (None, n.piece_id)
        assert (r.reason, r.comment) == (n.reason, n.comment)


def test_json_round_trip_and_cdv_codes(m):
    notices = every_kind_of_notice(m)
    data = status_json(notices, m)
    doc = json.loads(data)
    by_status = {e["status"]: e for e in doc["statuses"]}
    assert (by_status["REJETEE"]["cdv"], by_status["REJETEE"]["cdv_label"], by_status["REJETEE"]["pivot_id"]) == (
        210, "Refusée", "05")
    assert by_status["DEPOSEE"]["cdv"] == 200 and by_status["MISE_EN_PAIEMENT"]["cdv"] == 211
    assert by_status["MANDATEE"]["cdv"] is None and by_status["MANDATEE"]["cdv_label"] is None
    assert by_status["REJETEE"]["final"] is True and by_status["REJETEE"]["previous"] == "MISE_A_DISPOSITION"
    assert by_status["SERVICE_FAIT"]["at"] == "2026-03-02T09:30:00Z"
    assert is_status_file(data)
    requests, findings = parse_status_file(data, m)
    assert findings == [] and len(requests) == len(notices)
    for n, r in zip(notices, requests):
        assert (r.status, r.piece_id, r.invoice_number, r.supplier_id, r.reason, r.comment, r.debtor_siret) == (
            n.status, n.piece_id, n.invoice_number, n.supplier_id, n.reason, n.comment, n.debtor_siret)
        assert r.at == n.at.replace(microsecond=0)


def test_written_files_are_the_same_for_the_same_notices(m):
    notices = [notice("SERVICE_FAIT"), replace(notice("REJETEE"), reason="Doublon")]
    kw = dict(platform_id="GTW001", receiver_id="ACME", receiver_name="ACME")
    assert status_xml(notices, m, **kw) == status_xml(notices, m, **kw)
    assert status_json(notices, m) == status_json(notices, m)


def test_one_status_file_built_for_several_receivers_names_each(m):
    from gateway.outputs.status_cppstatut import status_xml_for

    notices = every_kind_of_notice(m)
    write = status_xml_for(notices, m, platform_id="GTW001")
    first, second = write("ACME", "Acme SA"), write("21990001600011", "Commune")
    assert first == status_xml(notices, m, platform_id="GTW001", receiver_id="ACME", receiver_name="Acme SA")
    assert second == status_xml(notices, m, platform_id="GTW001", receiver_id="21990001600011",
                                receiver_name="Commune")
    assert b"<Libelle>Commune</Libelle>" in second and b"Acme SA" not in second


# --- read as the home says ---------------------------------------------------------------------

def _home(tmp_path, toml: str) -> config.Settings:
    root = tmp_path / "home"
    config.init_home(root)
    (root / "gateway.toml").write_text(toml, encoding="utf-8")
    return config.load(root)


def test_a_broken_status_schema_refuses_xml_files_with_err_validateur(m, tmp_path):
    for text in ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="CPPStatut" type="Nope"/>'
                 "</xs:schema>", "not a schema at all"):
        broken = tmp_path / "broken.xsd"
        broken.write_text(text, encoding="utf-8")
        requests, findings = parse_status_file(cpp(unit()), m, xsd=broken)
        assert requests == [] and codes_of(findings) == ["ERR_VALIDATEUR"] and str(broken) in findings[0].message


def test_a_configured_status_schema_that_is_missing_is_an_error_not_silence(tmp_path):
    from gateway.lifecycle.status_in import read_status_file

    s = _home(tmp_path, '[lifecycle]\nstatus_xsd = "schemas/CPPStatutPivot_V1_19.xsd"\n')
    assert status_xsd(s) == s.home / "schemas" / "CPPStatutPivot_V1_19.xsd"
    _, requests, findings = read_status_file(s, cpp(unit()))
    assert requests == [] and codes_of(findings) == ["ERR_VALIDATEUR"] and "schemas" in findings[0].message


def test_json_attachments_follow_the_homes_attachment_settings(tmp_path):
    from gateway.lifecycle.status_in import read_status_file

    doc = {"statuses": [{"piece_id": PIECE, "status": "COMPLETEE", "attachments": [
        {"name": "pv.pdf", "mime": "application/pdf", "content_base64": b64(b"%PDF-1.4 " + b"x" * 4000)}]}]}
    data = json.dumps(doc).encode()
    s = _home(tmp_path, "[attachments]\nmax_mb = 0.001\n")  # 1 KB
    _, requests, findings = read_status_file(s, data)
    assert requests == [] and codes_of(findings) == ["IRR_TAILLE_PJ"]
    s = _home(tmp_path, '[attachments]\nextensions = ["xml"]\n')
    _, requests, findings = read_status_file(s, data)
    assert requests == [] and codes_of(findings) == ["IRR_EXT_DOC"]
    _, requests, findings = read_status_file(_home(tmp_path, ""), data)
    assert findings == [] and requests[0].attachments[0].name == "pv.pdf"


def test_the_file_limit_is_the_intakes(m, tmp_path):
    from gateway.lifecycle.status_in import read_status_file

    data = cpp(*[unit()] * 20)
    requests, findings = parse_status_file(data, m, max_bytes=len(data) - 1)
    assert requests == [] and codes_of(findings) == ["IRR_TAILLE_F"]
    _, requests, findings = read_status_file(_home(tmp_path, "[intake]\nmax_file_mb = 0.001\n"), data)
    assert requests == [] and codes_of(findings) == ["IRR_TAILLE_F"]

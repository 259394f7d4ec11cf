"""The recipient's pivot (CPPFacturePivot V2_02), validated against the platform's
XSD shipped in schemas/aife."""
from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest
from lxml import etree

from gateway.core import config
from gateway.rules import directory
from gateway.rules.controls import run_controls
from gateway.rules.mapping.read import map_piece
from gateway.core.invoice import Party
from gateway.outputs.pivot import PivotAttachment, PivotError, write_pivot

from conftest import AIFE_XSD
from invoice_support import (
    COMMUNE_SIRET, OPH_MOA_SIRET, SUBCONTRACTOR_SIRET, TITULAIRE_SIRET, cii_invoice, parse, ubl_aife_invoice,
    ubl_invoice,
)

XSD = AIFE_XSD / "CPPFacturePivot_V2_02.xsd"
RECEIVED = datetime(2024, 3, 16, 9, 30)
PDF = b"%PDF-1.4 devis"


@pytest.fixture(scope="module")
def schema():
    if not XSD.exists():
        pytest.skip(f"platform pivot XSD not found at {XSD} (shared spec folder missing)")
    return etree.XMLSchema(etree.parse(str(XSD)))


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = config.load(tmp_path_factory.mktemp("home"))
    directory.import_files(s, directory.demo_files())
    return s


def pivot_of(data: bytes, settings, schema, **kw) -> etree._Element:
    invoice, findings = map_piece(parse(data), settings)
    report = run_controls(invoice, settings, directory=True)
    assert report.passed, report.findings
    kw.setdefault("structure", report.structure)
    kw.setdefault("service", report.service)
    out = write_pivot(invoice, flow_id="F20240316-0001", piece_id=kw.pop("piece_id", "42"), received_at=RECEIVED, **kw)
    return validated(out, schema)


def validated(out: bytes, schema) -> etree._Element:
    root = etree.fromstring(out)
    assert schema.validate(root), [str(e) for e in schema.error_log]
    return root


def text(root: etree._Element, path: str) -> str | None:
    return root.findtext(path)


def test_full_ubl_invoice(settings, schema):
    original = ubl_invoice(contract="M-2024-07", service_code="VOIRIE",
                           attachments=[("devis.pdf", "application/pdf", PDF)])
    root = pivot_of(original, settings, schema,
                    attachments=[PivotAttachment("FA-2024-0001.xml", "application/xml", original, "01"),
                                 ("devis.pdf", "application/pdf", PDF)])
    u = root.find("CPPFactures/CPPFacturePivotUnitaire")
    assert text(root, "Enveloppe/EnveloppeUnitaire/Parametres/ParametreIndiv[Code='IdFlx']/Valeurparametre") == \
        "F20240316-0001"
    assert text(u, "Fournisseur/TypeIdentifiant") == "1" and text(u, "Fournisseur/ReferenceBancaire/Compte")
    assert (text(u, "Debiteur/Identifiant"), text(u, "Debiteur/Nom"), text(u, "Debiteur/CodeService"),
            text(u, "Debiteur/NomService")) == (COMMUNE_SIRET, "COMMUNE DE VALBRUNE", "VOIRIE", "Voirie et réseaux")
    d = u.find("DonneesFacture")
    assert (text(d, "Id"), text(d, "IdCPRO"), text(d, "Renvoi"), text(d, "Type"), text(d, "Cadre")) == (
        "FA-2024-0001", "42", "Non", "380", "A1")
    assert (text(d, "DateEmissionFacture"), text(d, "DateReception"), text(d, "Devise")) == (
        "2024-03-15", "2024-03-16", "EUR")
    assert (text(d, "ModePaiement/Code"), text(d, "ModePaiement/Libelle")) == ("30", "Virement")
    assert [text(d, f"Montants/{m}") for m in ("MontantHT", "MontantTTC", "MontantNetAPayer")] == [
        "141.00", "169.20", "169.20"]
    assert [(text(t, "Taux"), text(t, "BaseHt"), text(t, "MontantTVA")) for t in d.iterfind("TVAs/TVA")] == [
        ("20.00", "141.00", "28.20")]
    assert (text(d, "Engagement/NumeroMarche"), text(d, "Engagement/NumeroEngagement")) == (
        "M-2024-07", "EJ-2024-000123")
    lines = d.findall("Lignes/Ligne")
    assert [ln.get("NumOrdre") for ln in lines] == ["1", "2"]
    assert [(text(ln, "PrixUnitaire"), text(ln, "Quantite"), text(ln, "MontantHT")) for ln in lines] == [
        ("4.50", "10", "45.00"), ("32.00", "3", "96.00")]
    pjs = u.findall("PJ")
    assert [(text(p, "NomPJ"), text(p, "TypePJ")) for p in pjs] == [("FA-2024-0001.xml", "01"), ("devis.pdf", "02")]
    assert base64.b64decode(text(pjs[0], "Contenu")) == original


def test_cii_credit_note(settings, schema):
    root = pivot_of(cii_invoice(type_code=381, number="AV-2024-0009", original_invoice="FA-2024-0002"),
                    settings, schema, piece_id="P-17", renvoi="Recyclée")
    d = root.find("CPPFactures/CPPFacturePivotUnitaire/DonneesFacture")
    assert (text(d, "Type"), text(d, "IdFactureOrigine"), text(d, "Renvoi")) == ("381", "FA-2024-0002", "Recyclée")
    assert d.find("IdCPRO") is None  # not a whole number
    assert text(d, "Montants/MontantNetAPayer") == "169.20"


def test_invoice_without_lines_nor_engagement(settings, schema):
    invoice, _ = map_piece(parse(ubl_invoice(engagement=None, recipient_siret=OPH_MOA_SIRET, service_code=None,
                                             cadre="A4")), settings)
    bare = replace(invoice, lines=(), engagement_number=None, vat_breakdown=(), payment_means_code=None)
    root = validated(write_pivot(bare, flow_id="F1", piece_id=7, received_at=RECEIVED.date()), schema)
    d = root.find("CPPFactures/CPPFacturePivotUnitaire/DonneesFacture")
    assert d.find("Lignes") is None and d.find("Engagement") is None and d.find("TVAs") is None
    assert (text(d, "Cadre"), text(d, "ModePaiement/Code")) == ("A4", "30")
    debtor = root.find("CPPFactures/CPPFacturePivotUnitaire/Debiteur")
    assert debtor.find("CodeService") is None and text(debtor, "Nom") == "Commune de Valbrune"
    pjs = root.findall("CPPFactures/CPPFacturePivotUnitaire/PJ")  # the invoice is always listed
    assert [(text(p, "NomPJ"), text(p, "TypePJ"), p.find("Contenu")) for p in pjs] == [
        ("FA-2024-0001.xml", "01", None)]


def test_attachments(settings, schema):
    long_name = "proces-verbal-de-reception-des-travaux-du-batiment-B-2024.pdf"
    data = ubl_aife_invoice(cadre="A9", validator_siret=TITULAIRE_SIRET, supplier_siret=SUBCONTRACTOR_SIRET,
                            attachments=[("devis.pdf", "application/pdf", PDF), (long_name, "application/pdf", PDF)])
    # no attachments given: the invoice's embedded ones are listed by name
    root = pivot_of(data, settings, schema)
    pjs = root.findall("CPPFactures/CPPFacturePivotUnitaire/PJ")
    names = [text(p, "NomPJ") for p in pjs]
    assert names[0] == "FA-2024-0101.xml" and names[1] == "devis.pdf"
    assert len(names[2]) == 50 and names[2].endswith(".pdf") and names[2].startswith("proces-verbal")
    assert [text(p, "TypePJ") for p in pjs] == ["01", "02", "02"]
    assert [p.get("NumOrdre") for p in pjs] == ["1", "2", "3"]
    assert text(root, "CPPFactures/CPPFacturePivotUnitaire/DonneesFacture/Cadre") == "A9"

    # given with contents, the invoice (01) first whatever the order
    root = pivot_of(data, settings, schema, attachments=[("annexe.csv", "text/csv", b"a;b\n1;2\n"),
                                                         ("facture.xml", "application/xml", data, "01")])
    pjs = root.findall("CPPFactures/CPPFacturePivotUnitaire/PJ")
    assert [(text(p, "NomPJ"), text(p, "TypePJ")) for p in pjs] == [("facture.xml", "01"), ("annexe.csv", "02")]
    assert base64.b64decode(text(pjs[1], "Contenu")) == b"a;b\n1;2\n"


def test_foreign_supplier_and_payment_aliases(settings, schema):
    invoice, _ = map_piece(parse(ubl_invoice(payment_means="58")), settings)
    foreign = replace(invoice, supplier=Party(name="Beispiel GmbH", vat_id="DE123456789", country="DE"),
                      payment_account=None)
    root = validated(write_pivot(foreign, flow_id="F2", piece_id="1", received_at=RECEIVED), schema)
    f = root.find("CPPFactures/CPPFacturePivotUnitaire/Fournisseur")
    assert (text(f, "TypeIdentifiant"), text(f, "Identifiant"), text(f, "CodePays")) == ("2", "DE123456789", "DE")
    assert f.find("ReferenceBancaire") is None
    assert text(root, "CPPFactures/CPPFacturePivotUnitaire/DonneesFacture/ModePaiement/Code") == "30"  # SEPA 58


@pytest.mark.parametrize("change, kw, message", [
    ({"issue_date": None}, {}, "issue date"),
    ({"invoice_number": "N" * 21}, {}, "invoice number"),
    ({"recipient": Party(siret="123")}, {}, "recipient SIRET"),
    ({"currency": "EURO"}, {}, "currency"),
    ({}, {"renvoi": "Oui"}, "renvoi"),
    ({}, {"emitter_id": "--"}, "emitter_id"),  # nothing to name a partner with
    ({}, {"attachments": [("a.pdf", "application/pdf", b"x", "03")]}, "attachment kind"),
])
def test_pieces_the_pivot_cannot_hold_are_refused(settings, change, kw, message):
    invoice, _ = map_piece(parse(ubl_invoice()), settings)
    with pytest.raises(PivotError, match=message):
        write_pivot(replace(invoice, **change), flow_id="F", piece_id="1", received_at=RECEIVED, **kw)


def test_decimals_are_written_without_exponent(settings, schema):
    invoice, _ = map_piece(parse(ubl_invoice()), settings)
    odd = replace(invoice, totals=replace(invoice.totals, net=Decimal("1E+3"), gross=Decimal("1.2E+3"),
                                          payable=Decimal("12E2")))
    root = validated(write_pivot(odd, flow_id="F", piece_id="1", received_at=RECEIVED), schema)
    m = root.find("CPPFactures/CPPFacturePivotUnitaire/DonneesFacture/Montants")
    assert [e.text for e in m] == ["1000", "1200", "1200"]


def test_partner_ids_are_cut_to_the_envelope(settings, schema):
    invoice, _ = map_piece(parse(ubl_invoice()), settings)
    root = validated(write_pivot(invoice, flow_id="F", piece_id="1", received_at=RECEIVED, emitter_id="toolongid",
                                 receiver_id=COMMUNE_SIRET), schema)
    partners = root.find("Enveloppe/EnveloppeUnitaire/Partenaires")
    assert (text(partners, "Emetteur/Id"), text(partners, "Recepteur/Id")) == ("TOOLONGI", COMMUNE_SIRET[:8])
    root = validated(write_pivot(invoice, flow_id="F", piece_id="1", received_at=RECEIVED, receiver_id="X"), schema)
    assert text(root, "Enveloppe/EnveloppeUnitaire/Partenaires/Recepteur/Id") == "X__"


def test_one_invoice_document_and_the_deposited_file(settings, schema):
    invoice, _ = map_piece(parse(ubl_invoice(attachments=[("devis.pdf", "application/pdf", PDF)])), settings)

    def pjs(**kw) -> list[tuple[str, str, str]]:
        root = validated(write_pivot(invoice, flow_id="F", piece_id="1", received_at=RECEIVED, **kw), schema)
        return [(text(p, "NomPJ"), text(p, "TypePJ"), text(p, "MimeTypePJ"))
                for p in root.findall("CPPFactures/CPPFacturePivotUnitaire/PJ")]

    # two documents say they are the invoice: the first is, the other is supporting
    two = [("annexe.pdf", "application/pdf", None, "02"), ("rendu.pdf", "application/pdf", PDF, "01"),
           ("copie.pdf", "application/pdf", PDF, "01")]
    assert pjs(attachments=two) == [("rendu.pdf", "01", "application/pdf"), ("annexe.pdf", "02", "application/pdf"),
                                    ("copie.pdf", "02", "application/pdf")]
    # none is the invoice: the deposited file is listed as it
    assert pjs(attachments=[("annexe.pdf", "application/pdf")], original=("FA-1.pdf", "application/pdf")) == [
        ("FA-1.pdf", "01", "application/pdf"), ("annexe.pdf", "02", "application/pdf")]
    # an empty list is no supporting document (None lists the embedded ones by name)
    assert pjs(attachments=[], original=("depot.xml", "application/xml")) == [("depot.xml", "01", "application/xml")]
    assert pjs() == [("FA-2024-0001.xml", "01", "application/xml"), ("devis.pdf", "02", "application/pdf")]

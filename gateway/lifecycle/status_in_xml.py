"""Status files in, the platform's form: a `CPPStatut` holding
`CPPFactureStatuts` (AIFE CPPStatutPivot V1.19), as public recipients'
software sends it. Each CPPFactureStatutUnitaire becomes a StatusRequest;
one that cannot be read becomes Findings with its XPath and line while the
others still parse. A light checker of what the XSD requires runs in any
case (no XSD needed on disk, plain messages); the XSD itself when given.
"""
from __future__ import annotations

import logging
from pathlib import Path

from lxml import etree

from gateway.core import codes, xmlsafe
from gateway.core.records import Finding, Location
from gateway.lifecycle.machine import Machine
from gateway.lifecycle.status_in_base import (
    MAX_ENTRIES, MAX_ID, MAX_TEXT, PIECE_ID, STAGE, StatusRequest, is_xs_date, syntax_problem, xs_datetime,
)
from gateway.rules import xsd as schemas

log = logging.getLogger("gateway.status_files")

# XML: a small checker for what CPPStatutPivot_V1_19.xsd requires, so the
# default needs no XSD on disk and says plainly what is wrong.

Spec = tuple[tuple[str, int, int | None], ...]  # (element, min, max) in sequence order
_ROOT_SPEC: Spec = (("Enveloppe", 1, 1), ("CPPFactureStatuts", 1, 1))
_ENVELOPE: Spec = (("EnveloppeUnitaire", 1, None),)
_ENV_UNIT: Spec = (("Parametres", 1, 1), ("Partenaires", 1, 1))
_PARAMS: Spec = (("ParametreIndiv", 2, None),)
_PARAM: Spec = (("Code", 1, 1), ("Valeurparametre", 1, 1), ("Note", 0, 1))
_PARTNERS: Spec = (("Recepteur", 1, 1), ("Emetteur", 1, 1))
_PARTNER: Spec = (("Id", 1, 1), ("Libelle", 0, 1), ("Note", 0, 1))
_STATUSES: Spec = (("CPPFactureStatutUnitaire", 1, None),)
_UNIT: Spec = (("Fournisseur", 1, 1), ("Debiteur", 1, 1), ("DonneesStatut", 1, 1))
_SUPPLIER: Spec = (("TypeIdentifiant", 1, 1), ("Identifiant", 1, 1), ("RaisonSociale", 1, 1), ("CodePays", 0, 1))
_DEBTOR: Spec = (("TypeIdentifiant", 1, 1), ("Identifiant", 1, 1), ("Nom", 0, 1), ("CodeService", 0, 1),
                 ("NomService", 0, 1))
_DATA: Spec = (("IdStatut", 1, 1), ("ComplementStatut", 0, 1), ("Commentaire", 0, 1), ("Horodatage", 1, 1),
               ("Producteur", 0, 1), ("IdFacture", 1, 1), ("DateFacture", 0, 1), ("IdMandatDP", 0, 1))


def _elements(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _sequence(el: etree._Element, spec: Spec, path: str) -> tuple[dict[str, list[etree._Element]], list[Finding]]:
    """Match `el`'s children against a sequence; the children by name, and what
    is wrong (the first misplaced element stops the walk: one clear message)."""
    found: dict[str, list[etree._Element]] = {name: [] for name, _, _ in spec}
    problems: list[Finding] = []
    if (el.text or "").strip() or any((c.tail or "").strip() for c in el):
        problems.append(syntax_problem(f"{path}: text is not allowed here, only elements",
                                       f"{path} : texte interdit ici, seulement des éléments", path, el.sourceline))
    children = _elements(el)
    names = [n for n, _, _ in spec]
    k = 0
    for pos, child in enumerate(children):
        name = child.tag
        if xmlsafe.namespace(name):
            problems.append(syntax_problem(
                f"{path}: element {name} has a namespace; CPPStatut elements have none",
                f"{path} : l'élément {name} a un espace de noms ; les éléments CPPStatut n'en ont pas",
                path, child.sourceline, value=name))
            return found, problems
        if name not in names[k:]:
            if name in names[:k]:
                en = f"{path}: {name} is out of order (expected, in this order: {', '.join(names)})"
                fr = f"{path} : {name} n'est pas à sa place (ordre attendu : {', '.join(names)})"
            else:
                en = f"{path}: unexpected element {name} (expected, in this order: {', '.join(names)})"
                fr = f"{path} : élément {name} inattendu (attendus, dans cet ordre : {', '.join(names)})"
            problems.append(syntax_problem(en, fr, f"{path}/{name}", child.sourceline, value=name))
            return found, problems
        later = {c.tag for c in children[pos:]}
        while names[k] != name:
            req, got = spec[k][1], len(found[names[k]])
            if got < req:
                if names[k] in later:  # present, but after this one
                    problems.append(syntax_problem(
                        f"{path}: {names[k]} must come before {name} (expected, in this order: {', '.join(names)})",
                        f"{path} : {names[k]} doit précéder {name} (ordre attendu : {', '.join(names)})",
                        f"{path}/{names[k]}", child.sourceline, value=names[k]))
                    return found, problems
                problems.append(_missing(names[k], req, got, path, child.sourceline, before=name))
            k += 1
        found[name].append(child)
        most = spec[k][2]
        if most is not None and len(found[name]) > most:
            problems.append(syntax_problem(
                f"{path}: {name} may appear at most {most} time(s)",
                f"{path} : {name} ne peut apparaître que {most} fois au plus",
                f"{path}/{name}[{len(found[name])}]", child.sourceline, value=name))
            return found, problems
    for name, req, _ in spec[k:]:
        if len(found[name]) < req:
            problems.append(_missing(name, req, len(found[name]), path, el.sourceline))
    return found, problems


def _missing(name: str, req: int, got: int, path: str, line: int | None, before: str | None = None) -> Finding:
    where_en = f" before {before}" if before else ""
    where_fr = f" avant {before}" if before else ""
    if req == 1:
        return syntax_problem(f"{path}: element {name} is missing{where_en}",
                              f"{path} : élément {name} absent{where_fr}", path, line, value=name)
    return syntax_problem(f"{path}: {name} must appear at least {req} times, found {got}",
                          f"{path} : {name} doit apparaître au moins {req} fois, trouvé {got}", path, line,
                          value=name)


def _leaf(el: etree._Element, path: str) -> tuple[str, list[Finding]]:
    if _elements(el):
        return "", [syntax_problem(f"{path}: {el.tag} holds elements; a value was expected",
                                   f"{path} : {el.tag} contient des éléments ; une valeur était attendue", path,
                                   el.sourceline)]
    return (el.text or "").strip(), []


def _value_problem(path: str, el: etree._Element, en: str, fr: str, value: str) -> Finding:
    return syntax_problem(f"{path}: {en}, not '{value}'", f"{path} : {fr}, et non « {value} »", path, el.sourceline,
                          value=value[:200], rule="xsd-value")


def _check_envelope(env: etree._Element) -> list[Finding]:
    base = "/CPPStatut/Enveloppe"
    found, problems = _sequence(env, _ENVELOPE, base)
    for i, unit in enumerate(found["EnveloppeUnitaire"], 1):
        up = f"{base}/EnveloppeUnitaire[{i}]"
        parts, p = _sequence(unit, _ENV_UNIT, up)
        problems += p
        for params in parts["Parametres"]:
            got, p = _sequence(params, _PARAMS, f"{up}/Parametres")
            problems += p
            for j, param in enumerate(got["ParametreIndiv"], 1):
                pp = f"{up}/Parametres/ParametreIndiv[{j}]"
                fields, p = _sequence(param, _PARAM, pp)
                problems += p
                for code in fields["Code"]:
                    text, p = _leaf(code, f"{pp}/Code")
                    problems += p
                    if not p and len(code.text or "") != 5:
                        problems.append(_value_problem(f"{pp}/Code", code, "a parameter code is 5 characters",
                                                       "un code de paramètre fait 5 caractères", code.text or ""))
        for partners in parts["Partenaires"]:
            got, p = _sequence(partners, _PARTNERS, f"{up}/Partenaires")
            problems += p
            for role in ("Recepteur", "Emetteur"):
                for partner in got[role]:
                    fields, p = _sequence(partner, _PARTNER, f"{up}/Partenaires/{role}")
                    problems += p
                    for ident in fields["Id"]:
                        raw = ident.text or ""
                        if not 3 <= len(raw) <= 8:
                            problems.append(_value_problem(
                                f"{up}/Partenaires/{role}/Id", ident, "a partner id is 3 to 8 characters",
                                "un identifiant de partenaire fait 3 à 8 caractères", raw))
    return problems


def parse_xml(data: bytes, machine: Machine, xsd: Path | None) -> tuple[list[StatusRequest], list[Finding]]:
    tree, problems = xmlsafe.parse(data, stage=STAGE)
    if tree is None:
        return [], problems
    root = tree.getroot()
    if root.tag != "CPPStatut":
        return [], [syntax_problem(f"The root element must be CPPStatut (no namespace), not {root.tag}",
                                   f"L'élément racine doit être CPPStatut (sans espace de noms), et non {root.tag}",
                                   "/", root.sourceline, value=root.tag)]
    if any(c.tag == "CPPFluxStatuts" for c in _elements(root)):
        return [], [syntax_problem(
            "This CPPStatut holds CPPFluxStatuts (a flow report); status changes go in CPPFactureStatuts",
            "Ce CPPStatut contient CPPFluxStatuts (compte rendu de flux) ; les changements de statut vont dans "
            "CPPFactureStatuts", "/CPPStatut/CPPFluxStatuts", root.sourceline, value="CPPFluxStatuts")]
    found, problems = _sequence(root, _ROOT_SPEC, "/CPPStatut")
    for env in found["Enveloppe"]:
        problems += _check_envelope(env)
    units: list[etree._Element] = []
    for statuses in found["CPPFactureStatuts"]:
        got, p = _sequence(statuses, _STATUSES, "/CPPStatut/CPPFactureStatuts")
        problems += p
        units = got["CPPFactureStatutUnitaire"]
    if problems:  # the envelope or the frame is wrong: nothing in the file can be trusted
        return [], problems
    if len(units) > MAX_ENTRIES:
        return [], [codes.finding("IRR_TAILLE_F", f"{len(units)} status changes in one file; at most {MAX_ENTRIES}",
                                  f"{len(units)} changements de statut dans un fichier ; {MAX_ENTRIES} au plus",
                                  value=str(len(units)), stage=STAGE)]
    xsd_problems = _xsd_problems(root, xsd, units) if xsd else {}
    if None in xsd_problems:
        return [], xsd_problems[None]
    requests: list[StatusRequest] = []
    findings: list[Finding] = []
    for i, unit in enumerate(units, 1):
        req, p = _xml_unit(i, unit, machine)
        p = p or xsd_problems.get(i, [])
        findings += p
        if req is not None and not p:
            requests.append(req)
    return requests, findings


def _xml_unit(index: int, unit: etree._Element, machine: Machine) -> tuple[StatusRequest | None, list[Finding]]:
    path = f"/CPPStatut/CPPFactureStatuts/CPPFactureStatutUnitaire[{index}]"
    parts, problems = _sequence(unit, _UNIT, path)
    if problems:
        return None, problems
    values: dict[str, tuple[str, etree._Element]] = {}
    for part, spec in (("Fournisseur", _SUPPLIER), ("Debiteur", _DEBTOR), ("DonneesStatut", _DATA)):
        el = parts[part][0]
        fields, p = _sequence(el, spec, f"{path}/{part}")
        problems += p
        for name, els in fields.items():
            for child in els:
                text, p = _leaf(child, f"{path}/{part}/{name}")
                problems += p
                values[f"{part}/{name}"] = (text, child)
    if problems:
        return None, problems

    def check(key: str, ok: bool, en: str, fr: str) -> None:
        text, el = values[key]
        if not ok:
            problems.append(_value_problem(f"{path}/{key}", el, en, fr, text))

    v = {k: t for k, (t, _) in values.items()}
    check("Fournisseur/TypeIdentifiant", v["Fournisseur/TypeIdentifiant"] in set("1234567"),
          "the supplier id type is 1 to 7", "le type d'identifiant du fournisseur va de 1 à 7")
    check("Fournisseur/Identifiant", 0 < len(v["Fournisseur/Identifiant"]) <= MAX_ID,
          f"the supplier id is 1 to {MAX_ID} characters", f"l'identifiant du fournisseur fait 1 à {MAX_ID} caractères")
    if "Fournisseur/CodePays" in v:
        check("Fournisseur/CodePays", len(v["Fournisseur/CodePays"]) == 2, "a country code is 2 letters",
              "un code pays fait 2 lettres")
    check("Debiteur/TypeIdentifiant", v["Debiteur/TypeIdentifiant"] == "1", "the debtor id type is 1 (SIRET)",
          "le type d'identifiant du débiteur est 1 (SIRET)")
    check("Debiteur/Identifiant", len(v["Debiteur/Identifiant"]) == 14, "the debtor SIRET is 14 characters",
          "le SIRET du débiteur fait 14 caractères")
    if "Debiteur/CodeService" in v:
        check("Debiteur/CodeService", len(v["Debiteur/CodeService"]) <= 100, "a service code is at most 100 characters",
              "un code service fait 100 caractères au plus")
    id_status = v["DonneesStatut/IdStatut"]
    check("DonneesStatut/IdStatut", id_status.isdigit() and 1 <= int(id_status) <= 41,
          "IdStatut is a number from 01 to 41", "IdStatut est un nombre de 01 à 41")
    check("DonneesStatut/Horodatage", xs_datetime(v["DonneesStatut/Horodatage"]) is not None,
          "Horodatage is an xs:dateTime (2026-01-31T14:05:00Z)", "Horodatage est un xs:dateTime (2026-01-31T14:05:00Z)")
    check("DonneesStatut/IdFacture", 0 < len(v["DonneesStatut/IdFacture"]) <= MAX_ID,
          f"IdFacture is 1 to {MAX_ID} characters", f"IdFacture fait 1 à {MAX_ID} caractères")
    if "DonneesStatut/DateFacture" in v:
        check("DonneesStatut/DateFacture", is_xs_date(v["DonneesStatut/DateFacture"]),
              "DateFacture is an xs:date (2026-01-31)", "DateFacture est un xs:date (2026-01-31)")
    if "DonneesStatut/Commentaire" in v:
        check("DonneesStatut/Commentaire", len(v["DonneesStatut/Commentaire"]) <= MAX_TEXT,
              f"a comment is at most {MAX_TEXT} characters", f"un commentaire fait {MAX_TEXT} caractères au plus")
    if problems:
        return None, problems

    status_el = values["DonneesStatut/IdStatut"][1]
    status = machine.by_pivot(id_status)
    if status is None:
        return None, [codes.finding(
            "STATUT_INCONNU", f"IdStatut {id_status} is not a status of this gateway",
            f"IdStatut {id_status} n'est pas un statut de cette passerelle",
            location=Location(xpath=f"{path}/DonneesStatut/IdStatut", line=status_el.sourceline), value=id_status,
            stage=STAGE)]
    complement = v.get("DonneesStatut/ComplementStatut", "")
    if machine.known(complement) and complement != status:
        return None, [codes.finding(
            "STATUT_INCONNU", f"IdStatut {id_status} is {status} but ComplementStatut says {complement}",
            f"IdStatut {id_status} correspond à {status} mais ComplementStatut indique {complement}",
            location=Location(xpath=f"{path}/DonneesStatut/ComplementStatut", line=status_el.sourceline),
            value=complement, stage=STAGE)]
    # One text in the XML: the motif when the status needs one, else a comment.
    text = v.get("DonneesStatut/Commentaire") or None
    needs_reason = machine.info(status).needs_reason
    ident = v["DonneesStatut/IdFacture"]
    is_piece = PIECE_ID.fullmatch(ident) is not None
    return StatusRequest(
        index=index, status=status, piece_id=ident if is_piece else None,
        invoice_number=None if is_piece else ident, supplier_id=v["Fournisseur/Identifiant"],
        reason=text if needs_reason else None, comment=None if needs_reason else text,
        at=xs_datetime(v["DonneesStatut/Horodatage"]),
        location=Location(xpath=path, line=unit.sourceline), debtor_siret=v["Debiteur/Identifiant"]), []


def _xsd_problems(root: etree._Element, path: Path, units: list[etree._Element]) -> dict[int | None, list[Finding]]:
    """XSD errors by unit index (1-based), None for errors outside any unit
    (or a schema that cannot be loaded: ERR_VALIDATEUR, as for invoices)."""
    try:
        errors = schemas.schema_errors(Path(path).resolve(), root)
    except (etree.LxmlError, OSError) as exc:
        log.error("status XSD %s cannot be loaded: %s", path, exc)
        return {None: [codes.finding(
            "ERR_VALIDATEUR", f"The status schema {path} cannot be loaded: {exc}",
            f"Le schéma des statuts {path} ne peut être chargé : {exc}", value=str(path), stage=STAGE)]}
    starts = [(u.sourceline or 0, i) for i, u in enumerate(units, 1)]
    out: dict[int | None, list[Finding]] = {}
    for err in errors:
        owner = None
        for line, i in starts:
            if err.line >= line:
                owner = i
        if starts and err.line < starts[0][0]:
            owner = None
        out.setdefault(owner, []).append(syntax_problem(
            f"Schema {path.name}: {err.message}", f"Schéma {path.name} : {err.message}", err.path or None, err.line,
            rule=err.type_name))
    return out


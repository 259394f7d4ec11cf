"""The one place that maps failures to return codes.

Codes follow the 2026 reform's list (chorus-domain.md 3c) where one fits;
the few the gateway adds are prefixed the same way and documented in the
README. Each code carries its nature (as CPPStatut `NatureErreur` wants) and a
default text in French and English; a stage may give a more precise message.
"""
from __future__ import annotations

from dataclasses import dataclass

from gateway.core.records import Finding, Location, Severity


@dataclass(frozen=True)
class Code:
    code: str
    nature: str  # "technique" (file cannot be read) or "metier" (business rule)
    fr: str
    en: str


_TABLE = [
    # file level (irrecevabilité)
    Code("IRR_VIDE_F", "technique", "Fichier vide", "Empty file"),
    Code("IRR_TYPE_F", "technique", "Type de fichier non reconnu", "File type not recognised"),
    Code("IRR_TAILLE_F", "technique", "Fichier trop volumineux", "File too large"),
    Code("IRR_SYNTAX", "technique", "Erreur de syntaxe ou de schéma XML", "XML syntax or schema error"),
    Code("IRR_LOT", "technique", "Lot illisible ou dangereux", "Unreadable or unsafe lot"),
    Code("IRR_PDF", "technique", "PDF illisible", "Unreadable PDF"),
    Code("IRR_PDF_CHIFFRE", "technique", "PDF chiffré", "Encrypted PDF"),
    Code("IRR_PDF_ACTIF", "technique", "PDF avec contenu actif (JavaScript, lancement)", "PDF with active content (JavaScript, launch)"),
    Code("IRR_PDF_SEUL", "technique", "PDF sans données de facture", "PDF without invoice data"),
    Code("IRR_TAILLE_PJ", "technique", "Pièce jointe trop volumineuse", "Attachment too large"),
    Code("IRR_NOM_PJ", "technique", "Nom de pièce jointe invalide", "Invalid attachment name"),
    Code("IRR_VID_PJ", "technique", "Pièce jointe vide", "Empty attachment"),
    Code("IRR_EXT_DOC", "technique", "Extension de pièce jointe non autorisée", "Attachment extension not allowed"),
    # drop folders (inbox/<partner>/): files set aside in quarantine/, for the operators
    Code("IRR_PARTENAIRE", "technique", "Dossier de dépôt d'aucun partenaire connu", "Drop folder of no known partner"),
    Code("IRR_NOM_DOSSIER", "technique", "Nom de dossier de dépôt inutilisable", "Unusable drop folder name"),
    # signatures
    Code("SIG_ALTEREE", "technique", "Signature altérée : le contenu signé a changé", "Signature broken: signed content changed"),
    Code("SIG_MODIFIEE", "technique", "Document modifié après signature", "Document modified after signing"),
    Code("SIG_NON_APPROUVEE", "technique", "Signataire non rattaché à une autorité de confiance", "Signer does not chain to a trusted root"),
    Code("SIG_ILLISIBLE", "technique", "Signature illisible", "Unreadable signature"),
    Code("SIG_PLAGE", "technique", "Plage signée (ByteRange) hors du fichier, incohérente ou incomplète", "Signed byte range (ByteRange) outside the file, inconsistent or incomplete"),
    Code("SIG_HORODATAGE", "technique", "Horodatage absent, illisible ou invalide", "Timestamp missing, unreadable or broken"),
    Code("SIG_MASQUEE", "technique", "Signature masquée : hors de la structure du PDF (xref ou trailer cassé ou falsifié)", "Hidden signature: outside the PDF's structure (broken or forged xref or trailer)"),
    Code("SIG_SOUS_FILTRE", "technique", "Format de signature ancien ou non pris en charge (/SubFilter)", "Legacy or unsupported signature format (/SubFilter)"),
    Code("SIG_AJOUT_PERMIS", "technique", "Ajout permis après signature (formulaire rempli)", "Permitted change after signing (form filled)"),
    Code("FX_INCOHERENT", "technique", "Factur-X incohérent (profil XML/XMP, nom ou nombre de XML embarqués)", "Inconsistent Factur-X (XML/XMP profile, embedded XML name or count)"),
    # business (rejet)
    Code("REJ_SEMAN", "metier", "Règle sémantique EN 16931 non respectée", "EN 16931 business rule violated"),
    Code("REJ_UNI", "metier", "Facture déjà reçue (même fournisseur, numéro, année)", "Invoice already received (same supplier, number, year)"),
    Code("REJ_COH", "metier", "Données incohérentes", "Inconsistent data"),
    Code("REJ_CONT_B2G", "metier", "Règle du secteur public non respectée", "Public-sector rule violated"),
    Code("SIRET_ERR", "metier", "SIRET invalide", "Invalid SIRET"),
    Code("DEST_INC", "metier", "Destinataire inconnu", "Unknown recipient"),
    Code("DEST_ERR", "metier", "Destinataire inactif ou erroné", "Recipient inactive or wrong"),
    Code("DOUBLON", "metier", "Flux déjà reçu (même contenu)", "Flow already received (same content)"),
    # the gateway itself
    Code("ERR_INTERNE", "technique", "Erreur interne de la passerelle ; le fichier est conservé", "Gateway internal error; the file is kept"),
    Code("ERR_INTERROMPU", "technique", "Le traitement de ce fichier s'est interrompu à plusieurs reprises ; il est refusé sans être relu, le fichier est conservé", "Processing this file stopped several times without an outcome; it is refused without being read again, the file is kept"),
    Code("ERR_VALIDATEUR", "technique", "Validateur indisponible : la pièce n'est pas acceptée", "Validator unavailable: the piece is not accepted"),
    # life after delivery (status files, gateway/lifecycle_rules.py)
    Code("STATUT_INTERDIT", "metier", "Ce statut ne peut pas suivre le statut actuel de la pièce", "This status cannot follow the piece's current status"),
    Code("STATUT_NON_AUTORISE", "metier", "Vous n'êtes pas autorisé à donner ce statut à cette pièce", "You may not set this status on this piece"),
    Code("STATUT_MOTIF", "metier", "Motif obligatoire pour ce statut", "A reason is mandatory for this status"),
    Code("STATUT_INCONNU", "metier", "Statut inconnu", "Unknown status"),
    Code("PIECE_INCONNUE", "metier", "Pièce introuvable", "Piece not found"),
    # who may deposit what (structures and roles in a contract, gateway/lifecycle/deposit_rights.toml)
    Code("REJ_ROLE", "metier", "Le déposant n'agit pour aucune structure ayant le rôle requis pour ce cadre dans ce marché", "The depositor acts for no structure holding the role this cadre needs in this contract"),
]

CODES: dict[str, Code] = {c.code: c for c in _TABLE}


def finding(
    code: str,
    message: str | None = None,
    message_fr: str | None = None,
    *,
    location: Location | None = None,
    value: str | None = None,
    severity: Severity = Severity.ERROR,
    rule: str | None = None,
    stage: str = "",
) -> Finding:
    """Build a Finding for a known code; unknown codes are a programming error."""
    c = CODES[code]
    return Finding(
        code=code,
        message=message or c.en,
        message_fr=message_fr or (c.fr if message is None else message),
        location=location,
        value=value,
        severity=severity,
        rule=rule,
        stage=stage,
    )


def nature(code: str) -> str:
    c = CODES.get(code)
    return c.nature if c else "technique"

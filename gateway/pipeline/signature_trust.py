"""What signatures are judged against: the trust roots and the validation time;
who signed, and why a signer is not trusted (in English and French).

Nothing is trusted until an operator drops a CA certificate in the home's
`trust/` folder (or a `[signatures] trust_dirs` folder). Every signature gets
a fresh ValidationContext (they are stateful) on those roots, never fetching
anything from the network.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509 as pyca_x509

from gateway.core.config import Settings

TRUST_SUFFIXES = (".pem", ".crt", ".cer", ".der")

log = logging.getLogger("gateway.pipeline.signatures")  # one logger for the signature verdicts


def trust_dirs(settings: Settings) -> list[Path]:
    """<home>/trust plus `[signatures] trust_dirs` (relative to the home)."""
    extra = settings.section("signatures").get("trust_dirs", []) or []
    dirs = [settings.trust]
    for d in extra:
        p = Path(d)
        dirs.append(p if p.is_absolute() else settings.home / p)
    return dirs


def _trust_files(dirs: list[Path]) -> tuple[tuple[str, int, int], ...]:
    files = []
    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            if p.is_file() and p.suffix.lower() in TRUST_SUFFIXES:
                st = p.stat()
                files.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(files)


@lru_cache(maxsize=8)
def _load_roots(files: tuple[tuple[str, int, int], ...]) -> tuple[asn1_x509.Certificate, ...]:
    # keyed on (path, mtime, size) of every file: a changed folder reloads
    from pyhanko.keys import load_certs_from_pemder

    roots: list[asn1_x509.Certificate] = []
    for path, _mtime, _size in files:
        try:
            roots.extend(load_certs_from_pemder([path]))
        except Exception as exc:  # one bad file must not untrust the others
            log.warning("trust root %s not loaded: %s", path, exc)
    return tuple(roots)


def trust_roots(settings: Settings) -> tuple[asn1_x509.Certificate, ...]:
    return _load_roots(_trust_files(trust_dirs(settings)))


def validation_context(roots: tuple, moment: datetime | None) -> Any:
    """A fresh, offline ValidationContext (close it with `await vc.aclose()`)."""
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(trust_roots=list(roots), allow_fetching=False, revocation_mode="soft-fail",
                             moment=moment)


def validation_moment(settings: Settings, at: datetime | None = None) -> datetime | None:
    """`at`, else settings.validation_time, else None (now). Naive means UTC."""
    if at is None and settings.validation_time:
        at = _configured_moment(settings.validation_time)
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at


@lru_cache(maxsize=8)
def _configured_moment(text: str) -> datetime | None:
    # read once per value: every signed PDF asks, and a bad value is logged once
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        log.warning("validation_time %r is not an ISO datetime; validating at now", text)
        return None


# --- who signed, and why they are not trusted ---------------------------------------

def signer_name(cert: asn1_x509.Certificate | None) -> str | None:
    if cert is None:
        return None
    try:
        subject = pyca_x509.load_der_x509_certificate(cert.dump()).subject
        cn = subject.get_attributes_for_oid(pyca_x509.NameOID.COMMON_NAME)
        return str(cn[0].value) if cn else subject.rfc4514_string()
    except Exception:  # noqa: BLE001 - a name asn1crypto reads but cryptography does not
        return cert.subject.human_friendly


def trust_reason(status: Any, moment: datetime | None) -> tuple[str, str]:
    """Why a signer is not trusted, in English and French."""
    indic = getattr(status, "trust_problem_indic", None)
    when = moment.isoformat() if moment else "validation time (now)"
    quand = moment.isoformat() if moment else "l'heure de validation (maintenant)"
    name = "REVOKED_NO_POE" if getattr(status, "revoked", False) else getattr(indic, "name", "")
    invalid = (f"a certificate was not valid at {when} (expired or not yet valid)",
               f"un certificat n'était pas valide à {quand} (expiré ou pas encore valide)")
    weak = ("an algorithm is not allowed (weak or disallowed digest/signature)",
            "un algorithme n'est pas admis (empreinte ou signature faible ou interdite)")
    revoked = (f"the certificate is revoked (at {when})", f"le certificat est révoqué (à {quand})")
    return {
        "": ("no path to a trusted root", "aucun chemin vers une racine de confiance"),
        "NO_CERTIFICATE_CHAIN_FOUND": ("no chain to a trusted root (add the issuing CA to the trust folder)",
                                       "aucune chaîne vers une racine de confiance (ajoutez l'AC émettrice au "
                                       "dossier trust)"),
        "OUT_OF_BOUNDS_NO_POE": invalid,
        "OUT_OF_BOUNDS_NOT_REVOKED": invalid,
        "EXPIRED": (f"a certificate had expired at {when}", f"un certificat avait expiré à {quand}"),
        "NOT_YET_VALID": (f"a certificate was not yet valid at {when}",
                          f"un certificat n'était pas encore valide à {quand}"),
        "CRYPTO_CONSTRAINTS_FAILURE": weak,
        "CRYPTO_CONSTRAINTS_FAILURE_NO_POE": weak,
        "REVOKED_NO_POE": revoked,
        "REVOKED_CA_NO_POE": (f"an issuing CA certificate is revoked (at {when})",
                              f"un certificat d'AC émettrice est révoqué (à {quand})"),
        "CHAIN_CONSTRAINTS_FAILURE": ("the certificate chain breaks a constraint (key usage, path length, validity)",
                                      "la chaîne de certificats enfreint une contrainte (usage de clé, longueur, "
                                      "validité)"),
        "CERTIFICATE_CHAIN_GENERAL_FAILURE": (f"the certificate chain does not validate at {when} (a certificate "
                                              "may not be valid yet at that time)",
                                              f"la chaîne de certificats n'est pas valide à {quand} (un certificat "
                                              "n'était peut-être pas encore valide)"),
    }.get(name, (f"{name} (at {when})", f"{name} (à {quand})"))

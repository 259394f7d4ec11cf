"""A declaration file of structures, the partners acting for them, the actors
of contracts and their deposit agreements (`gateway structure import FILE`),
in TOML (see docs/examples/structures.toml). The whole file is checked before
anything is written: one mistake, named with its place, and nothing changes."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.core.roles import role_id
from gateway.store import partners
from gateway.store.structures import EVERY_CONTRACT, check_contract, check_siret

MAX_BYTES = 5 * 1024 * 1024
KNOWN = {"structure", "partner", "contract", "agreement"}


@dataclass
class Declarations:
    structures: list[tuple[str, str]] = field(default_factory=list)  # siret, name
    acts_for: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)  # partner, siret, services
    actors: list[tuple[str, str, str, str]] = field(default_factory=list)  # contract, siret, role, service
    agreements: list[tuple[str, str, str]] = field(default_factory=list)  # contract, by, for


class DeclarationError(ValueError):
    pass


def _list(data: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise DeclarationError(f"{where}{key}: a list of tables ([[{key}]])")
    return value


def _text(entry: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise DeclarationError(f"{where}: {key} must be {'a non-empty' if required else 'a'} string")
    return value.strip()


def _checked(where: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ValueError as exc:
        raise DeclarationError(f"{where}: {exc}") from None


def parse(text: str) -> Declarations:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(f"not valid TOML: {exc}") from None
    extra = sorted(set(data) - KNOWN)
    if extra:
        raise DeclarationError(f"unknown section(s) {', '.join(extra)}; known: {', '.join(sorted(KNOWN))}")
    out = Declarations()
    for i, e in enumerate(_list(data, "structure", ""), 1):
        w = f"structure #{i}"
        out.structures.append((_checked(w, check_siret, _text(e, "siret", w)), _text(e, "name", w, False)[:512]))
    for i, e in enumerate(_list(data, "partner", ""), 1):
        w = f"partner #{i}"
        name = _checked(w, partners.validate_name, _text(e, "name", w))
        acts = e.get("acts_for", [])
        if not isinstance(acts, list) or not acts:
            raise DeclarationError(f"{w} ({name}): acts_for must list SIRETs or {{siret, services}} tables")
        for a in acts:
            if isinstance(a, dict):
                siret, services = a.get("siret", ""), a.get("services", [])
            else:  # a SIRET alone: every service
                siret, services = a, []
            if not isinstance(services, list) or not all(isinstance(x, str) for x in services):
                raise DeclarationError(f"{w} ({name}): services must be a list of service codes")
            out.acts_for.append((name, _checked(f"{w} ({name})", check_siret, siret), tuple(services)))
    for i, e in enumerate(_list(data, "contract", ""), 1):
        w = f"contract #{i}"
        number = _checked(w, check_contract, _text(e, "number", w))
        w = f"contract {number}"
        for j, a in enumerate(_list(e, "actor", f"{w}: "), 1):
            aw = f"{w}, actor #{j}"
            out.actors.append((number, _checked(aw, check_siret, _text(a, "siret", aw)),
                               _checked(aw, role_id, _text(a, "role", aw)), _text(a, "service", aw, False)))
        out.agreements += [_agreement(g, number, f"{w}, agreement #{j}")
                           for j, g in enumerate(_list(e, "agreement", f"{w}: "), 1)]
    out.agreements += [_agreement(g, EVERY_CONTRACT, f"agreement #{j}")
                       for j, g in enumerate(_list(data, "agreement", ""), 1)]
    return out


def _agreement(g: dict[str, Any], contract: str, where: str) -> tuple[str, str, str]:
    by = _checked(where, role_id, _text(g, "by", where))
    for_ = _checked(where, role_id, _text(g, "for", where))
    if by == for_:
        raise DeclarationError(f"{where}: by and for are both {by}")
    return contract, by, for_


def read(path: Path) -> Declarations:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise DeclarationError(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeclarationError(f"{path}: cannot be read ({exc})") from None
    return parse(text)

"""Who deposits each cadre, as data (`deposit_rights.toml` beside the
life-cycle machine): the roles a structure must hold in the piece's contract,
and the roles a cadre's validator must hold. Checked when loaded, so a typo
is an error naming its key, not a deposit refused later."""
from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.core.roles import CONTRACT_ROLES
from gateway.lifecycle.compiler import LifecycleError

FILE_NAME = "deposit_rights.toml"


@dataclass(frozen=True)
class DepositRights:
    source: str = ""
    depositors: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cadre -> contract roles
    validators: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cadre -> roles its validator holds

    def roles(self, cadre: str) -> tuple[str, ...]:
        """The roles that deposit `cadre` (empty: the file says nothing of it, anyone may)."""
        return self.depositors.get(cadre, ())

    def validator_roles(self, cadre: str) -> tuple[str, ...]:
        return self.validators.get(cadre, ())


def packaged_file() -> Path:
    return Path(__file__).resolve().with_name(FILE_NAME)


def rights_file(settings: Any) -> Path:
    """`[lifecycle] deposit_rights` (relative to the home), else the packaged file."""
    section = settings.section("lifecycle") if settings is not None else {}
    given = section.get("deposit_rights")
    if not given:
        return packaged_file()
    path = Path(str(given))
    path = path if path.is_absolute() else Path(settings.home) / path
    if not path.is_file():
        raise LifecycleError(f"[lifecycle] deposit_rights: {path} does not exist")
    return path


def _table(data: dict[str, Any], key: str, source: str, cadres: frozenset[str]) -> dict[str, tuple[str, ...]]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise LifecycleError(f"{source}: [{key}] must be a table of cadre = [roles]")
    out = {}
    for cadre, roles in table.items():
        if cadres and cadre not in cadres:
            raise LifecycleError(f"{source}: {key}.{cadre}: no such cadre in the life-cycle machine")
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            raise LifecycleError(f"{source}: {key}.{cadre}: a non-empty list of roles")
        unknown = [r for r in roles if r not in CONTRACT_ROLES]
        if unknown:
            raise LifecycleError(f"{source}: {key}.{cadre}: unknown role(s) {', '.join(unknown)}; "
                                 f"roles are {', '.join(CONTRACT_ROLES)}")
        out[cadre] = tuple(roles)
    return out


def compile_rights(text: str, *, source: str = FILE_NAME, cadres: frozenset[str] = frozenset()) -> DepositRights:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LifecycleError(f"{source}: not valid TOML ({exc})") from None
    extra = sorted(set(data) - {"cadres", "validators"})
    if extra:
        raise LifecycleError(f"{source}: unknown section(s) {', '.join(extra)}; known: cadres, validators")
    return DepositRights(source, _table(data, "cadres", source, cadres), _table(data, "validators", source, cadres))


_cache: dict[tuple, DepositRights] = {}
_lock = threading.Lock()


def load_rights(path: Path, cadres: frozenset[str] = frozenset()) -> DepositRights:
    """The rights in `path`, cached per path, modification time and size."""
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError as exc:
        raise LifecycleError(f"{path}: cannot be read ({exc.strerror})") from None
    key = (str(path), st.st_mtime_ns, st.st_size, cadres)
    with _lock:
        hit = _cache.get(key)
    if hit is None:
        hit = compile_rights(path.read_text(encoding="utf-8"), source=str(path), cadres=cadres)
        with _lock:
            _cache[key] = hit
    return hit

"""The life of a piece after delivery, as data: statuses, who may set which,
what the platform sets on its own, delays and links between pieces.

The machine is read from the packaged `gateway/lifecycle/lifecycle.toml` (or
the file named by `[lifecycle] file` in gateway.toml, relative to the home)
and checked as a whole when loaded (gateway.lifecycle.compiler), so a mistake
in the file is an error naming its key, not a piece stuck later. Nothing here
touches the store: the worker asks `Machine.check` before it records a
change, and `entry` / `follow` / `deadline` / `link` for what the platform
does on its own.
"""
from __future__ import annotations

import copy
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping

from gateway.core import codes
from gateway.core.records import Finding
from gateway.lifecycle.compiler import LifecycleError, compile_text, delay_overrides
from gateway.lifecycle.rights import DepositRights, load_rights, rights_file
from gateway.lifecycle.terms import PARTIES, ROLE_FR, ROLES, ByLevels, CadreRules, LinkRule, StatusInfo

FILE_NAME = "lifecycle.toml"
STAGE = "lifecycle"


def _pick(by_levels: ByLevels, levels: int) -> tuple[str, ...]:
    """The variant for `levels` validators: the largest key not above it, else the smallest."""
    chosen = by_levels[0][1]
    for lv, statuses in by_levels:
        if lv <= levels:
            chosen = statuses
    return chosen


class Machine:
    """A loaded, checked lifecycle file. Immutable; shared between threads."""

    def __init__(self, *, source: str, statuses: dict[str, StatusInfo], cadres: dict[str, CadreRules],
                 delays: dict[str, float]) -> None:
        self.source = source
        self._statuses = statuses
        self._cadres = cadres
        self._delays = delays
        self._by_pivot = {s.pivot_id: s.name for s in statuses.values()}
        self.rights = DepositRights()  # who deposits each cadre: empty until `load` reads deposit_rights.toml

    # --- loading ---------------------------------------------------------------
    @classmethod
    def load(cls, settings: Any = None) -> "Machine":
        """The machine for a home: `[lifecycle] file` (relative to the home) or
        the packaged file, with `[lifecycle] delays` applied. Cached per file
        path, modification time and delays."""
        section: dict[str, Any] = settings.section("lifecycle") if settings is not None else {}
        path = packaged_file()
        if section.get("file"):
            given = Path(str(section["file"]))
            path = given if given.is_absolute() else Path(settings.home) / given
            if not path.is_file():
                raise LifecycleError(f"[lifecycle] file: {path} does not exist")
        overrides = delay_overrides(section.get("delays"))
        machine = cls.from_path(path, delays=overrides)
        rights = load_rights(rights_file(settings), frozenset(machine._cadres))
        if machine.rights is not rights:  # one immutable machine per (life cycle, rights) pair, shared
            with _cache_lock:
                key = (id(machine), id(rights))
                hit = _with_rights.get(key)
                if hit is None:
                    hit = copy.copy(machine)
                    hit.rights = rights
                    _with_rights[key] = hit
            machine = hit
        return machine

    @classmethod
    def from_path(cls, path: Path, *, delays: Mapping[str, float] | None = None) -> "Machine":
        path = Path(path).resolve()
        try:
            st = path.stat()
        except OSError as exc:
            raise LifecycleError(f"{path}: cannot be read ({exc.strerror})") from None
        key = (str(path), st.st_mtime_ns, st.st_size, tuple(sorted((delays or {}).items())))
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None:
            return hit
        machine = cls.from_text(path.read_text(encoding="utf-8"), source=str(path), delays=delays)
        with _cache_lock:
            _cache[key] = machine
        return machine

    @classmethod
    def from_text(cls, text: str, *, source: str = FILE_NAME, delays: Mapping[str, float] | None = None) -> "Machine":
        c = compile_text(text, source=source, delays=delays)
        return cls(source=c.source, statuses=c.statuses, cadres=c.cadres, delays=c.delays)

    # --- statuses ----------------------------------------------------------------
    def known(self, status: str) -> bool:
        return status in self._statuses

    def info(self, status: str) -> StatusInfo:
        try:
            return self._statuses[status]
        except KeyError:
            raise KeyError(f"unknown status {status!r}") from None

    def statuses(self) -> tuple[StatusInfo, ...]:
        return tuple(sorted(self._statuses.values(), key=lambda s: s.pivot_id))

    def by_pivot(self, pivot_id: str) -> str | None:
        """The status name for a CPPFactureStatuts/IdStatut ("7" and "07" alike)."""
        try:
            return self._by_pivot.get(f"{int(str(pivot_id).strip()):02d}")
        except ValueError:
            return None

    # --- cadres ------------------------------------------------------------------
    def cadres(self) -> tuple[str, ...]:
        return tuple(sorted(self._cadres, key=lambda c: int(c[1:])))

    def rules(self, cadre: str) -> CadreRules:
        try:
            return self._cadres[cadre]
        except KeyError:
            raise KeyError(f"no lifecycle for cadre {cadre!r}") from None

    def depositor(self, cadre: str) -> str:
        """The role of whoever deposits a piece of this cadre (A15: moe, A19: moa)."""
        return self.rules(cadre).depositor

    def entry(self, cadre: str, levels: int) -> tuple[str, ...]:
        return _pick(self.rules(cadre).entry, levels)

    def follow(self, cadre: str, status: str, levels: int) -> tuple[str, ...]:
        f = self.rules(cadre).follow.get(status)
        return _pick(f, levels) if f else ()

    def holder(self, cadre: str, status: str) -> str | None:
        return self.rules(cadre).holders.get(status)  # nobody holds a final status (checked at load)

    def deadline(self, cadre: str, status: str) -> tuple[timedelta, str] | None:
        then = self.rules(cadre).deadlines.get(status)
        if then is None:
            return None
        return timedelta(days=self._delays[status]), then

    def due(self, cadre: str, status: str, at: datetime) -> datetime | None:
        """When the delay of a piece of `cadre` that entered `status` at `at` runs out (None: no delay)."""
        d = self.deadline(cadre, status)
        return at + d[0] if d else None

    def link(self, cadre: str) -> LinkRule | None:
        return self.rules(cadre).link

    def notify(self, cadre: str, status: str) -> tuple[str, ...]:
        return self.rules(cadre).notify.get(status, PARTIES)

    def correctable(self, cadre: str, current: str, new: str, role: str) -> frozenset[str]:
        """The correction keys `role` may give with this move (none on most moves)."""
        return self.rules(cadre).corrections.get((current, new, role), frozenset())

    def moves_from(self, cadre: str, current: str) -> dict[str, tuple[str, ...]]:
        """role -> statuses that role may set from `current`, in file order."""
        out: dict[str, list[str]] = {}
        for new, roles in self.rules(cadre).moves.get(current, {}).items():
            for role in ROLES:
                if role in roles:
                    out.setdefault(role, []).append(new)
        return {r: tuple(v) for r, v in out.items()}

    # --- the one question the worker asks -------------------------------------------
    def check(self, *, cadre: str, current: str, new: str, role: str, reason: str | None,
              correction: Iterable[str] = ()) -> Finding | None:
        """None when `role` may move a piece of `cadre` from `current` to `new`
        (with a correction of these keys, if any); else why not, saying what is
        allowed instead."""
        if not self.known(new):
            return codes.finding(
                "STATUT_INCONNU", f"Unknown status {new!r}", f"Statut inconnu « {new} »", value=new, stage=STAGE)
        if cadre not in self._cadres:
            return codes.finding(
                "STATUT_INTERDIT", f"No lifecycle is defined for cadre {cadre!r}",
                f"Aucun cycle de vie n'est défini pour le cadre « {cadre} »", value=new, stage=STAGE)
        if not self.known(current):
            return codes.finding(
                "STATUT_INCONNU", f"The piece is in an unknown status {current!r}",
                f"La pièce est dans un statut inconnu « {current} »", value=new, stage=STAGE)
        if role not in ROLES:
            return codes.finding(
                "STATUT_NON_AUTORISE", f"Unknown role {role!r}; roles are {', '.join(ROLES)}",
                f"Rôle inconnu « {role} » ; rôles : {', '.join(ROLES)}", value=new, stage=STAGE)
        if self._statuses[current].final:
            return codes.finding(
                "STATUT_INTERDIT", f"{current} is final: no status may follow it (asked: {new})",
                f"{current} est un statut final : aucun statut ne peut le suivre (demandé : {new})",
                value=new, stage=STAGE)
        allowed = self.rules(cadre).moves.get(current, {})
        roles = allowed.get(new, frozenset())
        if role in roles:
            if self._statuses[new].needs_reason and not (reason or "").strip():
                return codes.finding(
                    "STATUT_MOTIF", f"A reason (motif) is mandatory to set {new}",
                    f"Un motif est obligatoire pour passer au statut {new}", value=new, stage=STAGE)
            return self._correction_refused(cadre, current, new, role, correction)
        mine_en, mine_fr = self._yours(cadre, current, role)
        if roles:
            who = [r for r in ROLES if r in roles]
            return codes.finding(
                "STATUT_NON_AUTORISE",
                f"Only {' or '.join(who)} may set {new} on an {cadre} piece in {current}, not {role}; {mine_en}",
                f"Seul(e) {' ou '.join(ROLE_FR[r] for r in who)} peut passer une pièce {cadre} de {current} à "
                f"{new}, pas {ROLE_FR[role]} ; {mine_fr}",
                value=new, stage=STAGE)
        return codes.finding(
            "STATUT_INTERDIT", f"{new} cannot follow {current} on an {cadre} piece; {mine_en}",
            f"{new} ne peut pas suivre {current} pour une pièce {cadre} ; {mine_fr}", value=new, stage=STAGE)

    def _correction_refused(self, cadre: str, current: str, new: str, role: str,
                            correction: Iterable[str]) -> Finding | None:
        """A correction rewrites where a piece goes: only on the moves marked
        for it (recycling, naming the right validator), never with another status."""
        allowed = self.correctable(cadre, current, new, role)
        extra = sorted(set(correction) - allowed)
        if not extra:
            return None
        if allowed:
            en = f"this move corrects only {', '.join(sorted(allowed))}"
            fr = f"ce changement ne corrige que {', '.join(sorted(allowed))}"
        else:
            moves = sorted(f"{a} -> {b}" for a, b, r in self.rules(cadre).corrections if r == role)
            en = (f"{role} corrects an {cadre} piece only with {', '.join(moves)}" if moves
                  else f"{role} corrects nothing")
            fr = (f"{ROLE_FR[role]} ne corrige une pièce {cadre} qu'avec {', '.join(moves)}" if moves
                  else f"{ROLE_FR[role]} ne corrige rien")
        return codes.finding(
            "STATUT_INTERDIT", f"A correction ({', '.join(extra)}) cannot come with {new} from {current}; {en}",
            f"Une correction ({', '.join(extra)}) ne peut accompagner {new} depuis {current} ; {fr}",
            value=new, stage=STAGE)

    def _yours(self, cadre: str, current: str, role: str) -> tuple[str, str]:
        """What `role` (and the others) may set from `current`, in words."""
        moves = self.moves_from(cadre, current)
        others = "; ".join(f"{r}: {', '.join(s)}" for r, s in moves.items() if r != role)
        others_fr = " ; ".join(f"{ROLE_FR[r]} : {', '.join(s)}" for r, s in moves.items() if r != role)
        if role in moves:
            en = f"from {current}, {role} may set {', '.join(moves[role])}"
            fr = f"depuis {current}, {ROLE_FR[role]} peut passer à {', '.join(moves[role])}"
        else:
            en = f"from {current}, {role} may set nothing"
            fr = f"depuis {current}, {ROLE_FR[role]} ne peut rien changer"
        if others:
            en += f" (others: {others})"
            fr += f" (autres : {others_fr})"
        return en, fr


_cache: dict[tuple, Machine] = {}
_with_rights: dict[tuple[int, int], Machine] = {}
_cache_lock = threading.Lock()


def packaged_file() -> Path:
    """The life-cycle file shipped beside this module (package data in a wheel)."""
    return Path(__file__).resolve().with_name(FILE_NAME)

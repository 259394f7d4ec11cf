"""The life of a piece after delivery, as data: statuses, who may set which,
what the platform sets on its own, delays and links between pieces.

The machine is read from `mappings/lifecycle.toml` (or the file named by
`[lifecycle] file` in gateway.toml, relative to the home) and checked as a
whole when loaded, so a mistake in the file is an error naming its key, not a
piece stuck later. Nothing here touches the store: the worker asks
`Machine.check` before it records a change, and `entry` / `follow` /
`deadline` / `link` for what the platform does on its own.
"""
from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping

from gateway.core import codes
from gateway.core.invoice import CADRES
from gateway.core.records import Finding

ROLES = ("supplier", "recipient", "validator1", "validator2", "moe", "moa", "platform")
PARTIES = ROLES[:-1]  # roles that are someone (not the platform itself)
DEPOSITOR = "depositor"  # in the file: the role that deposited a piece of the cadre
ROUTE = "@route"  # in the file: the cadre's route
FILE_NAME = "lifecycle.toml"
STAGE = "lifecycle"

# What a correction (a status file's "correction") may change: the piece's
# routing columns, checked like a new recipient, and a party named wrongly.
# Which move may carry which of them is data: `correction` on a move.
CORRECTION_FIELDS = ("recipient_siret", "service_code", "engagement_number")
CORRECTION_PARTIES: Mapping[str, tuple[str, str]] = {  # key -> (role, attribute of the party)
    "validator_siret": ("validator1", "siret"), "validator_service": ("validator1", "service"),
    "validator2_siret": ("validator2", "siret"), "validator2_service": ("validator2", "service"),
    "moe_siret": ("moe", "siret"), "moe_service": ("moe", "service")}
CORRECTION_KEYS = CORRECTION_FIELDS + tuple(CORRECTION_PARTIES)

ROLE_FR = {
    "supplier": "le fournisseur", "recipient": "le destinataire", "validator1": "le premier valideur",
    "validator2": "le second valideur", "moe": "la maîtrise d'œuvre", "moa": "la maîtrise d'ouvrage",
    "platform": "la plateforme",
}


class LifecycleError(ValueError):
    """The lifecycle file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class StatusInfo:
    name: str
    pivot_id: str  # CPPFactureStatuts/IdStatut, "01".."41"
    cdv: int | None  # 2026 reform code 200-213, None when none fits
    label_fr: str
    final: bool
    needs_reason: bool = False  # a motif is mandatory to set it
    cdv_label: str | None = None


@dataclass(frozen=True)
class LinkRule:
    """A piece of `cadre` continues an earlier piece of one of `links_to`
    (same billing file); the earlier piece, when in one of `from_statuses`,
    gets `linked_status`."""

    cadre: str
    links_to: tuple[str, ...]
    linked_status: str
    from_statuses: tuple[str, ...] = ()


ByLevels = tuple[tuple[int, tuple[str, ...]], ...]  # ((levels, statuses), ...) sorted by levels


@dataclass(frozen=True, eq=False)
class CadreRules:
    cadre: str
    depositor: str
    entry: ByLevels
    follow: Mapping[str, ByLevels]
    holders: Mapping[str, str]
    deadlines: Mapping[str, str]  # status -> status the platform sets when its delay runs out
    notify: Mapping[str, tuple[str, ...]]
    moves: Mapping[str, Mapping[str, frozenset[str]]]  # current -> new -> roles
    corrections: Mapping[tuple[str, str, str], frozenset[str]]  # (current, new, role) -> correction keys
    link: LinkRule | None


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
        overrides = _delay_overrides(section.get("delays"))
        return cls.from_path(path, delays=overrides)

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
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise LifecycleError(f"{source}: not valid TOML: {exc}") from None
        return _Compiler(raw, source, dict(delays or {})).machine()

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
_cache_lock = threading.Lock()


def packaged_file() -> Path:
    """mappings/lifecycle.toml of the source tree, or gateway/mappings/ in an installed wheel."""
    src = Path(__file__).resolve().parents[2] / "mappings" / FILE_NAME
    return src if src.exists() else Path(__file__).resolve().parents[1] / "mappings" / FILE_NAME


def _delay_overrides(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LifecycleError("[lifecycle] delays: must be a table of STATUS = days, e.g. { A_VALIDER_1 = 15 }")
    out: dict[str, float] = {}
    for status, days in value.items():
        out[str(status)] = _days(days, f"[lifecycle] delays.{status}")
    return out


def _days(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise LifecycleError(f"{where}: must be a positive number of days, not {value!r}")
    return float(value)


# --- reading and checking the file ---------------------------------------------

_STATUS_KEYS = {"pivot", "cdv", "label", "final", "reason"}
_CIRCUIT_KEYS = {"route", "entry", "follow", "holders", "deadlines", "notify", "moves", "chains"}
_CADRE_KEYS = {"label", "depositor", "circuits", "link"} | (_CIRCUIT_KEYS - {"moves", "chains"})
_TOP_KEYS = {"version", "delays", "cdv", "statuses", "circuits", "cadres"}


class _Compiler:
    def __init__(self, raw: dict[str, Any], source: str, delay_overrides: dict[str, float]) -> None:
        self.raw = raw
        self.source = source
        self.delay_overrides = delay_overrides

    def fail(self, key: str, msg: str) -> LifecycleError:
        return LifecycleError(f"{self.source}: {key}: {msg}")

    # small typed readers -------------------------------------------------------------
    def table(self, value: Any, key: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, not {type(value).__name__}")
        if allowed is not None:
            extra = sorted(set(value) - allowed)
            if extra:
                raise self.fail(f"{key}.{extra[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, not {value!r}")
        return value.strip()

    def status(self, value: Any, key: str) -> str:
        name = self.text(value, key)
        if name not in self.statuses:
            raise self.fail(key, f"unknown status {name!r} (not in [statuses])")
        return name

    def role(self, value: Any, key: str, *, depositor: bool = True, platform: bool = True) -> str:
        name = self.text(value, key)
        ok = set(ROLES if platform else PARTIES) | ({DEPOSITOR} if depositor else set())
        if name not in ok:
            raise self.fail(key, f"unknown role {name!r}; roles: {', '.join(sorted(ok))}")
        return name

    def status_list(self, value: Any, key: str, *, route_ok: bool = False) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(key, "must be a non-empty list of statuses")
        out = []
        for i, v in enumerate(value):
            if route_ok and v == ROUTE:
                out.append(ROUTE)
            else:
                out.append(self.status(v, f"{key}[{i}]"))
        return tuple(out)

    def corrections(self, move: dict[str, Any], key: str) -> frozenset[str]:
        value = move.get("correction", [])
        if not isinstance(value, list):
            raise self.fail(f"{key}.correction", f"must be a list of correction keys ({', '.join(CORRECTION_KEYS)})")
        for i, k in enumerate(value):
            if k not in CORRECTION_KEYS:
                raise self.fail(f"{key}.correction[{i}]", f"unknown correction {k!r}; corrections: "
                                                          f"{', '.join(CORRECTION_KEYS)}")
        return frozenset(value)

    def by_levels(self, value: Any, key: str) -> ByLevels:
        if isinstance(value, list):
            return ((0, self.status_list(value, key, route_ok=True)),)
        tab = self.table(value, key)
        if not tab:
            raise self.fail(key, "must be a list of statuses or a table keyed \"0\", \"1\", \"2\"")
        out = []
        for lv, statuses in tab.items():
            if lv not in ("0", "1", "2"):
                raise self.fail(f"{key}.{lv}", "levels must be \"0\", \"1\" or \"2\" (validators given)")
            out.append((int(lv), self.status_list(statuses, f"{key}.{lv}", route_ok=True)))
        return tuple(sorted(out))

    # the file --------------------------------------------------------------------
    def machine(self) -> Machine:
        raw = self.table(self.raw, "(top)", _TOP_KEYS)
        if raw.get("version") != 1:
            raise self.fail("version", f"must be 1, not {raw.get('version')!r}")
        self.cdv_labels = self.read_cdv(raw.get("cdv", {}))
        self.statuses = self.read_statuses(raw.get("statuses"))
        self.delays = {str(k): _days(v, f"{self.source}: delays.{k}")
                       for k, v in self.table(raw.get("delays", {}), "delays").items()}
        for status in self.delays:
            self.status(status, f"delays.{status}")
        for status, days in self.delay_overrides.items():
            if status not in self.statuses:
                raise LifecycleError(f"[lifecycle] delays.{status}: unknown status")
            self.delays[status] = days
        circuits = self.table(raw.get("circuits"), "circuits")
        self.circuits = {name: self.read_circuit(c, f"circuits.{name}") for name, c in circuits.items()}
        cadres_raw = self.table(raw.get("cadres"), "cadres")
        cadres = {c: self.read_cadre(c, v) for c, v in cadres_raw.items()}
        missing = sorted(CADRES - set(cadres), key=lambda c: int(c[1:]))
        if missing:  # every cadre a piece may have must have a life
            raise self.fail(f"cadres.{missing[0]}", f"missing: every cadre needs an entry ({', '.join(missing)})")
        self.add_links(cadres)
        cadres = {c: replace(r, moves={a: {b: frozenset(roles) for b, roles in m.items()} for a, m in r.moves.items()})
                  for c, r in cadres.items()}
        self.check_cadres(cadres)
        return Machine(source=self.source, statuses=self.statuses, cadres=cadres, delays=self.delays)

    def read_cdv(self, value: Any) -> dict[int, str]:
        out = {}
        for code, label in self.table(value, "cdv").items():
            if not code.isdigit() or not 200 <= int(code) <= 213:
                raise self.fail(f"cdv.{code}", "CDV codes are 200 to 213")
            out[int(code)] = self.text(label, f"cdv.{code}")
        return out

    def read_statuses(self, value: Any) -> dict[str, StatusInfo]:
        out: dict[str, StatusInfo] = {}
        pivots: dict[str, str] = {}
        for name, v in self.table(value, "statuses").items():
            key = f"statuses.{name}"
            if not name.replace("_", "").isalnum() or name.upper() != name:
                raise self.fail(key, "status names are upper-case letters, digits and _")
            v = self.table(v, key, _STATUS_KEYS)
            pivot = v.get("pivot")
            if not isinstance(pivot, str) or len(pivot) != 2 or not pivot.isdigit() or not 1 <= int(pivot) <= 41:
                raise self.fail(f"{key}.pivot", f"must be a 2-digit string from \"01\" to \"41\", not {pivot!r}")
            if pivot in pivots:
                raise self.fail(f"{key}.pivot", f"{pivot} is already the number of {pivots[pivot]}")
            pivots[pivot] = name
            cdv = v.get("cdv")
            if cdv is not None and (isinstance(cdv, bool) or not isinstance(cdv, int) or not 200 <= cdv <= 213):
                raise self.fail(f"{key}.cdv", f"must be a CDV code from 200 to 213, not {cdv!r}")
            for flag in ("final", "reason"):
                if not isinstance(v.get(flag, False), bool):
                    raise self.fail(f"{key}.{flag}", "must be true or false")
            out[name] = StatusInfo(name=name, pivot_id=pivot, cdv=cdv, label_fr=self.text(v.get("label"), f"{key}.label"),
                                   final=v.get("final", False), needs_reason=v.get("reason", False),
                                   cdv_label=self.cdv_labels.get(cdv) if cdv is not None else None)
        if not out:
            raise self.fail("statuses", "no status defined")
        return out

    def read_circuit(self, value: Any, key: str) -> dict[str, Any]:
        v = self.table(value, key, _CIRCUIT_KEYS)
        c = self.read_tables(v, key)
        moves: list[tuple[str, tuple[str, ...], tuple[str, ...], frozenset[str]]] = []
        for i, m in enumerate(v.get("moves", [])):
            mk = f"{key}.moves[{i}]"
            m = self.table(m, mk, {"by", "from", "to", "correction"})
            moves.append((self.role(m.get("by"), f"{mk}.by"), self.status_list(m.get("from"), f"{mk}.from"),
                          self.status_list(m.get("to"), f"{mk}.to"), self.corrections(m, mk)))
        for i, ch in enumerate(v.get("chains", [])):
            ck = f"{key}.chains[{i}]"
            ch = self.table(ch, ck, {"by", "steps", "skip"})
            by = self.role(ch.get("by"), f"{ck}.by")
            steps = self.status_list(ch.get("steps"), f"{ck}.steps")
            skip = ch.get("skip", False)
            if not isinstance(skip, bool):
                raise self.fail(f"{ck}.skip", "must be true or false")
            for j, step in enumerate(steps[:-1]):
                moves.append((by, (step,), steps[j + 1:] if skip else (steps[j + 1],), frozenset()))
        c["moves"] = moves
        return c

    def read_tables(self, v: dict[str, Any], key: str) -> dict[str, Any]:
        """The per-status tables a circuit or a cadre may give."""
        c: dict[str, Any] = {}
        if "route" in v:
            c["route"] = self.status_list(v["route"], f"{key}.route")
        if "entry" in v:
            c["entry"] = self.by_levels(v["entry"], f"{key}.entry")
        c["follow"] = {self.status(s, f"{key}.follow.{s}"): self.by_levels(f, f"{key}.follow.{s}")
                       for s, f in self.table(v.get("follow", {}), f"{key}.follow").items()}
        c["holders"] = {self.status(s, f"{key}.holders.{s}"): self.role(r, f"{key}.holders.{s}")
                        for s, r in self.table(v.get("holders", {}), f"{key}.holders").items()}
        c["deadlines"] = {self.status(s, f"{key}.deadlines.{s}"): self.status(t, f"{key}.deadlines.{s}")
                          for s, t in self.table(v.get("deadlines", {}), f"{key}.deadlines").items()}
        notify = {}
        for s, roles in self.table(v.get("notify", {}), f"{key}.notify").items():
            self.status(s, f"{key}.notify.{s}")
            if not isinstance(roles, list):
                raise self.fail(f"{key}.notify.{s}", "must be a list of roles")
            notify[s] = tuple(self.role(r, f"{key}.notify.{s}[{i}]", platform=False) for i, r in enumerate(roles))
        c["notify"] = notify
        return c

    def read_cadre(self, cadre: str, value: Any) -> CadreRules:
        key = f"cadres.{cadre}"
        if not (cadre[:1] == "A" and cadre[1:].isdigit()):
            raise self.fail(key, "cadres are named A1 to A25")
        v = self.table(value, key, _CADRE_KEYS)
        self.text(v.get("label"), f"{key}.label")  # for readers of the file: the code does not use it
        depositor = self.role(v.get("depositor"), f"{key}.depositor", depositor=False, platform=False)
        names = v.get("circuits")
        if not isinstance(names, list) or not names:
            raise self.fail(f"{key}.circuits", "must be a non-empty list of circuit names")
        parts = []
        for i, n in enumerate(names):
            if n not in self.circuits:
                raise self.fail(f"{key}.circuits[{i}]", f"unknown circuit {n!r}; circuits: {', '.join(self.circuits)}")
            parts.append(self.circuits[n])
        own = self.read_tables(v, key)
        layers = [own, *parts]  # the cadre's own tables first: first definition wins

        def first(name: str) -> Any:
            for layer in layers:
                if name in layer:
                    return layer[name]
            return None

        def merged(name: str) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for layer in reversed(layers):
                out.update(layer.get(name, {}))
            return out

        def resolve(role: str) -> str:
            return depositor if role == DEPOSITOR else role

        route = first("route") or ()

        def expand(statuses: tuple[str, ...], where: str) -> tuple[str, ...]:
            out: list[str] = []
            for s in statuses:
                if s == ROUTE:
                    if not route:
                        raise self.fail(where, f"uses {ROUTE} but the cadre has no route")
                    out.extend(route)
                else:
                    out.append(s)
            return tuple(out)

        entry_raw = first("entry")
        if entry_raw is None:
            raise self.fail(key, "no entry (neither the cadre nor its circuits give one)")
        entry = tuple((lv, expand(s, f"{key}.entry")) for lv, s in entry_raw)
        for lv, s in entry:
            if s[0] != "DEPOSEE":
                raise self.fail(f"{key}.entry", f"must start with DEPOSEE (levels {lv}: {', '.join(s)})")
        follow = {st: tuple((lv, expand(s, f"{key}.follow.{st}")) for lv, s in f) for st, f in merged("follow").items()}
        holders = {st: resolve(r) for st, r in merged("holders").items()}
        notify = {st: tuple(dict.fromkeys(resolve(r) for r in roles)) for st, roles in merged("notify").items()}
        deadlines = merged("deadlines")
        moves: dict[str, dict[str, set[str]]] = {}
        corrections: dict[tuple[str, str, str], frozenset[str]] = {}

        def add(frm: str, to: str, role: str) -> None:
            moves.setdefault(frm, {}).setdefault(to, set()).add(role)

        for part in parts:
            for by, frm, to, keys in part["moves"]:
                for a in frm:
                    for b in to:
                        add(a, b, resolve(by))
                        if keys:
                            k = (a, b, resolve(by))
                            corrections[k] = corrections.get(k, frozenset()) | keys
        # what the platform does on its own is a move too
        for _, seq in entry:
            for a, b in zip(seq, seq[1:]):
                add(a, b, "platform")
        for st, variants in follow.items():
            for _, seq in variants:
                for a, b in zip((st, *seq), seq):
                    add(a, b, "platform")
        for st, then in deadlines.items():
            add(st, then, "platform")

        link = None
        if "link" in v:
            lk = self.table(v["link"], f"{key}.link", {"to", "status", "from"})
            to = lk.get("to")
            if not isinstance(to, list) or not to:
                raise self.fail(f"{key}.link.to", "must be a non-empty list of cadres")
            link = LinkRule(cadre=cadre, links_to=tuple(self.text(t, f"{key}.link.to[{i}]") for i, t in enumerate(to)),
                            linked_status=self.status(lk.get("status"), f"{key}.link.status"),
                            from_statuses=self.status_list(lk.get("from"), f"{key}.link.from"))
        return CadreRules(cadre=cadre, depositor=depositor, entry=entry, follow=follow, holders=holders,
                          deadlines=deadlines, notify=notify, moves=moves,  # moves frozen once links are in
                          corrections=corrections, link=link)

    def add_links(self, cadres: dict[str, CadreRules]) -> None:
        """The platform sets a link's status on the earlier piece: a move of the earlier cadre."""
        for c in cadres.values():
            if c.link is None:
                continue
            for i, target in enumerate(c.link.links_to):
                if target not in cadres:
                    raise self.fail(f"cadres.{c.cadre}.link.to[{i}]", f"unknown cadre {target!r}")
                if target == c.cadre:
                    raise self.fail(f"cadres.{c.cadre}.link.to[{i}]", "a cadre cannot link to itself")
                moves: dict[str, dict[str, set[str]]] = cadres[target].moves  # type: ignore[assignment]
                reach = _reachable(cadres[target])
                for s in c.link.from_statuses:
                    if s not in reach:
                        raise self.fail(f"cadres.{c.cadre}.link.from",
                                        f"a {target} piece is never in {s}, so it cannot be linked from it")
                    moves.setdefault(s, {}).setdefault(c.link.linked_status, set()).add("platform")

    def check_cadres(self, cadres: dict[str, CadreRules]) -> None:
        for c in cadres.values():
            key = f"cadres.{c.cadre}"
            for frm, tos in c.moves.items():
                if self.statuses[frm].final:
                    raise self.fail(key, f"{frm} is final but a move leaves it (to {', '.join(tos)})")
            for st in c.deadlines:
                if st not in self.delays:
                    raise self.fail(f"delays.{st}", f"missing: {key} has a deadline on {st}")
            for st, r in c.holders.items():
                if self.statuses[st].final:
                    raise self.fail(f"{key}.holders.{st}", f"{st} is final: nobody holds the piece")
            for st in sorted(_reachable(c)):
                if not self.statuses[st].final and st not in c.holders:
                    raise self.fail(f"{key}.holders.{st}", f"missing: a {c.cadre} piece may be in {st}, "
                                                          "so someone must hold it")


def _reachable(c: CadreRules) -> set[str]:
    seen = {s for _, seq in c.entry for s in seq}
    todo = list(seen)
    while todo:
        for nxt in c.moves.get(todo.pop(), {}):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen

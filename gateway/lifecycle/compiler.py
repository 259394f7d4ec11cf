"""Reading and checking a life-cycle file into the parts of a machine.

The file is checked as a whole when loaded, so a mistake in it is a
`LifecycleError` naming the file and its key, not a piece stuck later.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from typing import Any, Mapping

from gateway.core.invoice import CADRES
from gateway.lifecycle.terms import (CORRECTION_KEYS, DEPOSITOR, PARTIES, ROLES, ROUTE, ByLevels, CadreRules,
                                     LinkRule, StatusInfo)


class LifecycleError(ValueError):
    """The lifecycle file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Compiled:
    """A checked life-cycle file: what a `Machine` is made of."""

    source: str
    statuses: dict[str, StatusInfo]
    cadres: dict[str, CadreRules]
    delays: dict[str, float]


def compile_text(text: str, *, source: str, delays: Mapping[str, float] | None = None) -> Compiled:
    """The TOML text of a life-cycle file, read and checked, with these delays overriding its own."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LifecycleError(f"{source}: not valid TOML: {exc}") from None
    return _Compiler(raw, source, dict(delays or {})).compiled()


def delay_overrides(value: Any) -> dict[str, float]:
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
    def compiled(self) -> Compiled:
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
        return Compiled(source=self.source, statuses=self.statuses, cadres=cadres, delays=self.delays)

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

"""EN 16931 business rules (schematron compiled to XSLT), run by Saxon in a worker process.

Which rule sets judge a document is rulesets.plan's decision; this module
runs one rule set on one document.

saxonche 13 is a GraalVM native image that has aborted whole host processes
(akretion/factur-x#77, udata PR #3817), so Saxon never loads in the gateway
process. A child process (gateway.rules.schematron_worker, started as
`python -m gateway.rules.schematron_worker --serve`) owns one PySaxonProcessor
and the compiled rule sets; the gateway sends it (request id, rule set path,
xml bytes) over a pipe and gets compact tuples back. A child that dies or
overruns its time is killed and replaced, and the document gets
ERR_VALIDATEUR: rules that did not run never count as a pass. The service's
workers share one such process, its rule server (`Settings.rule_server`,
rules/saxon_link.py); other users of an engine get a child of their own.
"""
from __future__ import annotations

import atexit
import itertools
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from gateway.core import codes
from gateway.core.config import Settings
from gateway.core.records import Check, Finding, Location, Severity
from gateway.rules.rulesets import CORE, RuleSet, RuleSetNotFound, find_ruleset
from gateway.rules.saxon_link import ChildLink, Died, ServerLink, TimedOut, Unavailable

STAGE = "schematron"
DEFAULT_TIMEOUT = 30.0  # seconds for one document, once the rule set is compiled
START_TIMEOUT = 120.0  # interpreter + Saxon start, or compiling one rule set (EXTENDED is 2 MB)
START_RETRY_SECONDS = 10.0  # after a failed start, answer at once instead of retrying per document

_SEVERITY = {
    "fatal": Severity.ERROR,
    "error": Severity.ERROR,
    "warning": Severity.WARNING,
    "information": Severity.INFO,
    "info": Severity.INFO,
}


@dataclass(frozen=True)
class RuleResult:
    """What the rules said about one document; `ran` is False whenever they could not run."""

    findings: tuple[Finding, ...]
    ruleset: RuleSet | None
    ran: bool

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= Severity.ERROR)

    def as_check(self) -> Check:
        """The `en16931` check (or the rule set's own: `facturx-rules`, `extended-ctc-fr`, `br-fr`)."""
        used = self.ruleset.source if self.ruleset else ""
        name = self.ruleset.role if self.ruleset else CORE
        if not self.ran:
            return Check(name, "skipped", "; ".join(f.message for f in self.errors), used)
        warnings = sum(1 for f in self.findings if f.severity == Severity.WARNING)
        detail = f"{len(self.errors)} fatal, {warnings} warning(s)"
        return Check(name, "failed" if self.errors else "passed", detail, used)


class RuleEngine:
    """Runs rule sets in one long-lived Saxon process, restarted when it dies:
    a child of its own, or the service's rule server when the settings name one.

    Calls are serialised by a lock: one document at a time per engine (give
    each worker process its own engine, see `shared_engine`).
    """

    def __init__(self, settings: Settings, *, timeout: float | None = None) -> None:
        self.settings = settings
        self.timeout = float(timeout if timeout is not None else _configured_timeout(settings))
        self._lock = threading.Lock()
        self._worker: ChildLink | ServerLink | None = None
        self._compiled: set[str] = set()
        self._owner = os.getpid()
        self._start_failure: tuple[float, str] | None = None
        self._ids = itertools.count(1)

    # --- public API -----------------------------------------------------------
    def check(self, kind: str, xml: bytes, *, ruleset: RuleSet | None = None) -> RuleResult:
        """Apply a rule set to bytes the safe parser already accepted: `ruleset`
        (one of a rulesets.plan), else the EN 16931 core rules for `kind`
        ("ubl" or "cii")."""
        try:
            rs = ruleset or find_ruleset(kind, self.settings)
        except RuleSetNotFound as exc:
            return not_run(str(exc), None)
        if not rs.path.is_file():
            return not_run(f"rule set file not found: {rs.path}", rs)
        with self._lock:
            return self._run(rs, xml)

    @property
    def pid(self) -> int | None:
        """The Saxon process's id, if one is running."""
        w = self._worker
        return w.pid if w is not None and w.alive else None

    def close(self) -> None:
        """Stop the child; a later `check` starts a new one."""
        with self._lock:
            self._discard(kill=False)

    def __enter__(self) -> RuleEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one document ---------------------------------------------------------
    def _run(self, rs: RuleSet, xml: bytes) -> RuleResult:
        path = str(rs.path)
        deaths: list[str] = []
        for _attempt in range(2):  # a child that dies mid-document gets one fresh retry
            phase = "start"
            try:
                worker = self._ready_worker()
                if path not in self._compiled:
                    phase = "compile"
                    status, detail = worker.call(("compile", next(self._ids), path), max(START_TIMEOUT, self.timeout))
                    if status != "ok":
                        return not_run(f"rule set {rs.source} does not compile: {detail}", rs)
                    self._compiled.add(path)
                phase = "check"
                status, detail = worker.call(("check", next(self._ids), path, xml), self.timeout)
            except TimedOut:
                self._discard(kill=True)
                limit = self.timeout if phase == "check" else max(START_TIMEOUT, self.timeout)
                return not_run(f"the rules did not finish within {limit:g} s ({phase}); the worker was restarted", rs)
            except Died as exc:
                self._discard(kill=True)
                deaths.append(f"{phase}: {exc}")
                continue
            except Unavailable as exc:
                return not_run(str(exc), rs)
            if status == "ok":
                return RuleResult(tuple(_finding(*t, stage=rs.stage) for t in detail), rs, True)
            if status == "refused":  # the child's own safe parse said no: pass its findings on
                return RuleResult(tuple(detail), rs, False)
            return not_run(f"Saxon failed on this document: {detail}", rs)
        return not_run("the rule worker died twice on this document (" + "; ".join(deaths) + ")", rs)

    def _ready_worker(self) -> ChildLink | ServerLink:
        if self._owner != os.getpid():  # we were forked: that child belongs to the parent
            self._worker, self._compiled, self._owner = None, set(), os.getpid()
        w = self._worker
        if w is not None and w.alive:
            return w
        self._discard(kill=True)
        if self._start_failure and time.monotonic() - self._start_failure[0] < START_RETRY_SECONDS:
            raise Unavailable(self._start_failure[1])
        start_timeout = max(START_TIMEOUT, self.timeout)
        try:
            server = self.settings.rule_server
            self._worker = ServerLink(server, start_timeout) if server else ChildLink(start_timeout)
        except (Died, TimedOut, Unavailable, OSError) as exc:
            msg = f"the rule worker could not start: {exc}"
            self._start_failure = (time.monotonic(), msg)
            raise Unavailable(msg) from exc
        self._start_failure = None
        return self._worker

    def _discard(self, *, kill: bool) -> None:
        w, self._worker, self._compiled = self._worker, None, set()
        if w is not None and self._owner == os.getpid():
            w.stop(kill=kill)


_shared: dict[tuple[Any, ...], RuleEngine] = {}
_shared_lock = threading.Lock()


def shared_engine(settings: Settings) -> RuleEngine:
    """One engine per process (and per rule-set configuration), created on
    first use and closed at exit: for the pipeline's worker processes."""
    key = (os.getpid(), tuple(settings.schema_dirs), settings.artefacts_dir, _configured_timeout(settings),
           settings.rule_server)
    with _shared_lock:
        engine = _shared.get(key)
        if engine is None:
            engine = _shared[key] = RuleEngine(settings)
            atexit.register(engine.close)
    return engine


def _configured_timeout(settings: Settings) -> float:
    return float(settings.section("validation").get("schematron_timeout_seconds", DEFAULT_TIMEOUT))


def _finding(rule: str | None, flag: str | None, xpath: str | None, line: int | None,
             value: str | None, text: str, *, stage: str = STAGE) -> Finding:
    return codes.finding(
        "REJ_SEMAN", text, f"Règle {rule or '(sans identifiant)'} : {text}",
        location=Location(xpath=xpath, line=line), value=value,
        # No flag is a plain schematron failure: an error (as factur-x reads them).
        severity=_SEVERITY.get((flag or "fatal").lower(), Severity.ERROR),
        rule=rule, stage=stage)


def not_run(reason: str, rs: RuleSet | None) -> RuleResult:
    # no rule set: a lookup failed, and its reason names the rules (rulesets.RuleSetNotFound)
    en, fr = (f"{rs.label} rules", f"Les règles {rs.label}") if rs else ("The business rules", "Les règles métier")
    f = codes.finding(
        "ERR_VALIDATEUR", f"{en} could not be checked: {reason}", f"{fr} n'ont pas pu être vérifiées : {reason}",
        severity=Severity.ERROR, rule=rs.name if rs else None, stage=rs.stage if rs else STAGE)
    return RuleResult((f,), rs, False)

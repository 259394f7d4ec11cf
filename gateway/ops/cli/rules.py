"""`gateway rules list`: which artefact, version and source judges each
syntax and profile (XSD and rules), and whether its SHA-256 matches
schemas/MANIFEST.toml. Also the start check every command that judges runs
(`require_artefacts`)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

from gateway.core import config
from gateway.core.records import Format
from gateway.ops.options import HomeOpt, JsonOpt
# The store, the pipeline, the rules...: imported in the commands that use them, not here, as `gateway`
# imports every command group at start (ops/cli/main.py); `gateway --help` stays cheap.

app = typer.Typer(no_args_is_help=True)

PIVOT_XSD = "aife/CPPFacturePivot_V2_02.xsd"


def require_artefacts(settings: config.Settings) -> None:
    """Refuse to start when the shipped (or configured) artefacts do not match
    their manifest: a message naming each file, exit status 2."""
    from gateway.rules import manifest
    try:
        manifest.require(settings)
    except manifest.ArtefactError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@dataclass(frozen=True)
class Row:
    what: str  # the syntax and profile judged
    check: str  # xsd, en16931, facturx-rules, extended-ctc-fr, br-fr, status-xsd, pivot-xsd
    artefact: str  # title and version, or the package / configured file
    file: str
    sha256: str  # "ok", "ALTERED", "MISSING", or why it is not in the manifest
    upstream: str = ""


def _state(settings: config.Settings, path: Path | None) -> tuple[str, str, str, str]:
    """(artefact, file, sha256 verdict, upstream) of a file the lookups chose."""
    from gateway.rules import manifest
    if path is None:
        return "", "", "none found", ""
    root = manifest.root_of(settings).resolve()
    try:
        rel = path.resolve().relative_to(root).as_posix()
        m = manifest.load(root)
    except (ValueError, manifest.ArtefactError):
        return "", str(path), "not in the manifest (configured or package)", ""
    a = m.artefact_of(rel)
    if a is None:
        return "", m.display(rel), "not in the manifest", ""
    expected = dict(a.files)[rel]
    actual = manifest.sha256_of(root / rel)
    verdict = "ok" if actual == expected else ("MISSING" if actual is None else "ALTERED")
    return a.label, m.display(rel), verdict, a.upstream


def _row(settings: config.Settings, what: str, check: str, find, shipped: str) -> Row:  # noqa: ANN001 - a lookup
    """The row of what `find` gives (a SchemaRef or RuleSet); when the lookup
    refuses the artefacts, the shipped file it wanted, so its state shows."""
    from gateway.rules import manifest, rulesets
    try:
        found = find()
    except (rulesets.RuleSetNotFound, manifest.ArtefactError) as exc:
        if not shipped:
            return Row(what, check, "", "", f"unavailable: {exc}")
        artefact, file, sha, upstream = _state(settings, manifest.root_of(settings) / shipped)
        sha = sha if sha != "ok" else "ok, but refused with the others (PROBLEM below)"
        return Row(what, check, artefact, file, sha, upstream)
    check = getattr(found, "role", check)
    if found.source.startswith("package "):
        package, _, file = found.source.partition(": ")
        return Row(what, check, package, file, "not in the manifest (package)")
    artefact, file, sha, upstream = _state(settings, found.path)
    return Row(what, check, artefact or found.source, file, sha, upstream)


def rows(settings: config.Settings) -> list[Row]:
    """What judges what, as the lookups of a validation would find it."""
    from gateway.lifecycle.status_in import SHIPPED_STATUS_XSD, status_xsd
    from gateway.outputs import cdar_codes
    from gateway.rules import guidelines as gl, manifest, rulesets, xsd
    dirs, root = tuple(settings.schema_dirs), manifest.root_of(settings)
    out = [_row(settings, label, "xsd", lambda f=fmt: xsd.find_schema(f, dirs, root), xsd.WANTED[fmt][1])
           for fmt, label in ((Format.UBL_INVOICE, "UBL invoice"), (Format.UBL_CREDITNOTE, "UBL credit note"),
                              (Format.CII, "CII (any profile)"))]

    def core(kind: str):  # noqa: ANN202
        return lambda: rulesets.find_ruleset(kind, settings)

    def own(profile: str):  # noqa: ANN202
        return lambda: rulesets.facturx_ruleset(profile, settings)

    out.append(_row(settings, "UBL (any guideline)", "en16931", core("ubl"), rulesets.CEN["ubl"]))
    out.append(_row(settings, "CII: EN 16931, Factur-X EN 16931, XRechnung, other CIUS", "en16931", core("cii"),
                    rulesets.CEN["cii"]))
    for profile in (gl.BASIC, gl.EXTENDED):
        out.append(_row(settings, f"CII: Factur-X {profile}", "en16931", core("cii"), rulesets.CEN["cii"]))
        out.append(_row(settings, f"CII: Factur-X {profile}", rulesets.PROFILE_RULES, own(profile), ""))
    for profile in gl.POOR_PROFILES:
        out.append(_row(settings, f"CII: Factur-X {profile} (refused: no lines)", rulesets.PROFILE_RULES,
                        own(profile), ""))
    out.extend(_french_rows(settings))
    statut = status_xsd(settings)
    if statut is not None and not statut.is_file() and statut.parent == root / "aife":
        statut = root / SHIPPED_STATUS_XSD  # refused by status_xsd: show the shipped file's state
    artefact, file, sha, upstream = _state(settings, statut)
    out.append(Row("status files in (CPPStatut)", "status-xsd", artefact, file, sha, upstream))
    artefact, file, sha, upstream = _state(settings, root / PIVOT_XSD)
    out.append(Row("pivot written (CPPFacturePivot)", "pivot-xsd", artefact, file, sha, upstream))
    # the reform's life-cycle messages, read (status files in) and written ("cdar" status files, flow reports)
    for rel, check in ((cdar_codes.CDAR_XSD, "cdar-xsd"), (cdar_codes.CDV_RULES, "br-fr-cdv")):
        artefact, file, sha, upstream = _state(settings, root / rel)
        out.append(Row("CDAR life-cycle messages (CDV), in and out", check, artefact, file, sha, upstream))
    return out


def _french_rows(settings: config.Settings) -> list[Row]:
    """The reform's rules: an EXTENDED-CTC-FR invoice's profile and BR-FR-Flux2
    rules, and the BR-FR-Flux2 rules `gateway validate --profile fr-ctc` adds."""
    from gateway.rules import rulesets
    out = []
    for kind in ("ubl", "cii"):
        what = f"{kind.upper()}: EXTENDED-CTC-FR (French reform)"
        out.append(_row(settings, what, rulesets.FR_PROFILE, lambda k=kind: rulesets.fr_profile_ruleset(k, settings),
                        rulesets.fr_file(kind, rulesets.FR_PROFILE)))
        out.append(_row(settings, what, rulesets.BR_FR,
                        lambda k=kind: rulesets.br_fr_ruleset(k, settings, in_profile=True),
                        rulesets.fr_file(kind, rulesets.BR_FR, in_profile=True)))
        out.append(_row(settings, f"{kind.upper()}, validate --profile fr-ctc (added to its rules)", rulesets.BR_FR,
                        lambda k=kind: rulesets.br_fr_ruleset(k, settings), rulesets.fr_file(kind, rulesets.BR_FR)))
    return out


@app.command("list")
def list_rules(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Which artefact, version and source judges each syntax and profile, and
    whether its SHA-256 matches schemas/MANIFEST.toml. Exit 1 if one does not."""
    from gateway.rules import manifest
    s = config.load(home, create=False)
    found = rows(s)
    root = manifest.root_of(s).resolve()
    bad = [r for r in found if r.sha256 in ("ALTERED", "MISSING") or "refused" in r.sha256]
    try:
        problems = [st.problem for st in manifest.states(manifest.load(root)) if not st.ok]
    except manifest.ArtefactError as exc:
        problems = [str(exc)]
    if as_json:
        typer.echo(json.dumps({"artefacts": str(root), "problems": problems,
                               "rows": [asdict(r) for r in found]}, ensure_ascii=False))
    else:
        typer.echo(f"artefacts: {root} ({manifest.MANIFEST}): "
                   + ("every SHA-256 matches" if not problems else f"{len(problems)} problem(s)"))
        if s.schema_dirs:
            typer.echo("configured folders, searched first: " + ", ".join(str(d) for d in s.schema_dirs))
        for r in found:
            typer.echo(f"{r.what}\n  {r.check}: {r.artefact}\n  file: {r.file}\n  sha256: {r.sha256}"
                       + (f"\n  upstream: {r.upstream}" if r.upstream else ""))
        for p in problems:
            typer.echo(f"PROBLEM {p}")
    raise typer.Exit(1 if bad or problems else 0)

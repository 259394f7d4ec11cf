"""The formats of status files, one line each: a new format is one module
(an `Output`, see outputs/status_files.py) and one line here.

The key is the format's name in the settings (`[statuses] formats`, and
per party `[statuses.parties]`). A party's files of one change are written
in this order: JSON last, as connectors poll for it.
"""
from __future__ import annotations

from gateway.core.config import Settings
from gateway.outputs.status_cdar import CdarOutput
from gateway.outputs import cdar_codes
from gateway.outputs.status_cppstatut import CppStatutOutput
from gateway.outputs.status_files import Output
from gateway.outputs.status_json import JsonOutput

OUTPUTS: dict[str, Output] = {
    "cppstatut": CppStatutOutput(),  # the platform's CPPStatut / CPPFactureStatuts (V1.19)
    "cdar": CdarOutput(),  # the reform's CDAR D22B life-cycle messages (CDV), <name>.cdar.xml
    "json": JsonOutput(),  # {"statuses": [...]} with the reform's CDV codes
}


class UnknownFormat(ValueError):
    """The settings name a status-file format no module provides."""


def check_formats(settings: Settings) -> None:
    """Refuse settings naming a format the registry does not hold, saying
    where, and which exist (when the gateway starts, and when they are used)."""
    given = [("[statuses] formats", settings.status_formats)]
    given += [(f"[statuses.parties] {party}", names) for party, names in settings.party_status_formats]
    wrong = [f"{where}: unknown status-file format {name!r}" for where, names in given for name in names
             if name not in OUTPUTS]
    if wrong:
        raise UnknownFormat("; ".join(wrong) + f" (known formats: {', '.join(OUTPUTS)})")
    if any("cdar" in names for _where, names in given):
        cdar_codes.load()  # a broken cdar.toml stops the start (CdarCodesError), not each status change


def outputs_for(settings: Settings, party: str) -> tuple[Output, ...]:
    """The formats `party` (an outbox folder) receives: its own list, else
    the home's; in the registry's order."""
    wanted = dict(settings.party_status_formats).get(party, settings.status_formats)
    if any(name not in OUTPUTS for name in wanted):
        check_formats(settings)  # says which, and where
    return tuple(output for name, output in OUTPUTS.items() if name in wanted)


def receives(settings: Settings, party: str, name: str) -> bool:
    """Whether `party` (an outbox folder) receives the format `name` (e.g. a flow report's CDAR)."""
    return name in dict(settings.party_status_formats).get(party, settings.status_formats)

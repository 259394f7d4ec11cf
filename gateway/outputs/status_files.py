"""Status files told to parties: what one says (`StatusNotice`), what a
writer reads of the status machine (`Statuses`), and the seam every format
of status file implements (`Output`).

The formats: status_cppstatut.py (the platform's CPPStatut, valid against
CPPStatutPivot_V1_19.xsd) and status_json.py (JSON, with the reform's CDV
codes); the formats that exist: registry.py; the ones a party receives: its
home's `[statuses]` settings. Nothing here touches the store or the folders.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol


class StatusFileError(ValueError):
    """A notice cannot be written in a format (e.g. CPPStatut without a 14-digit debtor SIRET)."""


@dataclass(frozen=True)
class StatusNotice:
    """One status change told to a party."""

    piece_id: str
    invoice_number: str | None
    invoice_date: date | None
    cadre: str
    supplier_id: str | None
    supplier_name: str | None
    supplier_country: str | None
    debtor_siret: str | None
    debtor_name: str | None
    service_code: str | None
    status: str
    previous: str | None
    reason: str | None
    comment: str | None
    at: datetime
    by_role: str
    # for the reform's CDAR (status_cdar.py): the invoice's type code (BT-3), and the
    # SIRET of whoever set the status (the party of `by_role`), when known
    type_code: str | None = None
    by_id: str | None = None
    # a piece deposited for another actor (#16): who deposited it, in which role, for which
    deposited_by: str | None = None
    deposited_as: str | None = None
    deposited_for: str | None = None


class StatusFacts(Protocol):
    """What a status file says of one status (the machine's StatusInfo)."""

    @property
    def name(self) -> str: ...
    @property
    def label_fr(self) -> str: ...
    @property
    def final(self) -> bool: ...
    @property
    def pivot_id(self) -> str: ...  # CPPFactureStatuts/IdStatut, "01".."41"
    @property
    def cdv(self) -> int | None: ...  # 2026 reform code
    @property
    def cdv_label(self) -> str | None: ...
    @property
    def needs_reason(self) -> bool: ...


class Statuses(Protocol):
    """What the writers need of the status machine (gateway.lifecycle's
    Machine, a layer above: taken as this, never imported)."""

    def info(self, status: str) -> StatusFacts: ...


# (receiver id, receiver name) -> the file's bytes for that receiver
ForReceiver = Callable[[str, str], bytes]


class Output(Protocol):
    """One format of status file. `name` is how the settings name it
    (`[statuses] formats`), `suffix` ends its files' names (".xml").

    `render` builds the file for a change's notices once, and gives back
    what writes it for each party receiving it (most formats ignore the
    receiver; CPPStatut names it in its envelope). It raises ValueError
    (StatusFileError) when the notices cannot be told in this format: that
    party then gets the change in its other formats only."""

    @property
    def name(self) -> str: ...
    @property
    def suffix(self) -> str: ...

    def render(self, notices: Sequence[StatusNotice], machine: Statuses, *, platform_id: str,
               flow_id: str | None = None) -> ForReceiver: ...

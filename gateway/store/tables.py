"""Every table of the store, in one place.

Flows, pieces and the append-only event log; the status files waiting to be
written (notices); invoice numbers taken; partner accounts; the directory of
public structures. Queries live in the repository modules beside this one;
the schema changes through the Alembic migrations in `store/migrations/`.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, Text, text
from sqlmodel import Field, SQLModel

from gateway.core.clock import utcnow


class Flow(SQLModel, table=True):
    __tablename__ = "flow"
    __table_args__ = (
        # The same bytes from the same partner make one flow; repeats are
        # recorded as duplicates pointing at it (duplicate_of set).
        Index("ux_flow_original", "partner", "sha256", unique=True,
              sqlite_where=text("duplicate_of IS NULL"), postgresql_where=text("duplicate_of IS NULL")),
        Index("ix_flow_queue_received", "queue", "received_at", "id"),  # leases in the order received
        Index("ix_flow_received", "received_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    partner: str = Field(max_length=64, index=True)
    channel: str = Field(default="folder", max_length=16)
    file_name: str = Field(max_length=1024)
    sha256: str = Field(max_length=64)
    size: int = 0
    received_at: datetime
    archive_path: str = Field(max_length=2048)
    format: str | None = Field(default=None, max_length=32)
    state: str = Field(default="IN_RECU", max_length=32)  # IN_RECU → IN_INTEGRE | IN_INTEGRE_PARTIEL | IN_REJETE
    queue: str = Field(default="queued", max_length=16)  # queued | running | done
    locked_by: str | None = Field(default=None, max_length=64)
    locked_until: datetime | None = None
    attempts: int = 0
    duplicate_of: str | None = Field(default=None, max_length=40)
    pieces_total: int = 0
    pieces_valid: int = 0
    report_written_at: datetime | None = None
    updated_at: datetime | None = None



class Piece(SQLModel, table=True):
    """One invoice (or other piece of a billing file) and where its life stands."""

    __tablename__ = "piece"
    __table_args__ = (
        Index("ix_piece_number", "invoice_number", "supplier_id"),
        Index("ix_piece_due", "due_at"),
    )

    id: str = Field(primary_key=True, max_length=48)
    flow_id: str = Field(foreign_key="flow.id", index=True, max_length=40)
    index: int
    name: str = Field(max_length=1024)
    format: str = Field(max_length=32)
    valid: bool
    status: str = Field(max_length=48)  # IRRECEVABLE when rejected at intake, else its life-cycle status
    error_codes: str = Field(default="", max_length=1024)  # comma list, for reports and queries
    verdict_json: str = Field(default="{}", sa_column=Column(Text))
    created_at: datetime
    # What routing and the life cycle need without reading the invoice again
    partner: str = Field(default="", max_length=64)  # who deposited it (the supplier's channel)
    cadre: str = Field(default="", max_length=8)
    piece_type: str = Field(default="", max_length=64)
    invoice_number: str | None = Field(default=None, max_length=64)
    issue_date: str | None = Field(default=None, max_length=10)
    supplier_id: str | None = Field(default=None, max_length=64)
    recipient_siret: str | None = Field(default=None, index=True, max_length=64)
    service_code: str | None = Field(default=None, max_length=100)
    engagement_number: str | None = Field(default=None, max_length=64)
    parties_json: str = Field(default="{}", sa_column=Column(Text))  # role -> {siret, service, name, partner}
    summary_json: str = Field(default="{}", sa_column=Column(Text))  # names, amounts for status files
    status_at: datetime | None = None
    due_at: datetime | None = None  # when the current status's delay runs out
    seq: int = 0  # status changes so far (names status files in order)
    link_id: str | None = Field(default=None, max_length=48)  # the earlier piece of the same billing file
    # Who may deposit what (#16): the piece's contract (BT-12), and when its
    # depositor acted for another actor of the contract, in which role, for which
    contract_number: str | None = Field(default=None, max_length=50)
    deposited_as: str | None = Field(default=None, max_length=32)  # the depositor's contract role
    deposited_for: str | None = Field(default=None, max_length=32)  # the role it deposited for



class Event(SQLModel, table=True):
    """Append-only: stage and outcome are separate axes (as Bots' ta table)."""

    __tablename__ = "event"

    id: int | None = Field(default=None, primary_key=True)
    flow_id: str = Field(index=True, max_length=40)
    piece_id: str | None = Field(default=None, index=True, max_length=48)
    stage: str = Field(max_length=32)
    outcome: str = Field(max_length=32)
    at: datetime
    detail_json: str = Field(default="{}", sa_column=Column(Text))



class Notice(SQLModel, table=True):
    """A status file to write for one party (the transactional outbox): one
    row per file, whatever its format, so a new format needs no new column."""

    __tablename__ = "notice"

    id: int | None = Field(default=None, primary_key=True)
    piece_id: str = Field(index=True, max_length=48)
    party: str = Field(max_length=100)  # the outbox folder
    name: str = Field(max_length=160)  # file name without its suffix: <piece id>.<change count>
    suffix: str = Field(max_length=16)  # ".xml", ".json": the format's (gateway.outputs.registry)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime
    written_at: datetime | None = Field(default=None, index=True)



class InvoiceNumber(SQLModel, table=True):
    """Invoice numbers accepted per supplier and year (REJ_UNI)."""

    __tablename__ = "invoice_number"

    supplier: str = Field(primary_key=True, max_length=64)
    number: str = Field(primary_key=True, max_length=64)
    year: int = Field(primary_key=True)
    piece_id: str = Field(max_length=48)
    at: datetime



class PartnerAccount(SQLModel, table=True):
    __tablename__ = "partner_account"

    name: str = Field(primary_key=True, max_length=64)
    enabled: bool = True
    public_keys: str = ""  # OpenSSH .pub lines, one per line
    password_hash: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)



class DirectoryStructure(SQLModel, table=True):
    __tablename__ = "directory_structure"

    identifiant: str = Field(primary_key=True, max_length=64)
    type_identifiant: str = Field(default="SIRET", max_length=32)
    raison_sociale: str = Field(default="", max_length=512)
    edi_emitter: bool = False  # EmetteurEdi
    edi_receiver: bool = False  # RecepteurEdi
    manages_payment_status: bool = False  # GestionStatutMiseEnPaiement
    engagement_required: bool = False  # GestionEngagement
    service_required: bool = False  # GestionService
    service_or_engagement: bool = False  # GestionServiceEngagement
    is_moa: bool = False  # EstMOA
    moa_only: bool = False  # EstMOAUniquement
    active: bool = True  # StructureActive
    address: str = Field(default="", max_length=512)
    address2: str = Field(default="", max_length=512)
    address3: str = Field(default="", max_length=512)
    postal_code: str = Field(default="", max_length=32)
    city: str = Field(default="", max_length=256)
    phone: str = Field(default="", max_length=64)
    email: str = Field(default="", max_length=256)
    country_code: str = Field(default="", max_length=8)
    country_name: str = Field(default="", max_length=128)
    updated_at: datetime | None = None



class DirectoryService(SQLModel, table=True):
    __tablename__ = "directory_service"

    identifiant: str = Field(primary_key=True, max_length=64)
    code: str = Field(primary_key=True, max_length=100)
    name: str = Field(default="", max_length=512)
    active: bool = True
    engagement_required: bool = False
    updated_at: datetime | None = None



class Structure(SQLModel, table=True):
    """A company or public body (by SIRET) that partners act for and contracts name."""

    __tablename__ = "structure"

    siret: str = Field(primary_key=True, max_length=14)
    name: str = Field(default="", max_length=512)
    created_at: datetime = Field(default_factory=utcnow)



class PartnerStructure(SQLModel, table=True):
    """A partner account acts for a structure, in all its services or only in some."""

    __tablename__ = "partner_structure"

    partner: str = Field(primary_key=True, max_length=64)
    siret: str = Field(primary_key=True, max_length=14, index=True)
    services: str = Field(default="", max_length=1024)  # comma list; empty: every service



class ContractActor(SQLModel, table=True):
    """A structure takes part in a contract (numéro de marché, BT-12) with a role."""

    __tablename__ = "contract_actor"

    contract: str = Field(primary_key=True, max_length=50)
    siret: str = Field(primary_key=True, max_length=14)
    role: str = Field(primary_key=True, max_length=32)  # gateway.core.roles.CONTRACT_ROLES
    service: str = Field(default="", max_length=100)



class DepositAgreement(SQLModel, table=True):
    """The actors of a contract ("*": of every contract) agreed that `by_role`
    deposits the pieces `for_role` would (the titulaire the MOE's état d'acompte)."""

    __tablename__ = "deposit_agreement"

    contract: str = Field(primary_key=True, max_length=50)
    by_role: str = Field(primary_key=True, max_length=32)
    for_role: str = Field(primary_key=True, max_length=32)

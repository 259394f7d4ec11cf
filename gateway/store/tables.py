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

# One original per partner and bytes; duplicates point at it, replays at the flow they replay.
UNIQUE_ORIGINAL = "duplicate_of IS NULL AND replay_of IS NULL"


class Flow(SQLModel, table=True):
    __tablename__ = "flow"
    __table_args__ = (
        # The same bytes from the same partner make one flow; repeats are
        # recorded as duplicates pointing at it (duplicate_of set).
        # A replay (replay_of set) evaluates the same bytes again as a new flow.
        Index("ux_flow_original", "partner", "sha256", unique=True,
              sqlite_where=text(UNIQUE_ORIGINAL), postgresql_where=text(UNIQUE_ORIGINAL)),
        Index("ix_flow_queue_received", "queue", "received_at", "id"),  # leases in the order received
        # flows back in the queue without an outcome (attempts > 0) are leased alone, first (revision 0006)
        Index("ix_flow_queue_attempts", "queue", "attempts", "received_at", "id"),
        # an API deposit finds its flow by partner and bytes, duplicates included (revision 0006)
        Index("ix_flow_partner_bytes", "partner", "sha256", "received_at"),
        Index("ix_flow_state_partner", "state", "partner"),  # /metrics and /healthz counts (revision 0006)
        Index("ix_flow_received", "received_at"),
        Index("ix_flow_file_name", "file_name"),  # search (revision 0005)
        Index("ux_flow_replay_of", "replay_of", unique=True),  # one replay per flow, however many ask at once
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
    replay_of: str | None = Field(default=None, max_length=40)  # the flow whose archived bytes this one replays



class Piece(SQLModel, table=True):
    """One invoice (or other piece of a billing file) and where its life stands."""

    __tablename__ = "piece"
    __table_args__ = (
        Index("ix_piece_number", "invoice_number", "supplier_id"),
        Index("ix_piece_due", "due_at"),
        # search (revision 0005): newest first, alone or after one equality filter
        Index("ix_piece_created", "created_at", "id"),
        Index("ix_piece_status_created", "status", "created_at"),
        Index("ix_piece_cadre_created", "cadre", "created_at"),
        Index("ix_piece_partner_created", "partner", "created_at"),
        Index("ix_piece_valid_created", "valid", "created_at"),  # refused pieces, newest first (--code)
        Index("ix_piece_valid_status", "valid", "status", "error_codes"),  # /metrics counts (revision 0006)
        Index("ix_piece_supplier", "supplier_id"),
        Index("ix_piece_issue_date", "issue_date"),
        # a billing file's later pieces; partial: most pieces continue none, and an index of a million
        # NULLs looks useless to SQLite's planner, which then scans instead
        Index("ix_piece_link", "link_id", sqlite_where=text("link_id IS NOT NULL"),
              postgresql_where=text("link_id IS NOT NULL")),
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



EVENT_REFUSED = "stage = 'validation' AND outcome = 'IN_REJETE' AND piece_id IS NULL"  # a flow refused whole


class Event(SQLModel, table=True):
    """Append-only: stage and outcome are separate axes (as Bots' ta table)."""

    __tablename__ = "event"
    __table_args__ = (
        # the flows refused whole and their codes (/metrics' gateway_rejections): a few rows among millions
        Index("ix_event_refused", "piece_id", "flow_id", sqlite_where=text(EVENT_REFUSED),
              postgresql_where=text(EVENT_REFUSED)),
    )

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



class ApiClient(SQLModel, table=True):
    """A partner's client of the Flow Service API (OAuth2 client credentials):
    its secret kept only as a scrypt hash; revoked clients stay, refused."""

    __tablename__ = "api_client"

    id: str = Field(primary_key=True, max_length=64)
    partner: str = Field(max_length=64, index=True)
    secret_hash: str = Field(max_length=256)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None



class ApiDeposit(SQLModel, table=True):
    """A flow deposited through the API: its flowId, and the gateway's flow once
    the folder watcher has claimed its file. One per partner and bytes."""

    __tablename__ = "api_deposit"
    __table_args__ = (Index("ux_api_deposit_bytes", "partner", "sha256", unique=True),)

    id: str = Field(primary_key=True, max_length=64)  # the API's flowId
    partner: str = Field(max_length=64)
    sha256: str = Field(max_length=64)
    size: int = 0
    name: str = Field(max_length=255)
    flow_syntax: str = Field(max_length=16)
    flow_profile: str | None = Field(default=None, max_length=32)
    processing_rule: str | None = Field(default=None, max_length=32)
    tracking_id: str | None = Field(default=None, max_length=64)
    organization_id: str | None = Field(default=None, max_length=64)
    client_id: str = Field(max_length=64)
    temp_name: str = Field(max_length=255)  # the hidden file in inbox/<partner>/ until committed
    inbox_name: str | None = Field(default=None, max_length=255)
    created_at: datetime
    deposited_at: datetime | None = None  # renamed into the inbox: the folder watcher takes it from there
    flow_id: str | None = Field(default=None, max_length=40, index=True)  # the gateway's flow, once claimed
    failed: str | None = Field(default=None, max_length=255)  # why it never reached the inbox



class ApiWebhook(SQLModel, table=True):
    __tablename__ = "api_webhook"

    id: str = Field(primary_key=True, max_length=64)
    partner: str = Field(max_length=64, index=True)
    callback_url: str = Field(max_length=2048)
    flow_types: str = Field(default="[]", max_length=2048)  # JSON list; empty = every type
    flow_direction: str | None = Field(default=None, max_length=8)
    ack_status: str | None = Field(default=None, max_length=16)
    signing_key: str = Field(max_length=128)  # base64; kept to sign every call (Afnor-Signature)
    created_at: datetime
    updated_at: datetime



class ApiWebhookDelivery(SQLModel, table=True):
    """One call of a webhook to make: retried with back-off until delivered or given up."""

    __tablename__ = "api_webhook_delivery"
    __table_args__ = (Index("ix_api_delivery_due", "state", "next_at"),)

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: str = Field(max_length=64, index=True)
    flow_id: str = Field(max_length=64)  # the API's flowId the call is about
    payload: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    attempts: int = 0
    next_at: datetime
    last_error: str | None = Field(default=None, max_length=512)
    created_at: datetime
    delivered_at: datetime | None = None



class ApiMark(SQLModel, table=True):
    """How far a reader of the event log has gone (the webhook dispatcher)."""

    __tablename__ = "api_mark"

    name: str = Field(primary_key=True, max_length=32)
    event_id: int = 0
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

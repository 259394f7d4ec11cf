"""The gateway's home and settings.

A home is one folder holding everything the gateway keeps: `gateway.toml`,
the SQLite database, `inbox/`, `outbox/`, `archive/`, `work/`, `keys/`,
`trust/`. Two homes never mix. The home is `--home`, else `GATEWAY_HOME`,
else the current directory. `gateway.toml` is written on first start.
"""
from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

MB = 1024 * 1024

DEFAULT_TOML = """\
# Gateway configuration. Every key is optional; the values below are the defaults.
# Environment variables GATEWAY_<SECTION>_<KEY> (e.g. GATEWAY_INTAKE_MAX_FILE_MB) override this file.

[store]
# SQLite in this home by default; a postgresql+psycopg:// URL for several workers.
database_url = ""

[intake]
max_file_mb = 120            # IRR_TAILLE_F above this
max_lot_members = 500        # members in one ZIP/tar.gz lot
max_lot_unpacked_mb = 1024   # total unpacked size of one lot
stability_seconds = 1.0      # a file must keep the same size and mtime this long
rescan_seconds = 180         # rescan every inbox this often, since events get lost
workers = 2                  # validation processes (0 = in the main process)
min_free_mb = 200            # intake pauses while archive/, work/ or outbox/ has less free space than this
min_free_percent = 0         # ... or less than this share of its file system (0 = only min_free_mb)
once_stall_seconds = 60      # `gateway run --once` gives up (exit 3) after this long without progress
lease_seconds = 20           # a flow is leased to one worker this long, renewed every third of it while it works
max_attempts = 3             # a flow whose processing stopped without an outcome this many times is refused (ERR_INTERROMPU)
open_partners = false        # true: a folder of inbox/ no partner owns is taken as a new partner's (else set aside in quarantine/)
host_name = ""               # this host in leases ("" = the machine's name); hosts sharing a database need different ones

[validation]
# The gateway judges by the artefacts it ships in schemas/ (UBL 2.1 and CII D16B XSDs, CEN EN 16931
# XSLTs, the platform's XSDs), checked against schemas/MANIFEST.toml at start: `gateway rules list`.
# Folders searched before them (XSD trees, EN 16931 XSLTs under their official names), to try a newer release:
schema_dirs = []
# artefacts_dir = "/srv/artefacts"   # another artefacts folder with its own MANIFEST.toml, instead of schemas/
schematron = true
schematron_timeout_seconds = 30   # per document; on timeout the Saxon worker is restarted and the piece not accepted
# Saxon processes for the service's workers (about 190 MB each, whatever they run). 0: one per worker, the
# fastest. 1: one shared by all (about 180 MB less with 2 workers, about 20% fewer files a second on 2 cores).
rule_processes = 0
# "warn" or "reject": what an intact signature by an untrusted signer does.
untrusted_signature = "warn"
# ISO datetime at which signatures are validated ("" = now).
validation_time = ""

[routing]
default_cadre = "A1"

[demo]
# On the first start of a new home: import the demo directory (gateway/demo/)
# and drop three sample invoices in inbox/demo-fournisseur/.
seed = true

[parties]
# Which SIRETs a partner acts for (statuses it may send, folder its files go to):
# editeur-x = ["21990001600011"]. A partner named by a SIRET acts for that SIRET.

[statuses]
# The status files every party receives in outbox/<party>/statuses/, one file per format:
# "cppstatut" (the platform's CPPStatut XML) and "json". A party may receive others
# (the key is its outbox folder): [statuses.parties] then editeur-x = ["json"]
formats = ["cppstatut", "json"]

[lifecycle]
# file = "my-lifecycle.toml"        # replaces mappings/lifecycle.toml
# delays = { A_VALIDER_1 = 15 }     # days

[web]
stuck_minutes = 15               # a flow queued longer than this shows as stuck
login_failures = 5               # failed logins (per client address, per name) before a wait
login_window_minutes = 15        # counts are forgotten after this long without a failure
login_lockout_minutes = 1        # the first wait; it doubles with each further failure
login_lockout_max_minutes = 15   # the longest wait
login_global_failures = 50       # failed logins from all addresses and names within login_window_minutes ...
login_global_pause_minutes = 5   # ... then addresses no operator logged in from wait this long

[monitoring]
# /healthz answers 503 "degraded" with its reasons past these; /metrics is read from the store at each scrape.
# stuck_minutes = 15             # a flow queued longer than this is stuck ([web] stuck_minutes by default)
stuck_flows_max = 0              # degraded when more flows than this are stuck
# disk_warn_mb = 400             # degraded when a folder has less free space (twice [intake] min_free_mb by default)
worker_failures = 3              # degraded when a process of `gateway run` fails this many batches in a row ...
flow_attempts = 3                # ... or a flow was tried this many times without an outcome
open_metrics = false             # true: /metrics without an operator's login (counts and partner names)

[sftp]
enabled = true
host = "127.0.0.1"
port = 2222
idle_timeout_seconds = 300       # a logged-in connection with no SFTP request this long is closed
max_sessions_per_partner = 8     # logged-in connections of one partner at once; the next login is refused
max_global_failures = 50         # wrong passwords from all addresses and names within global_window_seconds ...
global_window_seconds = 60
global_pause_seconds = 60        # ... then every password check pauses this long (key logins go on)

[api]
# The Flow Service API (AFNOR XP Z12-013) for connectors, served under /flow-service; off without a port.
# port = 8090                      # or `gateway run --api-port 8090`
host = "127.0.0.1"
token_seconds = 900              # lifetime of an access token
# login_failures, login_window_minutes, ...: wrong client secrets are throttled like [web]'s logins

[housekeeping]
# `gateway purge` deletes archived files and return files already sent to a partner's server older
# than this many days, never one a piece still needs (not in a final status, a billing file still open).
retention_days = 0               # 0 = keep everything (purge only with --older-than)
"""


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str = ""
    max_file_bytes: int = 120 * MB
    max_lot_members: int = 500
    max_lot_unpacked_bytes: int = 1024 * MB
    stability_seconds: float = 1.0
    rescan_seconds: float = 180.0
    workers: int = 2
    min_free_mb: float = 200.0  # [intake]: the free space archive/, work/ and outbox/ keep (gateway.core.space)
    min_free_percent: float = 0.0
    once_stall_seconds: float = 60.0  # a --once run without progress this long, while something blocks it, stops
    # A worker renews its leases every third of this; a flow whose worker
    # stopped renewing is taken over by any host once it runs out.
    lease_seconds: float = 20.0
    # A flow back in the queue without an outcome (its worker died) is tried
    # alone; one that stopped this many times is refused, not tried for ever.
    max_attempts: int = 3
    open_partners: bool = False  # a folder of inbox/ no partner owns: a new partner's (else quarantine/)
    host_name: str = ""  # "" = socket.gethostname(); see gateway.store.repository.holder_host
    schema_dirs: tuple[Path, ...] = ()
    # [validation] artefacts_dir: another folder of artefacts with its own MANIFEST.toml
    # (None: the schemas/ shipped with the gateway; gateway.rules.manifest)
    artefacts_dir: Path | None = None
    schematron: bool = True
    rule_processes: int = 0  # [validation]: Saxon processes for the service's workers (0: one per worker)
    untrusted_signature: str = "warn"
    validation_time: str = ""
    default_cadre: str = "A1"
    sftp_enabled: bool = True
    sftp_host: str = "127.0.0.1"
    sftp_port: int = 2222
    platform_id: str = "GTW001"  # [platform] id: this gateway in the platform's envelopes
    mapping_dirs: tuple[Path, ...] = ()  # [mapping] dirs: more mapping files, before the packaged ones
    # [statuses] formats: the status files every party receives; [statuses.parties]: per outbox folder.
    # Names only: gateway.outputs.registry knows which exist.
    status_formats: tuple[str, ...] = ("cppstatut", "json")
    party_status_formats: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Set by the service for its workers, never read from gateway.toml: the
    # name of the Saxon process they share (gateway.rules.saxon_link.RuleServer).
    rule_server: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # --- the home's folders -------------------------------------------------
    # Cached: a flow asks for them a dozen times, and building a Path costs
    # microseconds. (cached_property writes to the instance's __dict__, which a
    # frozen dataclass allows; dataclasses.replace starts afresh.)
    @functools.cached_property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @functools.cached_property
    def outbox(self) -> Path:
        return self.home / "outbox"

    @functools.cached_property
    def archive(self) -> Path:
        return self.home / "archive"

    @functools.cached_property
    def work(self) -> Path:
        return self.home / "work"

    @functools.cached_property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @functools.cached_property
    def keys(self) -> Path:
        return self.home / "keys"

    @functools.cached_property
    def trust(self) -> Path:
        return self.home / "trust"

    @functools.cached_property
    def config_file(self) -> Path:
        return self.home / "gateway.toml"

    @functools.cached_property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'gateway.db'}"

    @property
    def stale_claim_seconds(self) -> float:
        """Past this, another host's claim manifest is a dead host's: a live
        one records its claim in well under a lease."""
        return max(60.0, 3 * self.lease_seconds)

    def reports_dir(self, partner: str) -> Path:
        return self.outbox / partner / "reports"

    def section(self, name: str) -> dict[str, Any]:
        """A raw config section, for modules with settings of their own."""
        return dict(self.raw.get(name, {}))


def positive_number(section: str, values: dict[str, Any], key: str, default: float, *, whole: bool = False) -> Any:
    """`values[key]` (`default` when absent) as a positive, finite number, an int
    when `whole`; ValueError naming `[section] key` for anything else (true,
    text, zero, a negative or a fraction where a count is meant)."""
    value = values.get(key, default)
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        number = float(value)
        if whole and not number.is_integer():
            raise ValueError(value)
    except (TypeError, ValueError, OverflowError):
        number = -1.0
    if not 0 < number < float("inf"):
        kind = "a positive whole number" if whole else "a positive number"
        raise ValueError(f"[{section}] {key} must be {kind}, not {value!r}")
    return int(number) if whole else number


def _rule_processes(va: dict[str, Any]) -> int:
    if va.get("rule_processes", 0) == 0 and not isinstance(va.get("rule_processes"), bool):
        return 0  # one per worker
    try:
        return positive_number("validation", va, "rule_processes", 0, whole=True)
    except ValueError:
        raise ValueError(f"[validation] rule_processes must be 0 (one Saxon process per worker) or a positive whole "
                         f"number, not {va.get('rule_processes')!r}") from None


def resolve_home(home: str | os.PathLike | None = None) -> Path:
    if home:
        return Path(home).resolve()
    env = os.environ.get("GATEWAY_HOME")
    return Path(env).resolve() if env else Path.cwd().resolve()


def _env_overrides(raw: dict[str, Any]) -> None:
    for key, val in os.environ.items():
        # GATEWAY_PARTNER_PASSWORD is an input of `gateway partner add`, not a setting
        if not key.startswith("GATEWAY_") or key in ("GATEWAY_HOME", "GATEWAY_PARTNER_PASSWORD"):
            continue
        parts = key[len("GATEWAY_"):].lower().split("_", 1)
        if len(parts) != 2:
            continue
        section, name = parts
        raw.setdefault(section, {})[name] = _coerce(val)


def _coerce(val: str) -> Any:
    low = val.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            number = cast(val)
        except ValueError:
            continue
        # "0012" is a code, not twelve: only a number that reads back the same is one
        return number if str(number) == val.strip() else val
    if val.startswith("["):
        return [v.strip() for v in val.strip("[]").split(",") if v.strip()]
    return val


def _format_names(value: Any, where: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value  # one name from an environment variable
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"{where}: a list of status-file format names, e.g. [\"cppstatut\", \"json\"], "
                         f"not {value!r}")
    return tuple(dict.fromkeys(n.strip().lower() for n in names))


def _status_formats(section: dict[str, Any]) -> dict[str, Any]:
    """[statuses]: the formats' names, checked for shape here and against the
    known formats by gateway.outputs.registry."""
    out: dict[str, Any] = {}
    if "formats" in section:
        out["status_formats"] = _format_names(section["formats"], "[statuses] formats")
    parties = section.get("parties", {})
    if not isinstance(parties, dict):
        raise ValueError(f"[statuses.parties]: a table of outbox folder = [formats], not {parties!r}")
    out["party_status_formats"] = tuple(
        (str(party), _format_names(names, f"[statuses.parties] {party}")) for party, names in parties.items())
    return out


def _lease_seconds(value: Any) -> float:
    seconds = float(value)
    if not seconds >= 1:  # NaN too
        raise ValueError(f"[intake] lease_seconds: a number of seconds, 1 or more, not {value!r}")
    return seconds


def _host_name(value: Any) -> str:
    """A lease holder is `host:pid:role`: the host may not hold the separator."""
    name = str(value).strip()
    if ":" in name or len(name) > 48:
        raise ValueError(f"[intake] host_name: at most 48 characters, without ':', not {value!r}")
    return name


def load(home: str | os.PathLike | None = None, *, create: bool = True, **overrides: Any) -> Settings:
    """Load the settings of a home, creating its folders and config on first start."""
    root = resolve_home(home)
    if create:
        init_home(root)
    raw: dict[str, Any] = {}
    cfg = root / "gateway.toml"
    if cfg.exists():
        raw = tomllib.loads(cfg.read_text(encoding="utf-8"))
    _env_overrides(raw)
    if overrides.get("api_port") is not None:  # `gateway run --api-port`
        raw.setdefault("api", {})["port"] = overrides["api_port"]
    st, it, va, ro, sf = (raw.get(k, {}) for k in ("store", "intake", "validation", "routing", "sftp"))

    def dirs(v: list[str] | str) -> tuple[Path, ...]:
        paths = [v] if isinstance(v, str) else v  # one folder from an environment variable
        return tuple((root / p).resolve() if not Path(p).is_absolute() else Path(p) for p in paths)

    s = Settings(
        home=root,
        database_url=st.get("database_url", ""),
        max_file_bytes=int(float(it.get("max_file_mb", 120)) * MB),
        max_lot_members=int(it.get("max_lot_members", 500)),
        max_lot_unpacked_bytes=int(float(it.get("max_lot_unpacked_mb", 1024)) * MB),
        stability_seconds=float(it.get("stability_seconds", 1.0)),
        rescan_seconds=float(it.get("rescan_seconds", 180)),
        workers=int(it.get("workers", 2)),
        min_free_mb=float(it.get("min_free_mb", 200)),
        min_free_percent=float(it.get("min_free_percent", 0)),
        once_stall_seconds=float(it.get("once_stall_seconds", 60)),
        lease_seconds=_lease_seconds(it.get("lease_seconds", 20)),
        max_attempts=positive_number("intake", it, "max_attempts", 3, whole=True),
        open_partners=bool(it.get("open_partners", False)),
        host_name=_host_name(it.get("host_name", "")),
        schema_dirs=dirs(va.get("schema_dirs", [])),
        artefacts_dir=dirs(va["artefacts_dir"])[0] if va.get("artefacts_dir") else None,
        schematron=bool(va.get("schematron", True)),
        rule_processes=_rule_processes(va),
        untrusted_signature=str(va.get("untrusted_signature", "warn")),
        validation_time=str(va.get("validation_time", "")),
        default_cadre=str(ro.get("default_cadre", "A1")),
        sftp_enabled=bool(sf.get("enabled", True)),
        sftp_host=str(sf.get("host", "127.0.0.1")),
        sftp_port=int(sf.get("port", 2222)),
        platform_id=str(raw.get("platform", {}).get("id", "GTW001")),
        mapping_dirs=dirs(raw.get("mapping", {}).get("dirs", [])),
        raw=raw,
        **_status_formats(raw.get("statuses", {})),
    )
    known = {f.name for f in fields(Settings)}
    return replace(s, **{k: v for k, v in overrides.items() if k in known and v is not None})


def init_home(root: Path) -> None:
    """Create the home's folders and default config if missing (idempotent)."""
    for sub in ("inbox", "outbox", "archive", "work", "keys", "trust"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cfg = root / "gateway.toml"
    if not cfg.exists():
        from gateway.core.files import atomic_write

        atomic_write(cfg, DEFAULT_TOML.encode("utf-8"))

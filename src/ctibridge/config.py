"""All configuration, in one place.

Built once by :func:`load` in layers: defaults < TOML file (+ ``conf.d/*.toml`` beside it,
in name order) < environment (``CTIBRIDGE_<SECTION>_<KEY>``) < explicit overrides (CLI).
Sections are frozen dataclasses handed down to the component that uses them. Nothing else
in ctibridge reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints
from urllib.parse import urlsplit

from ctibridge.errors import ConfigError

__all__ = [
    "AsteriskSettings",
    "CallsSettings",
    "CrmSettings",
    "FreeswitchSettings",
    "KazooSettings",
    "PushSettings",
    "RecordingsSettings",
    "SalesforceSettings",
    "Settings",
    "StorageSettings",
    "WebSettings",
    "load",
]


@dataclass(frozen=True, slots=True)
class KazooSettings:
    enabled: bool = False
    api_url: str = "http://127.0.0.1:8000"
    """Crossbar base URL (``/v2/...`` is appended)."""
    ws_url: str = "ws://127.0.0.1:5555"
    """Blackhole websocket URL."""
    api_key: str = ""
    account_ids: tuple[str, ...] = ()
    """Accounts to watch; empty = the API key's own account."""
    bindings: tuple[str, ...] = (
        "call.CHANNEL_CREATE.*",
        "call.CHANNEL_ANSWER.*",
        "call.CHANNEL_BRIDGE.*",
        "call.CHANNEL_HOLD.*",
        "call.CHANNEL_UNHOLD.*",
        "call.CHANNEL_DESTROY.*",
    )
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    ping_interval: float = 20.0
    request_timeout: float = 10.0
    max_message_bytes: int = 1_048_576
    queue_size: int = 10_000
    """Events read from the PBX and not yet handed on; when full, reading pauses (TCP pushes
    back on the PBX) until the calls service catches up. Nothing is dropped."""


@dataclass(frozen=True, slots=True)
class AsteriskSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 5038
    """Asterisk Manager Interface (AMI) port."""
    username: str = ""
    secret: str = ""
    auth: str = "md5"
    """``md5`` (Challenge, then a hashed key: the secret never crosses the wire) or ``plain``."""
    tenant_id: str = "asterisk"
    """The tenant every call of this Asterisk belongs to."""
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    ping_interval: float = 20.0
    request_timeout: float = 10.0
    queue_size: int = 10_000
    """As ``kazoo.queue_size``."""
    agent_pattern: str = ""
    """Regex (full match) for agent devices beyond short PJSIP/SIP/IAX2 extensions, e.g.
    ``PJSIP/(?P<ext>[a-z]+)``; empty: none."""
    trunk_pattern: str = ""
    """Regex (search) for devices that are always trunks, e.g. ``^PJSIP/carrier``; empty: none."""
    dial_context: str = "from-internal"
    """Dialplan context click-to-dial and transfers dial numbers in (Originate, BlindTransfer)."""


@dataclass(frozen=True, slots=True)
class FreeswitchSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8021
    """Event Socket (inbound ESL) port."""
    password: str = ""
    tenant_id: str = "freeswitch"
    """The tenant every call of this FreeSWITCH belongs to."""
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    ping_interval: float = 20.0
    request_timeout: float = 10.0
    queue_size: int = 10_000
    """As ``kazoo.queue_size``."""
    agent_profiles: tuple[str, ...] = ("internal",)
    """SIP profiles of the agents' phones."""
    trunk_profiles: tuple[str, ...] = ("external",)
    """SIP profiles of carrier trunks."""
    dial_context: str = "default"
    """XML dialplan context click-to-dial and transfers dial in (originate, uuid_transfer)."""


@dataclass(frozen=True, slots=True)
class StorageSettings:
    url: str = ""
    """SQLAlchemy URL. Empty: a SQLite file ``ctibridge.db`` in the data directory."""
    echo: bool = False
    flush_interval: float = 0.1
    """Seconds between group commits of call changes (the push never waits for them; a
    longer interval coalesces more changes of each call into one write)."""


@dataclass(frozen=True, slots=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    """How agents' browsers reach us; default ``http://host:port``."""
    admin_token: str = ""
    """Admin API token. Empty: one is generated on first start and kept in the data dir."""
    tls_cert: str = ""
    tls_key: str = ""
    token_ttl_hours: float = 12.0


@dataclass(frozen=True, slots=True)
class PushSettings:
    queue_size: int = 256
    """Messages buffered per agent connection; a client that falls this far behind is dropped."""
    send_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class CallsSettings:
    internal_digits: int = 5
    """Numbers of at most this many digits are extensions (seed 002)."""
    default_region: str = "GB"
    """Region for national numbers when normalising to E.164."""
    restore_window_hours: float = 24.0
    """At start-up, calls in progress updated this recently are restored from the event log
    (and ended by the first resync if the phone system no longer has them); older ones are
    left as they are, with a log line."""
    context_retention_hours: float = 48.0
    """How long the agent's CRM choices for a call (record picked, opened, created) are kept
    when the call's end never arrives; an ended call's are removed once it is logged."""


@dataclass(frozen=True, slots=True)
class CrmSettings:
    provider: str = "none"
    """The CRM for screen pops and call logs: ``none``, ``builtin`` (ctibridge's own, in the
    same database), ``salesforce``, or ``memory`` (kept in memory: for trying things out)."""


@dataclass(frozen=True, slots=True)
class SalesforceSettings:
    """The Salesforce app ctibridge signs in with (``crm.provider = "salesforce"``). Admins
    connect each tenant's org from the admin page (web-server flow with PKCE; the app's
    callback URL is ``<web.public_url>/salesforce/callback``). With ``username`` and
    ``private_key_file``, tenants that connected no org of their own sign in as that
    integration user instead (JWT bearer flow)."""

    client_id: str = ""
    """Consumer key of the External Client App."""
    client_secret: str = field(default="", repr=False)
    """Only if the app requires a secret for the web-server flow."""
    login_url: str = "https://login.salesforce.com"
    api_version: str = "62.0"
    default_owner_id: str = ""
    """Owner of call logs whose agent has no Salesforce user."""
    username: str = ""
    private_key_file: str = ""


@dataclass(frozen=True, slots=True)
class RecordingsSettings:
    """Call recordings: fetched from the phone system when a call ends, kept by us."""

    enabled: bool = True
    store: str = "local"
    """Where recordings are kept: ``local`` (a directory) or ``s3`` (an S3-compatible object
    store: AWS S3, MinIO, Ceph, Wasabi...; needs the ``s3`` extra, ``pip install
    'ctibridge[s3]'``)."""
    directory: str = ""
    """The ``local`` store's directory. Empty: ``recordings`` in the data directory."""
    s3_bucket: str = ""
    """The ``s3`` store's bucket (required with ``store = "s3"``; it must exist)."""
    s3_prefix: str = ""
    """Key prefix inside the bucket, e.g. ``ctibridge/recordings``; empty: the bucket's root."""
    s3_region: str = ""
    """Region of the bucket. Empty: the AWS chain (``AWS_REGION``, ``~/.aws/config``)."""
    s3_endpoint_url: str = ""
    """Endpoint of a non-AWS store, e.g. ``https://minio.example.net:9000``. Empty: AWS."""
    s3_access_key_id: str = ""
    """Static credentials (both or neither). Empty: the standard AWS credential chain
    (environment, shared credentials file, instance or container role)."""
    s3_secret_access_key: str = field(default="", repr=False)
    s3_path_style: bool = False
    """Path-style addressing (``endpoint/bucket/key``) instead of virtual-hosted
    (``bucket.endpoint/key``): what MinIO and Ceph usually need."""
    s3_max_attempts: int = 3
    """Attempts per S3 request (transient errors, standard retry mode); a failed upload is
    then retried by the recordings worker like a failed fetch."""
    kazoo_fetch: bool = True
    """Fetch Kazoo recordings through crossbar (with the ``[kazoo]`` API key)."""
    asterisk_dir: str = "/var/spool/asterisk/monitor"
    """Where Asterisk writes MixMonitor files, as the PBX sees it (refs are relative to it)."""
    asterisk_path: str = ""
    """That directory mounted on this machine; or else ``asterisk_url``."""
    asterisk_url: str = ""
    """HTTP base URL serving that directory (a remote PBX)."""
    freeswitch_dir: str = "/var/lib/freeswitch/recordings"
    """Where FreeSWITCH writes ``record_session`` files, as the PBX sees it."""
    freeswitch_path: str = ""
    freeswitch_url: str = ""
    max_bytes: int = 200 * 1024 * 1024
    """A larger recording is refused (the fetch fails for good)."""
    max_attempts: int = 30
    """Fetch attempts before a recording is marked failed."""
    retry_initial: float = 5.0
    """Seconds before the first retry; doubled each time, with jitter."""
    retry_max: float = 900.0
    request_timeout: float = 30.0
    """Seconds per HTTP operation: fetching from Asterisk/FreeSWITCH over HTTP, and every
    request to the ``s3`` store (connect, and each read)."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: str = "./data"
    log_level: str = "INFO"
    log_format: str = "json"
    """``json`` (one object a line) or ``text``."""
    kazoo: KazooSettings = field(default_factory=KazooSettings)
    asterisk: AsteriskSettings = field(default_factory=AsteriskSettings)
    freeswitch: FreeswitchSettings = field(default_factory=FreeswitchSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    web: WebSettings = field(default_factory=WebSettings)
    push: PushSettings = field(default_factory=PushSettings)
    calls: CallsSettings = field(default_factory=CallsSettings)
    crm: CrmSettings = field(default_factory=CrmSettings)
    recordings: RecordingsSettings = field(default_factory=RecordingsSettings)
    salesforce: SalesforceSettings = field(default_factory=SalesforceSettings)

    @property
    def storage_url(self) -> str:
        if self.storage.url:
            return self.storage.url
        return f"sqlite+aiosqlite:///{Path(self.data_dir).resolve() / 'ctibridge.db'}"

    @property
    def public_url(self) -> str:
        if self.web.public_url:
            return self.web.public_url.rstrip("/")
        scheme = "https" if self.web.tls_cert else "http"
        return f"{scheme}://{self.web.host}:{self.web.port}"


_T = TypeVar("_T")
CRM_PROVIDERS = ("none", "memory", "builtin", "salesforce")
RECORDING_STORES = ("local", "s3")
_TOP_LEVEL = ("data_dir", "log_level", "log_format")


def _cast(value: Any, kind: Any, where: str) -> Any:
    origin = getattr(kind, "__origin__", None)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
        if kind is str:
            return str(value)
        if origin is tuple:
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{where}: cannot read {value!r} as {getattr(kind, '__name__', kind)}"
        ) from exc
    raise ConfigError(f"{where}: unsupported setting type {kind}")


def _build(cls: type[_T], values: Mapping[str, Any], where: str) -> _T:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
    kwargs = {k: _cast(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    return cls(**kwargs)


def _merge(into: dict[str, dict[str, Any]], layer: Mapping[str, Any], where: str) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping):
            into.setdefault(key, {}).update(value)
        elif key in _TOP_LEVEL:
            into.setdefault("", {})[key] = value
        else:
            raise ConfigError(f"{where}: unknown top-level setting {key!r}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc


def _env_layer(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    sections = {f.name for f in dataclasses.fields(Settings)} - set(_TOP_LEVEL)
    layer: dict[str, dict[str, Any]] = {}
    for key, value in environ.items():
        if not key.startswith("CTIBRIDGE_") or key == "CTIBRIDGE_CONFIG":
            continue
        rest = key[len("CTIBRIDGE_") :].lower()
        if rest in _TOP_LEVEL:
            layer.setdefault("", {})[rest] = value
            continue
        section, _, name = rest.partition("_")
        if section not in sections or not name:
            raise ConfigError(f"environment variable {key} names no setting")
        layer.setdefault(section, {})[name] = value
    return layer


def load(
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings. ``overrides`` uses ``{"section": {...}}`` or top-level keys."""
    environ = environ or {}
    merged: dict[str, dict[str, Any]] = {}
    path = config_file or environ.get("CTIBRIDGE_CONFIG")
    if path:
        main = Path(path)
        _merge(merged, _read_toml(main), str(main))
        conf_d = main.parent / "conf.d"
        if conf_d.is_dir():
            for extra in sorted(conf_d.glob("*.toml")):
                _merge(merged, _read_toml(extra), str(extra))
    _merge(merged, _env_layer(environ), "environment")
    _merge(merged, overrides or {}, "overrides")
    hints = get_type_hints(Settings)
    kwargs: dict[str, Any] = {}
    for name, values in merged.items():
        if name == "":
            kwargs.update(_build(_TopLevel, values, "settings").as_dict())
        elif name in hints and name not in _TOP_LEVEL:
            kwargs[name] = _build(hints[name], values, name)
        else:
            raise ConfigError(f"unknown settings section [{name}]")
    settings = Settings(**kwargs)
    _validate(settings)
    return settings


@dataclass(frozen=True, slots=True)
class _TopLevel:
    data_dir: str = "./data"
    log_level: str = "INFO"
    log_format: str = "json"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _validate(settings: Settings) -> None:
    if settings.log_format not in ("json", "text"):
        raise ConfigError("log_format must be 'json' or 'text'")
    if not 1 <= settings.calls.internal_digits <= 15:
        raise ConfigError("calls.internal_digits must be between 1 and 15")
    if settings.calls.restore_window_hours < 0:
        raise ConfigError("calls.restore_window_hours must not be negative")
    if settings.calls.context_retention_hours <= 0:
        raise ConfigError("calls.context_retention_hours must be positive")
    if settings.push.queue_size < 1:
        raise ConfigError("push.queue_size must be at least 1")
    pbx_queues = {
        "kazoo": settings.kazoo.queue_size,
        "asterisk": settings.asterisk.queue_size,
        "freeswitch": settings.freeswitch.queue_size,
    }
    for pbx, size in pbx_queues.items():
        if size < 1:
            raise ConfigError(f"{pbx}.queue_size must be at least 1")
    if bool(settings.web.tls_cert) != bool(settings.web.tls_key):
        raise ConfigError("web.tls_cert and web.tls_key go together")
    if settings.crm.provider not in CRM_PROVIDERS:
        raise ConfigError(f"crm.provider must be one of {', '.join(CRM_PROVIDERS)}")
    _validate_recordings(settings.recordings)
    if bool(settings.salesforce.username) != bool(settings.salesforce.private_key_file):
        raise ConfigError("salesforce.username and salesforce.private_key_file go together")
    if settings.kazoo.enabled and not settings.kazoo.api_key:
        raise ConfigError("kazoo.api_key is required when kazoo.enabled is true")
    _validate_asterisk(settings.asterisk)
    if settings.freeswitch.enabled and not settings.freeswitch.password:
        raise ConfigError("freeswitch.password is required when freeswitch.enabled is true")


def _validate_asterisk(ami: AsteriskSettings) -> None:
    if ami.auth not in ("plain", "md5"):
        raise ConfigError("asterisk.auth must be 'plain' or 'md5'")
    if ami.enabled and not (ami.username and ami.secret):
        raise ConfigError("asterisk.username and asterisk.secret are required when enabled")
    for name in ("agent_pattern", "trunk_pattern"):
        try:
            re.compile(getattr(ami, name))
        except re.error as exc:
            raise ConfigError(f"asterisk.{name} is not a valid regex: {exc}") from exc


def _validate_recordings(rec: RecordingsSettings) -> None:
    if rec.store not in RECORDING_STORES:
        raise ConfigError(f"recordings.store must be one of {', '.join(RECORDING_STORES)}")
    if rec.max_bytes < 1 or rec.max_attempts < 1:
        raise ConfigError("recordings.max_bytes and recordings.max_attempts must be at least 1")
    if not 0 < rec.retry_initial <= rec.retry_max:
        raise ConfigError("recordings: need 0 < retry_initial <= retry_max")
    if rec.request_timeout <= 0:
        raise ConfigError("recordings.request_timeout must be positive")
    if rec.store == "s3":
        _validate_s3(rec)
    elif rec.s3_bucket:
        raise ConfigError(
            f"recordings.s3_bucket is set but recordings.store is {rec.store!r}: "
            'set recordings.store = "s3" to keep recordings in the bucket'
        )


_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}[A-Za-z0-9]$")


def _validate_s3(rec: RecordingsSettings) -> None:
    if not rec.s3_bucket:
        raise ConfigError('recordings.s3_bucket is required when recordings.store = "s3"')
    if not _BUCKET.match(rec.s3_bucket):
        raise ConfigError(
            f"recordings.s3_bucket {rec.s3_bucket!r} is not a bucket name (3 or more letters, "
            "digits, '.', '-', '_'; a folder inside the bucket goes in recordings.s3_prefix)"
        )
    prefix = rec.s3_prefix.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ConfigError(f"recordings.s3_prefix {rec.s3_prefix!r} has an empty, . or .. part")
    endpoint = rec.s3_endpoint_url
    url = urlsplit(endpoint)
    if endpoint and (url.scheme not in ("http", "https") or not url.hostname):
        raise ConfigError(
            f"recordings.s3_endpoint_url {endpoint!r} is not an http(s)://host[:port] URL"
        )
    if bool(rec.s3_access_key_id) != bool(rec.s3_secret_access_key):
        raise ConfigError(
            "recordings.s3_access_key_id and recordings.s3_secret_access_key go together "
            "(or leave both empty for the AWS credential chain)"
        )
    if rec.s3_max_attempts < 1:
        raise ConfigError("recordings.s3_max_attempts must be at least 1")

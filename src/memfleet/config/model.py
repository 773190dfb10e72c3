"""The proxy's YAML config: loaded, validated, and every mistake reported on one line.

A message names the file, the field and the reason, e.g.
``proxy.yaml: pools.main.backends[2]: 'host:abc' is not HOST:PORT``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from memfleet.config.routes import SpecError, check_routes
from memfleet.config.tls import TLSConfig, server_context
from memfleet.protocol.commands import deny_mask

DEFAULT_PORT = 11211


class ConfigError(Exception):
    """A config file that cannot be used; ``str()`` is the one-line message for the user."""


def parse_hostport(value: str, default_port: int | None = None) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` too); raise ValueError with the user's words."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not HOST:PORT")
    host, sep, port_s = value.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError(f"{value!r} is not HOST:PORT")
        host, port_s = value, str(default_port)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host, int(port_s)


def _hostport(value: str) -> str:
    parse_hostport(value)
    return value


HostPort = Annotated[str, AfterValidator(_hostport)]


def _effect(value: str) -> str:
    deny_mask([value])  # ValueError with the reason: not an effect (and what it is instead)
    return value


EffectName = Annotated[str, AfterValidator(_effect)]


class BackendOptions(BaseModel):
    """Connection and health options of a pool's backends (hashable: backends are reused
    across reloads when their address and options are unchanged)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connections: int = Field(1, ge=1, le=64)
    connect_timeout: float = Field(1.0, gt=0, le=60)
    read_timeout: float = Field(1.0, gt=0, le=60)
    failure_limit: int = Field(3, ge=1, le=1000)
    retry_timeout: float = Field(1.0, gt=0, le=600)
    # What a backend that missed writes must do before it serves again: copy the keys it
    # missed from a healthy replica, delete them, flush everything, or nothing. Unset: repair
    # under allsync/allfastest, invalidate under failover/zfailover, none elsewhere
    # (memfleet.routes.builder resolves it).
    rejoin: Literal["none", "invalidate", "flush", "repair"] | None = None
    journal_limit: int = Field(10_000, ge=1, le=10_000_000)
    # TLS towards the backends (memcached -Z); unset: plain TCP.
    tls: TLSConfig | None = None


class PoolConfig(BackendOptions):
    """A pool: backends a key is hashed over, with the official proxy's optional seed."""

    backends: list[HostPort] = Field(min_length=1)
    seed: str | None = None

    @field_validator("backends")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        seen: set[str] = set()
        for b in v:
            if b in seen:
                raise ValueError(f"{b!r} is listed twice")
            seen.add(b)
        return v


class LimitsConfig(BaseModel):
    """What one client (or one backend queue) may cost the proxy. Each limit hit is counted
    in ``stats`` and logged (rate-limited)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Over it a new connection gets memcached's "ERROR Too many open connections".
    max_connections: int = Field(4096, ge=1, le=1_000_000)
    # Requests of one client in flight before the proxy stops reading from it (a count; the
    # bytes they may cost are bounded by max_client_bytes).
    max_inflight: int = Field(4096, ge=1, le=1_000_000)
    # One client's byte budget: replies waiting to be written, room reserved for replies on
    # their way (reserved before a read is forwarded) and request bytes read and not yet
    # sent. Spent, the proxy stops reading from that client until it has read enough; a
    # single reply larger than the budget still gets through. ``max_pending_bytes`` is the
    # old name, still accepted.
    max_client_bytes: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
        le=1024 * 1024 * 1024,
        validation_alias=AliasChoices("max_client_bytes", "max_pending_bytes"),
    )
    # What all clients of one proxy process (one worker) may hold together: past it the
    # proxy stops reading from the clients that hold the most, and drops those that hold
    # the most without reading their replies. The rendered manifests derive it from the
    # pod's memory limit.
    max_memory: int = Field(512 * 1024 * 1024, ge=4 * 1024 * 1024, le=1024**4)
    # Seconds a client may leave its replies unread (its budget spent) before it is dropped.
    stalled_timeout: float = Field(30.0, gt=0, le=86400)
    # Seconds a started request may take to arrive whole (slowloris).
    request_timeout: float = Field(30.0, gt=0, le=86400)
    # Seconds without a request before a connection is closed; 0: never (as memcached).
    idle_timeout: float = Field(0.0, ge=0, le=86400 * 30)
    # Requests queued on one backend connection; the excess fails at once.
    max_backend_queue: int = Field(16384, ge=1, le=10_000_000)

    @model_validator(mode="before")
    @classmethod
    def _one_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_client_bytes" in data and "max_pending_bytes" in data:
            raise ValueError(
                "max_client_bytes and max_pending_bytes are one setting (the second is its "
                "old name): give one of them"
            )
        return data

    @model_validator(mode="after")
    def _memory_holds_a_client(self) -> LimitsConfig:
        if self.max_memory < self.max_client_bytes:
            raise ValueError(
                f"max_memory ({self.max_memory}) is below max_client_bytes "
                f"({self.max_client_bytes}): one client's budget must fit in the process's"
            )
        return self


class AuthConfig(BaseModel):
    """Client authentication, compatible with memcached's ASCII auth (``-Y``): a client's
    first command is ``set <any> 0 0 <len>`` carrying ``<user> <password>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A file of ``user:password`` lines, as memcached's -Y takes (kept out of the config so
    # the config can be shown and shared).
    file: str

    def load(self) -> dict[bytes, bytes]:
        """The credentials; raises ValueError with a reason (never the secrets)."""
        try:
            text = Path(self.file).read_bytes()
        except OSError as exc:
            raise ValueError(f"auth.file: cannot read {self.file}: {exc.strerror}") from None
        users: dict[bytes, bytes] = {}
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith(b"#"):
                continue
            user, sep, password = line.partition(b":")
            if not sep or not user or not password:
                raise ValueError(f"auth.file: {self.file} line {n} is not user:password")
            users[user] = password
        if not users:
            raise ValueError(f"auth.file: {self.file} holds no user")
        return users


class ProxyConfig(BaseModel):
    """The whole proxy config file."""

    model_config = ConfigDict(extra="forbid")

    listen: HostPort = f"127.0.0.1:{DEFAULT_PORT}"
    local_zone: str | None = None
    pools: dict[str, PoolConfig] = Field(min_length=1)
    routes: dict[str, Any]
    named_routes: dict[str, Any] = Field(default_factory=dict)
    max_item_size: int = Field(1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    # A get line still arriving past this many bytes is streamed (a get of any length is
    # answered; this is what its line may cost the proxy).
    max_line_length: int = Field(64 * 1024, ge=2048, le=64 * 1024 * 1024)
    limits: LimitsConfig = Field(default_factory=lambda: LimitsConfig.model_validate({}))
    # TLS for clients: cert and key (and a CA to require client certificates).
    tls: TLSConfig | None = None
    auth: AuthConfig | None = None
    # Effects refused instead of reaching the nodes, whatever protocol spells the request
    # (e.g. ``flush`` on a shared production proxy; see memfleet.protocol.commands). Empty by
    # default: clients and test suites use them all.
    deny_commands: list[EffectName] = Field(default_factory=list)
    # Seconds a reload that changes a pool's backend list keeps the old placement beside the
    # new one (moved keys read through from their old owner and copied over, writes delete
    # the old copy: memfleet.routes.migrate), so a resize or a rollback is no miss storm and
    # serves no old value. 0: switch at once (every moved key a miss, as other proxies do).
    migration_window: float = Field(600.0, ge=0, le=86_400)

    @model_validator(mode="after")
    def _tls_files(self) -> ProxyConfig:
        if self.tls is not None and not (self.tls.cert and self.tls.key):
            raise ValueError("tls: a client-side TLS config needs cert and key")
        if self.auth is not None:
            self.auth.load()  # a missing or malformed file is a config error, at start
        if self.tls is not None:
            try:
                server_context(self.tls)
            except (OSError, ValueError) as exc:
                raise ValueError(f"tls: cannot load the certificate or key: {exc}") from None
        return self

    @model_validator(mode="after")
    def _routes_are_sound(self) -> ProxyConfig:
        try:
            check_routes(self.routes, self.named_routes, set(self.pools), self.local_zone)
        except SpecError as exc:
            raise ValueError(str(exc)) from None
        return self


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _message(err: dict[str, Any]) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "is required"
    return msg


def format_validation_error(source: str, exc: ValidationError) -> str:
    """The first error as ``file: field: reason`` (further errors counted, not listed)."""
    errs = exc.errors()
    first = errs[0]
    # Custom model checks already name their field inside the message.
    loc = [p for p in first["loc"] if p != "__root__"]
    where = _loc(tuple(loc))
    msg = _message(dict(first))
    text = f"{source}: {where}: {msg}" if where else f"{source}: {msg}"
    if len(errs) > 1:
        text += f" (and {len(errs) - 1} more)"
    return text


def parse_config(data: object, source: str = "<config>") -> ProxyConfig:
    """Validate already-loaded YAML data; raise ConfigError with a one-line message."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must hold a mapping (listen, pools, routes)")
    try:
        return ProxyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_config(path: str | Path) -> ProxyConfig:
    """Read and validate a config file; raise ConfigError with a one-line message."""
    p = Path(path)
    name = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{name}: {where}{problem}") from None
    return parse_config(data, name)

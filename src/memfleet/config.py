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
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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


class BackendOptions(BaseModel):
    """Connection and health options of a pool's backends (hashable: backends are reused
    across reloads when their address and options are unchanged)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connections: int = Field(1, ge=1, le=64)
    connect_timeout: float = Field(1.0, gt=0, le=60)
    read_timeout: float = Field(1.0, gt=0, le=60)
    failure_limit: int = Field(3, ge=1, le=1000)
    retry_timeout: float = Field(1.0, gt=0, le=600)
    # What a backend that failed must do before it serves again: delete the keys whose
    # writes it missed (journaled, bounded), flush everything, or nothing.
    rejoin: Literal["none", "invalidate", "flush"] = "none"
    journal_limit: int = Field(10_000, ge=1, le=10_000_000)


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


class ProxyConfig(BaseModel):
    """The whole proxy config file."""

    model_config = ConfigDict(extra="forbid")

    listen: HostPort = f"127.0.0.1:{DEFAULT_PORT}"
    local_zone: str | None = None
    pools: dict[str, PoolConfig] = Field(min_length=1)
    routes: dict[str, Any]
    named_routes: dict[str, Any] = Field(default_factory=dict)
    max_item_size: int = Field(1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    max_line_length: int = Field(64 * 1024, ge=2048, le=64 * 1024 * 1024)

    @model_validator(mode="after")
    def _routes_are_sound(self) -> ProxyConfig:
        # Imported here: the route package imports this module.
        from memfleet.routes.spec import SpecError, check_routes

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

"""The proxy's config: YAML → validated model (``model``), TLS contexts (``tls``), routelib
Lua in and out (``routelib``), which reader a file takes (``files``)."""

from memfleet.config.files import load_config
from memfleet.config.model import (
    DEFAULT_PORT,
    AuthConfig,
    BackendOptions,
    ConfigError,
    LimitsConfig,
    PoolConfig,
    ProxyConfig,
    format_validation_error,
    parse_config,
    parse_hostport,
)
from memfleet.config.tls import TLSConfig

__all__ = [
    "DEFAULT_PORT",
    "AuthConfig",
    "BackendOptions",
    "ConfigError",
    "LimitsConfig",
    "PoolConfig",
    "ProxyConfig",
    "TLSConfig",
    "format_validation_error",
    "load_config",
    "parse_config",
    "parse_hostport",
]

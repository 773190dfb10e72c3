"""TLS files (``TLSConfig``) and the contexts built from them: towards clients (the proxy's
listener) and towards backends (memcached ``-Z``).

Secrets stay here: nothing in this module logs a key file's content.
"""

from __future__ import annotations

import ssl

from pydantic import BaseModel, ConfigDict


class TLSConfig(BaseModel):
    """TLS files: the proxy's own certificate towards clients, or a CA to check backends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert: str | None = None
    key: str | None = None
    ca: str | None = None  # clients: require and verify client certificates; backends: verify
    verify: bool = True  # backends only: check the backend's certificate against ``ca``
    server_name: str | None = None  # backends only: the name to check (default: the host)


def server_context(cfg: TLSConfig) -> ssl.SSLContext:
    """The proxy's TLS context towards clients (client certificates required with ``ca``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    assert cfg.cert is not None and cfg.key is not None
    ctx.load_cert_chain(cfg.cert, cfg.key)
    if cfg.ca:
        ctx.load_verify_locations(cfg.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(cfg: TLSConfig) -> ssl.SSLContext:
    """A TLS context for connecting to backends (memcached ``-Z``)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cfg.ca:
        ctx.load_verify_locations(cfg.ca)
    else:
        ctx.load_default_certs()
    if not cfg.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.cert and cfg.key:
        ctx.load_cert_chain(cfg.cert, cfg.key)
    return ctx

"""TLS on both sides, memcached-compatible client authentication, and the command deny-list."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config

pytestmark = pytest.mark.integration


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1/localhost, made here."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path / "pki"
    d.mkdir()

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=memfleet test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


def _tls_request(port: int, ca: Path, data: bytes) -> bytes:
    ctx = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s,
    ):
        s.sendall(data + b"mn\r\n")
        out = b""
        while not out.endswith(b"MN\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out[:-4]


def test_tls_clients_and_tls_backends(
    certs: dict[str, Path],
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
) -> None:
    node = memcached_factory(
        extra=["-Z", "-o", f"ssl_chain_cert={certs['cert']},ssl_key={certs['key']}"]
    )
    cfg = pool_config(node.address, tls={"ca": str(certs["ca"])})
    cfg["tls"] = {"cert": str(certs["cert"]), "key": str(certs["key"])}
    proxy = proxy_factory(cfg)
    assert _tls_request(proxy.port, certs["ca"], b"set t 0 0 2\r\nok\r\nget t\r\n") == (
        b"STORED\r\nVALUE t 0 2\r\nok\r\nEND\r\n"
    )
    # The backend speaks only TLS: the value went there encrypted, and is there.
    assert _tls_request(node.port, certs["ca"], b"get t\r\n") == b"VALUE t 0 2\r\nok\r\nEND\r\n"
    # A plaintext client gets no service from a TLS listener.
    plain = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    plain.sendall(b"get t\r\n")
    plain.settimeout(5)
    try:
        reply = plain.recv(100)
    except OSError:
        reply = b""
    assert b"VALUE" not in reply
    plain.close()


def test_backend_certificate_is_verified(
    certs: dict[str, Path],
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    tmp_path: Path,
) -> None:
    node = memcached_factory(
        extra=["-Z", "-o", f"ssl_chain_cert={certs['cert']},ssl_key={certs['key']}"]
    )
    other_ca = tmp_path / "other.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
         str(tmp_path / "o.key"), "-out", str(other_ca), "-days", "1", "-subj", "/CN=other"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    proxy = proxy_factory(pool_config(node.address, tls={"ca": str(other_ca)}))
    c = Conn(proxy.port)
    assert c.request(b"get t\r\n") == b"SERVER_ERROR backend failure\r\n"
    assert "certificate verify failed" in proxy.log()
    c.close()


def test_client_authentication(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[..., ProxyProcess],
    tmp_path: Path,
) -> None:
    secrets = tmp_path / "users"
    secrets.write_text("alice:s3cret-pass\nbob:other\n")
    node = memcached_factory()
    cfg = pool_config(node.address)
    cfg["auth"] = {"file": str(secrets)}
    proxy = proxy_factory(cfg)

    stranger = Conn(proxy.port)

    def ask(c: Conn, data: bytes) -> bytes:
        # Until authenticated even `mn` is refused, so read one reply line, not to a barrier.
        c.send(data)
        return c.read_until(b"\r\n")

    assert ask(stranger, b"get k\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
    assert ask(stranger, b"mn\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
    assert ask(stranger, b"set k 0 0 1\r\nv\r\n") == (
        b"CLIENT_ERROR bad authentication token format\r\n"
    )
    assert ask(stranger, b"set k 0 0 11\r\nalice wrong\r\n") == (
        b"CLIENT_ERROR authentication failure\r\n"
    )
    assert ask(stranger, b"get k\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
    # Nothing a stranger sent reached the node.
    direct = Conn(node.port)
    node_stats = direct.request(b"stats\r\n")
    assert b"STAT cmd_get 0\r\n" in node_stats and b"STAT cmd_set 0\r\n" in node_stats

    friend = Conn(proxy.port)
    assert ask(friend, b"set auth 0 0 17 noreply\r\nalice s3cret-pass\r\n") == b"STORED\r\n"
    assert (
        friend.request(b"set k 0 0 1\r\nv\r\nget k\r\n") == b"STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"
    )
    assert ask(stranger, b"get k\r\n") == b"CLIENT_ERROR unauthenticated\r\n"
    log = proxy.log()
    assert "failed to authenticate" in log
    assert "s3cret" not in log and "wrong" not in log  # secrets never reach the log
    for c in (stranger, friend, direct):
        c.close()


def test_deny_list(
    memcached_factory: Callable[..., Memcached], proxy_factory: Callable[..., ProxyProcess]
) -> None:
    node = memcached_factory()
    cfg = pool_config(node.address)
    cfg["deny_commands"] = ["flush_all", "verbosity"]
    proxy = proxy_factory(cfg)
    c = Conn(proxy.port)
    assert c.request(b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
    denied = b"CLIENT_ERROR command not allowed by the proxy\r\n"
    assert c.request(b"flush_all\r\n") == denied
    assert c.request(b"flush_all noreply\r\nverbosity 1\r\n") == denied
    assert c.request(b"get k\r\n") == b"VALUE k 0 1\r\nv\r\nEND\r\n"  # nothing was flushed
    assert "denied command" in proxy.log()
    c.close()

"""Random bytes, half-sent commands and a 10 MB line never crash the proxy nor disturb another
client, and the proxy's memory stays bounded."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config

pytestmark = pytest.mark.integration


def _send_and_drop(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data)
            s.settimeout(0.05)
            s.recv(65536)
        except OSError:
            pass  # the proxy may close on a protocol violation; that is its right


def test_garbage_does_not_disturb_other_clients(
    memcached_factory: Callable[..., Memcached],
    proxy_factory: Callable[[dict[str, object]], ProxyProcess],
) -> None:
    node = memcached_factory()
    proxy = proxy_factory(pool_config(node.address))
    bystander = Conn(proxy.port)
    assert bystander.request(b"set keep 0 0 4\r\nsafe\r\n") == b"STORED\r\n"
    baseline_kb = proxy.rss_kb()
    rng = random.Random(20261121)

    for i in range(200):
        _send_and_drop(proxy.port, rng.randbytes(rng.randint(1, 4096)))
        if i % 20 == 0:
            assert bystander.request(b"get keep\r\n") == b"VALUE keep 0 4\r\nsafe\r\nEND\r\n"

    half_sent = [
        b"set k 0 0 10\r\nabc",
        b"get k",
        b"mg k v",
        b"ms k 100\r\n" + b"x" * 50,
        b"set k 0 0 1048576\r\n" + b"x" * 1000,
        b"gat 10",
    ]
    for data in half_sent:
        _send_and_drop(proxy.port, data)

    # A 10 MB get line whose one key never ends: memcached's answer to a key over 250 bytes
    # as soon as it is one, the rest of the line dropped as it arrives (nothing buffered),
    # and the connection lives on.
    big = Conn(proxy.port, timeout=10)
    big.send(b"get ")
    for _ in range(160):
        big.send(b"k" * (64 * 1024))
    assert big.request(b"\r\nget nothing\r\n") == (
        b"CLIENT_ERROR bad command line format\r\nEND\r\n"
    )
    big.close()
    # A 10 MB line that is not a get: the proxy hangs up on that client only, silently.
    big = Conn(proxy.port, timeout=10)
    with pytest.raises((ConnectionError, OSError)):
        for _ in range(160):
            big.send(b"z" * (64 * 1024))
    big.close()

    # The same client keeps its connection after every malformed request it sends.
    assert bystander.request(b"bogus\r\n") == b"ERROR\r\n"
    assert bystander.request(b"get " + b"x" * 300 + b"\r\n") == (
        b"CLIENT_ERROR bad command line format\r\n"
    )
    assert bystander.request(b"set k 0 0 1\r\nxyz\r\n") == (
        b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"
    )
    assert bystander.request(b"get keep\r\n") == b"VALUE keep 0 4\r\nsafe\r\nEND\r\n"
    assert proxy.proc.poll() is None
    # Bounded: nowhere near the 10 MB line or the 200 random payloads.
    assert proxy.rss_kb() - baseline_kb < 8 * 1024
    bystander.close()

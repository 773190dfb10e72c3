"""A mixed workload that remembers what it was told, for fault tests and the soak script.

Each client owns a slice of the keys, so for every key the workload knows the last value the
proxy acknowledged and the values written since whose acknowledgement failed (such a write
may still have been applied). A read that returns anything else is a wrong value.
"""

from __future__ import annotations

import random
import socket
import threading
import time

from tests.helpers import Conn, Memcached

KEYS = [f"fl:{i}" for i in range(300)]


class Workload:
    """Clients writing and reading KEYS; they remember, per key, the last acknowledged value
    and every value written since (a failed write may still have been applied)."""

    def __init__(self, port: int, clients: int = 3, seconds: float = 120) -> None:
        self.port = port
        self.seconds = seconds
        self.stop = threading.Event()
        self.lock = threading.Lock()
        # Every key starts with the value the test preloaded.
        self.acked: dict[str, str] = dict.fromkeys(KEYS, "init")
        self.maybe: dict[str, set[str]] = {k: set() for k in KEYS}
        self.wrong: list[tuple[str, str]] = []
        self.ops = 0
        self.errors = 0
        self.read_errors = 0  # replicated topologies promise none
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)
        ]
        for t in self.threads:
            t.start()

    def allowed(self, key: str) -> set[str]:
        allowed = set(self.maybe[key])
        if key in self.acked:
            allowed.add(self.acked[key])
        return allowed

    def _run(self, n: int) -> None:
        rng = random.Random(n)
        conn: Conn | None = None
        deadline = time.monotonic() + self.seconds
        seq = 0
        while not self.stop.is_set() and time.monotonic() < deadline and seq < 10**6:
            seq += 1
            try:
                if conn is None:
                    conn = Conn(self.port, timeout=5)
                # Each client owns a third of the keys, so "last acknowledged" is well defined.
                key = KEYS[rng.randrange(n, len(KEYS), len(self.threads))]
                if rng.random() < 0.3:
                    value = f"{n}-{seq}"
                    with self.lock:
                        self.maybe[key].add(value)
                    reply = conn.request(f"set {key} 0 0 {len(value)}\r\n{value}\r\n".encode())
                    if reply == b"STORED\r\n":
                        with self.lock:
                            self.acked[key] = value
                            self.maybe[key] = set()
                    else:
                        self.errors += 1
                else:
                    reply = conn.request(f"get {key}\r\n".encode())
                    if reply.startswith(b"VALUE"):
                        got = reply.split(b"\r\n")[1].decode()
                        with self.lock:
                            if got not in self.allowed(key):
                                self.wrong.append((key, got))
                    elif reply != b"END\r\n":
                        self.errors += 1
                        self.read_errors += 1
                self.ops += 1
            except (OSError, TimeoutError):
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)


def wait_backend_up(conn: Conn, node: Memcached, seconds: float = 15) -> None:
    want = f"STAT {node.address}:state up".encode()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if want in conn.request(b"stats backends\r\n"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{node.address} did not come back")


def churn_connections(port: int, count: int) -> None:
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.close()

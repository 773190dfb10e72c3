"""Test helpers: real memcached processes and the real proxy process, on free loopback ports.

Every process started here is stopped by the fixture that started it. Ports come from the OS
(bind to port 0); nothing uses 11211 or any fixed port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

MEMCACHED = shutil.which("memcached") or "/usr/bin/memcached"


def free_port() -> int:
    """A TCP port the OS says is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], seconds: float = 15.0, every: float = 0.05) -> bool:
    """Poll ``check`` until it is true (bounded in time); return whether it became true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts on 127.0.0.1:port (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class Memcached:
    """One real memcached process on a free loopback port."""

    def __init__(self, memory_mb: int = 64, extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.memory_mb = memory_mb
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [MEMCACHED, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-t", "1"]
        args += ["-m", str(self.memory_mb), *self.extra]
        if os.geteuid() == 0:
            args += ["-u", "root"]  # memcached refuses to run as root without -u
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_port(self.port)

    def kill(self) -> None:
        """SIGKILL: the node is gone, its connections reset."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def stop_signal(self) -> None:
        """SIGSTOP: the node hangs, its connections stay open. Returns once it is stopped
        (a signal takes effect asynchronously; a busy machine shows the gap)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self._wait_state(stopped=True)

    def cont_signal(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self._wait_state(stopped=False)

    def _wait_state(self, stopped: bool, seconds: float = 5.0) -> None:
        assert self.proc is not None
        stat = Path(f"/proc/{self.proc.pid}/stat")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            # The state letter follows the ")" that ends the command name.
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
            if (state == "T") == stopped:
                return
            time.sleep(0.005)
        raise TimeoutError(f"memcached {self.proc.pid} did not {'stop' if stopped else 'resume'}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


class ProxyProcess:
    """The memfleet proxy as users run it: ``python -m memfleet proxy --config FILE``."""

    def __init__(
        self,
        config: dict[str, object] | Path,
        workdir: Path,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.log_path = workdir / f"proxy-{self.port}.log"
        if isinstance(config, Path):
            self.config_path = config  # a file the test laid out itself
        else:
            self.config_path = workdir / f"proxy-{self.port}.yaml"
            self.write_config(config)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "memfleet", "proxy", "--config", str(self.config_path),
             "--listen", f"127.0.0.1:{self.port}",
             # Tests reload with SIGHUP unless they ask for the file watcher.
             *(extra_args or ("--watch-interval", "0"))],
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_port(self.port)
        except TimeoutError:
            self.stop()
            raise

    def write_config(self, config: dict[str, object]) -> None:
        self.config_path.write_text(yaml.safe_dump(config))

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def pool_config(*addresses: str, **options: object) -> dict[str, object]:
    """A one-pool proxy config over the given backends."""
    pool: dict[str, object] = {"backends": list(addresses), **options}
    return {"pools": {"main": pool}, "routes": {"default": "main"}}


class Conn:
    """A raw protocol connection for tests that check bytes."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until(self, terminator: bytes, timeout: float = 5.0, count: int = 1) -> bytes:
        """Read until the buffer ends with ``terminator`` (holding it ``count`` times)."""
        deadline = time.monotonic() + timeout
        while not self.buf.endswith(terminator) or self.buf.count(terminator) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {terminator!r} after {timeout}s; got {self.buf[-200:]!r}")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"closed; got {self.buf[-200:]!r}")
            self.buf += chunk
        out, self.buf = self.buf, b""
        return out

    def request(self, data: bytes, timeout: float = 5.0) -> bytes:
        """Send ``data`` then ``mn``; return every reply before the ``MN`` barrier."""
        self.send(data + b"mn\r\n")
        return self.read_until(b"MN\r\n", timeout, count=data.count(b"mn\r\n") + 1)[:-4]

    def read_all_until_closed(self, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        out = self.buf
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                raise TimeoutError(f"still open; got {out[-200:]!r}") from None
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk
        raise TimeoutError("still open")

    def close(self) -> None:
        self.sock.close()


def proxy_stat(port: int, name: str) -> int:
    """One number of the proxy's plain ``stats`` (an AssertionError when it has none)."""
    c = Conn(port)
    try:
        for line in c.request(b"stats\r\n").decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == name:
                return int(parts[2])
    finally:
        c.close()
    raise AssertionError(f"no stat {name}")


def read_values(conn: Conn, keys: list[bytes]) -> list[bytes]:
    """Each key's value as ``conn`` reads it (its whole reply when it is not a hit)."""
    out = []
    for k in keys:
        reply = conn.request(b"get %s\r\n" % k)
        out.append(reply.split(b"\r\n")[1] if reply.startswith(b"VALUE") else reply)
    return out

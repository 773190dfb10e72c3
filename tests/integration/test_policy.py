"""One policy gate: the deny-list by effect, and authentication, against real memcached.

What this proves, for every row of the README table "Deny-list: what each request does":

- with ``deny_commands: [<effect>]`` (applied by a SIGHUP reload), each request carrying that
  effect, in every protocol (text, meta, binary, binary quiet), gets the documented refusal and
  reaches no backend: the nodes' ``stats`` counters (``bytes_read`` included, so even a request
  memcached does not count is seen) and the item itself are unchanged on every node;
- with no deny-list the same requests are not refused and the harness does see them on a node
  (the positive control: the checks above can fail);
- requests with no effect are never refused, even with every effect denied;
- a client that has not authenticated is refused and reaches no backend; turning auth on,
  removing a user or adding a denied effect by reload applies to connections already open.

The effects of each request come only from the README table; this file knows only how to send
each row's request, and fails if a row is added that it cannot send.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.helpers import Conn, Memcached, ProxyProcess, pool_config, wait_until

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### Deny-list: what each request does"

# The effect names are the spec's vocabulary (what `deny_commands` takes); which request has
# which effect is read from the README table, never written here.
EFFECTS = (
    "read",
    "set",
    "add",
    "replace",
    "append",
    "prepend",
    "cas",
    "delete",
    "incr",
    "decr",
    "touch",
    "flush",
    "stats",
    "admin",
)
# Effects no node can show. None: stats and admin commands are asked of the nodes too
# (memfleet.proxy.admin), so every allowed row must be seen on a node.
PROXY_LOCAL: set[str] = set()

DENIED = b"CLIENT_ERROR command not allowed by the proxy\r\n"
UNAUTHENTICATED = b"CLIENT_ERROR unauthenticated\r\n"
DENIED_BODY = b"command not allowed by the proxy"
NOT_SUPPORTED, AUTH_ERROR = 0x0083, 0x0020

# The item every row finds on every node. Numeric, so an incr/decr that leaked through would
# change it (on a non-numeric value memcached refuses and changes nothing visible).
KEY, VALUE, FLAGS, TTL = b"k", b"1234", 5, 300


# -- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    protocol: str
    request: str  # the cell as written, backticks removed
    effects: frozenset[str]

    def label(self) -> str:
        return f"{self.protocol} `{self.request}`"


def read_table(readme: Path = README) -> list[Row]:
    """The rows of the markdown table under HEADING; raises when it is missing or short."""
    lines = readme.read_text().splitlines()
    if HEADING not in lines:
        raise AssertionError(f"{readme} has no heading {HEADING!r}")
    rows: list[Row] = []
    in_table = False
    for line in lines[lines.index(HEADING) + 1 :]:
        if line.startswith("#"):
            break  # the next section: the table is over (or was never there)
        if not line.startswith("|"):
            if in_table:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not in_table:
            if cells != ["protocol", "request", "effects"]:
                raise AssertionError(f"unexpected table header under {HEADING!r}: {line!r}")
            in_table = True
            continue
        if set("".join(cells)) <= set("-: "):
            continue  # the |---|---|---| line
        if len(cells) != 3:
            raise AssertionError(f"a row without 3 cells: {line!r}")
        protocol, request, effects = cells
        names = frozenset() if effects == "—" else frozenset(e.strip() for e in effects.split(","))
        rows.append(Row(protocol, request.strip("`"), names))
    if len(rows) < 60:
        raise AssertionError(f"the table under {HEADING!r} has {len(rows)} rows, expected 60+")
    return rows


# Read at import: the parametrization below is made of the table, so a missing table is a loud
# collection error rather than a quietly empty test module.
ROWS = read_table()
PROTOCOLS = list(dict.fromkeys(r.protocol for r in ROWS))


# -- how to send each row --------------------------------------------------------------------

HEADER = struct.Struct(">BBHBBHIIQ")
OPAQUE, BARRIER = 0x0D0D0001, 0xBA000000
NOOP, SASL_AUTH = 0x0A, 0x21
TEXT_COMMANDS = {"get", "gets", "gat", "gats", "delete", "incr", "decr", "touch", "flush_all",
                 "stats", "verbosity", "cache_memlimit", "version", "quit", "mg", "md", "ma", "me",
                 "mn"}  # fmt: skip
DATA_COMMANDS = {"set", "add", "replace", "append", "prepend", "cas", "ms"}
# Where each data-carrying command says its value's length.
LENGTH_TOKEN = {"ms": 2, "set": 4, "add": 4, "replace": 4, "append": 4, "prepend": 4, "cas": 4}


def _extras_store(_mods: str) -> bytes:
    return struct.pack(">II", 0, 0)  # flags, exptime


def _extras_arith(mods: str) -> bytes:
    # delta, initial, expiration; 0xffffffff: fail on a miss instead of creating the item.
    return struct.pack(">QQI", 1, 0, 0xFFFFFFFF if "no auto-create" in mods else 0)


def _extras_exptime(_mods: str) -> bytes:
    return struct.pack(">I", 30)


def _extras_none(_mods: str) -> bytes:
    return b""


def _extras_verbosity(_mods: str) -> bytes:
    return struct.pack(">I", 1)


# opcode -> (name in the table, extras, carries the key, carries the value `hi`)
BINARY_OPS: dict[int, tuple[str, Callable[[str], bytes], bool, bool]] = {
    0x00: ("Get", _extras_none, True, False),
    0x09: ("GetQ", _extras_none, True, False),
    0x0C: ("GetK", _extras_none, True, False),
    0x0D: ("GetKQ", _extras_none, True, False),
    0x1C: ("Touch", _extras_exptime, True, False),
    0x1D: ("GAT", _extras_exptime, True, False),
    0x1E: ("GATQ", _extras_exptime, True, False),
    0x23: ("GATK", _extras_exptime, True, False),
    0x24: ("GATKQ", _extras_exptime, True, False),
    0x01: ("Set", _extras_store, True, True),
    0x02: ("Add", _extras_store, True, True),
    0x03: ("Replace", _extras_store, True, True),
    0x11: ("SetQ", _extras_store, True, True),
    0x12: ("AddQ", _extras_store, True, True),
    0x13: ("ReplaceQ", _extras_store, True, True),
    0x0E: ("Append", _extras_none, True, True),
    0x0F: ("Prepend", _extras_none, True, True),
    0x19: ("AppendQ", _extras_none, True, True),
    0x1A: ("PrependQ", _extras_none, True, True),
    0x04: ("Delete", _extras_none, True, False),
    0x14: ("DeleteQ", _extras_none, True, False),
    0x05: ("Increment", _extras_arith, True, False),
    0x06: ("Decrement", _extras_arith, True, False),
    0x15: ("IncrementQ", _extras_arith, True, False),
    0x16: ("DecrementQ", _extras_arith, True, False),
    0x08: ("Flush", _extras_none, False, False),
    0x18: ("FlushQ", _extras_none, False, False),
    0x10: ("Stat", _extras_none, False, False),
    0x1B: ("Verbosity", _extras_verbosity, False, False),
    0x0A: ("Noop", _extras_none, False, False),
    0x0B: ("Version", _extras_none, False, False),
    0x07: ("Quit", _extras_none, False, False),
    0x17: ("QuitQ", _extras_none, False, False),
}
BINARY_CELL = re.compile(
    r"^(?P<name>\w+)(?P<mods>( with CAS| no auto-create)*) \((?P<op>0x[0-9a-f]{2})\)$"
)


def pkt(op: int, key: bytes = b"", extras: bytes = b"", value: bytes = b"", **kw: int) -> bytes:
    """One binary request (opaque and cas as keywords)."""
    body = extras + key + value
    opaque, cas = kw.get("opaque", 0), kw.get("cas", 0)
    return HEADER.pack(0x80, op, len(key), len(extras), 0, 0, len(body), opaque, cas) + body


@dataclass(frozen=True)
class Wire:
    data: bytes
    opcode: int | None = None  # binary rows: what the refusal must echo


def build(row: Row) -> Wire:
    """The bytes of a row's request; raises for a row this file does not know how to send."""
    if row.protocol in ("text", "meta"):
        words = row.request.split()
        if not words or words[0] not in TEXT_COMMANDS | DATA_COMMANDS:
            raise ValueError(f"cannot send {row.label()}: unknown command")
        data = row.request.encode() + b"\r\n"
        if words[0] in DATA_COMMANDS:
            if words[LENGTH_TOKEN[words[0]]] != "2":
                raise ValueError(f"cannot send {row.label()}: the value is `hi`, 2 bytes")
            data += b"hi\r\n"
        return Wire(data)
    if row.protocol in ("binary", "binary quiet"):
        m = BINARY_CELL.match(row.request)
        if m is None or int(m["op"], 16) not in BINARY_OPS:
            raise ValueError(f"cannot send {row.label()}: not `Name [modifiers] (0xNN)`")
        op = int(m["op"], 16)
        name, extras, keyed, valued = BINARY_OPS[op]
        if m["name"] != name:
            raise ValueError(f"cannot send {row.label()}: opcode {op:#04x} is {name}")
        data = pkt(
            op,
            KEY if keyed else b"",
            extras(m["mods"]),
            b"hi" if valued else b"",
            opaque=OPAQUE,
            cas=1 if "with CAS" in m["mods"] else 0,
        )
        return Wire(data, op)
    raise ValueError(f"cannot send {row.label()}: unknown protocol")


# -- talking to the proxy --------------------------------------------------------------------


@dataclass(frozen=True)
class Resp:
    opcode: int
    status: int
    opaque: int
    value: bytes


def read_binary(
    sock: socket.socket, barrier: bool, timeout: float = 3.0
) -> tuple[list[Resp], bool]:
    """Binary responses up to the barrier Noop (left out) or until the server closes;
    returns them and whether the connection was closed."""
    buf, out = b"", list[Resp]()
    deadline = time.monotonic() + timeout
    while True:
        while len(buf) >= 24:
            _m, op, kl, el, _dt, st, bl, opq, _cas = HEADER.unpack_from(buf)
            if len(buf) < 24 + bl:
                break
            r = Resp(op, st, opq, buf[24 + el + kl : 24 + bl])
            buf = buf[24 + bl :]
            if barrier and op == NOOP and opq == BARRIER:
                return out, False
            out.append(r)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no barrier and no close after {timeout}s; got {out}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(1 << 16)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return out, True
        buf += chunk


def send_binary(sock: socket.socket, wire: Wire) -> tuple[list[Resp], bool]:
    # A Noop after every request: a quiet refusal must come before the Noop's reply.
    sock.sendall(wire.data + pkt(NOOP, opaque=BARRIER))
    return read_binary(sock, barrier=True)


def is_binary_refusal(resps: list[Resp], wire: Wire, status: int) -> bool:
    """Exactly one response, for this request (opcode, opaque), with this status."""
    return (
        len(resps) == 1
        and resps[0].opcode == wire.opcode
        and resps[0].opaque == OPAQUE
        and resps[0].status == status
    )


Reply = bytes | list[Resp]


def exchange(s: socket.socket, wire: Wire) -> Reply:
    """Send one request and its barrier; the text replies or binary responses before it."""
    return text_reply(s, wire.data) if wire.opcode is None else send_binary(s, wire)[0]


def denial_problem(reply: Reply, wire: Wire) -> str | None:
    """None if ``reply`` is exactly the documented deny-list refusal, else what is wrong."""
    if isinstance(reply, bytes):
        return None if reply == DENIED else f"not refused: got {reply!r}"
    if not is_binary_refusal(reply, wire, NOT_SUPPORTED):
        return f"not refused: got {reply!r}"
    return None if reply[0].value == DENIED_BODY else f"refused with body {reply[0].value!r}"


def open_conn(port: int) -> socket.socket:
    # A fresh connection per request: nothing one row did can colour the next.
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def text_reply(sock: socket.socket, data: bytes, timeout: float = 3.0) -> bytes:
    """Send ``data`` then ``mn`` (never denied); return every reply before the ``MN``."""
    sock.sendall(data + b"mn\r\n")
    want = data.count(b"mn\r\n") + 1
    buf = b""
    deadline = time.monotonic() + timeout
    while not (buf.endswith(b"MN\r\n") and buf.count(b"MN\r\n") >= want):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no MN after {timeout}s; got {buf[-200:]!r}")
        sock.settimeout(remaining)
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError(f"closed; got {buf[-200:]!r}")
        buf += chunk
    return buf[:-4]


def one_line(sock: socket.socket, data: bytes, timeout: float = 3.0) -> bytes:
    """Send ``data`` and read one reply line (unauthenticated, even ``mn`` is refused)."""
    sock.sendall(data)
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(1 << 16)
        if not chunk:
            return buf
        buf += chunk
    return buf


def wait_closed(sock: socket.socket, timeout: float = 3.0) -> bool:
    """Whether the server closes ``sock`` within ``timeout`` (whatever it sends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(1 << 16):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


# -- the nodes -------------------------------------------------------------------------------

COUNTERS = (
    "cmd_get",
    "cmd_set",
    "cmd_flush",
    "cmd_touch",
    "cmd_meta",
    "get_hits",
    "get_misses",
    "get_expired",
    "get_flushed",
    "delete_misses",
    "delete_hits",
    "incr_misses",
    "incr_hits",
    "decr_misses",
    "decr_hits",
    "cas_misses",
    "cas_hits",
    "cas_badval",
    "touch_hits",
    "touch_misses",
    "store_too_large",
    "store_no_memory",
    "auth_cmds",
    "auth_errors",
    "curr_items",
    "total_items",
    "bytes",
    "expired_unfetched",
    "evicted_unfetched",
    "evictions",
    "reclaimed",
    "bytes_read",
)
STATS = b"stats\r\n"


class Node:
    """One memcached node and a direct connection to it (the proxy is not involved)."""

    def __init__(self, name: str, mc: Memcached) -> None:
        self.name, self.mc = name, mc
        self.conn = Conn(mc.port)

    def counters(self) -> dict[str, int]:
        # No `mn` here: a barrier would itself be counted (cmd_meta) between two snapshots.
        self.conn.send(STATS)
        raw = self.conn.read_until(b"END\r\n")
        stats = dict(line.split(" ", 2)[1:] for line in raw.decode().splitlines()[:-1])
        return {c: int(stats[c]) for c in COUNTERS}

    def preload(self) -> None:
        reply = self.conn.request(
            b"set %s %d %d %d\r\n%s\r\n" % (KEY, FLAGS, TTL, len(VALUE), VALUE)
        )
        assert reply == b"STORED\r\n", f"{self.name}: preload answered {reply!r}"

    def item(self) -> tuple[bytes, dict[str, str], int] | None:
        """(value, returned flags but the TTL, TTL) as the node has it, or None on a miss."""
        reply = self.conn.request(b"mg %s v f t c\r\n" % KEY)
        if reply == b"EN\r\n":
            return None
        head, value, _ = reply.split(b"\r\n", 2)
        tokens = head.decode().split()[2:]
        flags = {t[0]: t[1:] for t in tokens if t[0] != "t"}
        ttl = next(int(t[1:]) for t in tokens if t[0] == "t")
        return value, flags, ttl


def diff(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """Counters that moved between two snapshots of one node."""
    # The second snapshot's own `stats` request is the only thing the node may read between
    # them; any other byte read is a request that reached it.
    after = {**after, "bytes_read": after["bytes_read"] - len(STATS)}
    return [f"{c} {before[c]} -> {after[c]}" for c in COUNTERS if before[c] != after[c]]


@dataclass
class Observation:
    """What the nodes showed while one request went through the proxy."""

    changed: list[str]  # counters, per node
    item_changes: list[str]


class Fleet:
    """Two memcached nodes and one proxy over them; the proxy's config is rewritten and
    reloaded (SIGHUP) by each test as it needs."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.mcs = [Memcached(), Memcached()]
        self.nodes = [Node(n, mc) for n, mc in zip("ab", self.mcs, strict=True)]
        self.config: dict[str, object] = self.make_config()
        self.proxy = ProxyProcess(self.config, workdir)

    def make_config(
        self, deny: list[str] | None = None, auth: Path | None = None
    ) -> dict[str, object]:
        # One pool over both nodes: `k` lives on one of them, and every check looks at both.
        cfg = pool_config(*(mc.address for mc in self.mcs))
        if deny:
            cfg["deny_commands"] = deny
        if auth is not None:
            cfg["auth"] = {"file": str(auth)}
        return cfg

    def configure(self, deny: list[str] | None = None, auth: Path | None = None) -> None:
        """Run the proxy with this config (a reload only when it differs from the last)."""
        cfg = self.make_config(deny, auth)
        if cfg != self.config:
            self.proxy.write_config(cfg)
            self.config = cfg
            self.reload()

    def reload(self) -> None:
        """SIGHUP, then wait for the proxy to log the outcome; a refused reload fails."""
        log = self.proxy.log()
        done, refused = log.count("reloaded "), log.count("reload refused")
        self.proxy.proc.send_signal(signal.SIGHUP)
        assert wait_until(
            lambda: (
                (now := self.proxy.log()).count("reloaded ") > done
                or now.count("reload refused") > refused
            ),
            10,
        ), "the proxy did not log a reload within 10 s"
        tail = self.proxy.log()
        assert tail.count("reload refused") == refused, f"reload refused:\n{tail[-2000:]}"

    def preload(self) -> list[tuple[bytes, dict[str, str], int] | None]:
        for n in self.nodes:
            n.preload()
        return [n.item() for n in self.nodes]

    def observe(self, send: Callable[[], None]) -> Observation:
        """Preload `k`, snapshot every node, run ``send()``, snapshot again, then (only
        then, as reading the item counts as a get) compare the item on every node."""
        items = self.preload()
        before = [n.counters() for n in self.nodes]
        send()
        after = [n.counters() for n in self.nodes]
        changed = [
            f"{n.name}: {d}" for n, b, a in zip(self.nodes, before, after, strict=True)
            for d in diff(b, a)
        ]  # fmt: skip
        item_changes = []
        for n, was in zip(self.nodes, items, strict=True):
            now = n.item()
            assert was is not None
            if now is None:
                item_changes.append(f"{n.name}: item gone")
            elif now[:2] != was[:2] or not was[2] - 5 <= now[2] <= was[2]:
                item_changes.append(f"{n.name}: item {was} -> {now}")
        return Observation(changed, item_changes)

    def stop(self) -> None:
        self.proxy.stop()
        for n in self.nodes:
            n.conn.close()
        for mc in self.mcs:
            mc.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if shutil.which("memcached") is None:
        pytest.fail("memcached is not installed: apt-get install -y memcached")
    f = Fleet(tmp_path_factory.mktemp("policy"))
    try:
        yield f
    finally:
        f.stop()


# -- the table itself ------------------------------------------------------------------------


def test_table_rows_are_all_sendable() -> None:
    unknown = {e for r in ROWS for e in r.effects} - set(EFFECTS)
    assert not unknown, f"README table names effects the spec does not have: {unknown}"
    unused = set(EFFECTS) - {e for r in ROWS for e in r.effects}
    assert not unused, f"effects no README row has: {unused}"
    for row in ROWS:
        build(row)  # raises, naming the row, for a request this file cannot send


# -- denied: refused, and nothing reaches a node ---------------------------------------------


def run_row(fleet: Fleet, row: Row, denied: bool) -> list[str]:
    """Send one row through the proxy on a fresh connection; what went wrong, if anything.

    ``denied``: the row must be refused and reach no node; otherwise it must not be refused
    and must show on a node."""
    wire = build(row)
    problems: list[str] = []
    replies: list[Reply] = []

    def send() -> None:
        with open_conn(fleet.proxy.port) as s:
            replies.append(exchange(s, wire))

    obs = fleet.observe(send)
    denial = denial_problem(replies[0], wire)
    if denied:
        problems += [denial] if denial is not None else []
        problems += ["node counters changed: " + ", ".join(obs.changed)] if obs.changed else []
        problems += obs.item_changes
    else:
        if denial is None or replies[0] == UNAUTHENTICATED:
            problems.append(f"refused with no deny-list: {replies[0]!r}")
        if not row.effects <= PROXY_LOCAL and not obs.changed:
            problems.append("the harness saw nothing reach a node")
    return [f"{row.label()}: {p}" for p in problems]


CELLS = [
    pytest.param(p, e, id=f"{p}-{e}")
    for e in EFFECTS  # effect outermost: one reload per effect, not per cell
    for p in PROTOCOLS
    if any(r.protocol == p and e in r.effects for r in ROWS)
]


@pytest.mark.parametrize(("protocol", "effect"), CELLS)
def test_denied_effect(fleet: Fleet, protocol: str, effect: str) -> None:
    fleet.configure(deny=[effect])
    rows = [r for r in ROWS if r.protocol == protocol and effect in r.effects]
    # Every row runs, so one failure lists every row of the cell that is wrong.
    problems = [p for r in rows for p in run_row(fleet, r, denied=True)]
    assert not problems, f"deny_commands: [{effect}]\n" + "\n".join(problems)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_harness_sees_every_row_when_allowed(fleet: Fleet, protocol: str) -> None:
    """The positive control: with no deny-list every row is served and shows on a node
    (e.g. text `touch k 30` moves cmd_touch), so the checks above can fail."""
    fleet.configure()
    rows = [r for r in ROWS if r.protocol == protocol and r.effects]
    problems = [p for r in rows for p in run_row(fleet, r, denied=False)]
    assert not problems, "\n".join(problems)


def test_no_effect_is_never_denied(fleet: Fleet) -> None:
    fleet.configure(deny=list(EFFECTS))
    problems = []
    for row in (r for r in ROWS if not r.effects):
        wire = build(row)
        with open_conn(fleet.proxy.port) as s:
            got: Reply
            if row.request == "quit" or wire.opcode in (0x07, 0x17):
                # Quit closes the connection: a refusal before the close would be wrong.
                s.sendall(wire.data)
                got = s.recv(100) if wire.opcode is None else read_binary(s, barrier=False)[0]
            else:
                got = exchange(s, wire)
        if isinstance(got, bytes):
            ok = not got.startswith(b"CLIENT_ERROR")
        else:
            ok = all(r.status == 0 for r in got)
        if not ok:
            problems.append(f"{row.label()}: got {got!r}")
    assert not problems, "\n".join(problems)


# -- authentication --------------------------------------------------------------------------

# One representative request per protocol: a read of `k`, sent as the table spells it.
PROBES = {"text": "get k", "meta": "mg k v", "binary": "Get (0x00)", "binary quiet": "GetQ (0x09)"}
AUTH_PROTOCOLS = list(PROBES)


def probe(protocol: str) -> Wire:
    """The representative request of ``protocol``, built as its table row would be."""
    return build(Row(protocol, PROBES[protocol], frozenset()))


def served(protocol: str, s: socket.socket) -> str | None:
    """Send the probe on ``s``; None if `k` came back, else what came instead."""
    got = exchange(s, probe(protocol))
    if isinstance(got, bytes):
        ok = VALUE in got
    else:
        ok = len(got) == 1 and got[0].status == 0 and got[0].value == VALUE
    return None if ok else f"not served: {got!r}"


def refused_unauthenticated(protocol: str, s: socket.socket) -> str | None:
    """Send the probe on ``s``; None if refused as unauthenticated, else what came instead."""
    wire = probe(protocol)
    if wire.opcode is None:
        got = one_line(s, wire.data)
        return None if got == UNAUTHENTICATED else f"got {got!r}"
    s.sendall(wire.data + pkt(NOOP, opaque=BARRIER))
    resps, closed = read_binary(s, barrier=True)
    if not is_binary_refusal(resps, wire, AUTH_ERROR):
        return f"got {resps!r}"
    return None if closed else "refused, but the connection was not closed"


def authenticate(protocol: str, s: socket.socket, user: bytes, password: bytes) -> None:
    """memcached's ways: -Y style `set <any> 0 0 <len>` for text, SASL PLAIN for binary."""
    if protocol in ("text", "meta"):
        token = user + b" " + password
        reply = one_line(s, b"set auth 0 0 %d\r\n%s\r\n" % (len(token), token))
        assert reply == b"STORED\r\n", f"authentication answered {reply!r}"
    else:
        s.sendall(pkt(SASL_AUTH, b"PLAIN", value=b"\0" + user + b"\0" + password, opaque=7))
        s.sendall(pkt(NOOP, opaque=BARRIER))
        resps, _ = read_binary(s, barrier=True)
        assert [r.status for r in resps] == [0], f"SASL auth answered {resps!r}"


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "users"
    path.write_text("alice:alice-pass\nbob:bob-pass\n")
    return path


@pytest.fixture(scope="module")
def auth_proxy(
    fleet: Fleet, users: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    """A second proxy over the same nodes, with auth configured from the start."""
    proxy = ProxyProcess(fleet.make_config(auth=users), tmp_path_factory.mktemp("auth-proxy"))
    try:
        yield proxy
    finally:
        proxy.stop()


def check_quiet(fleet: Fleet, send: Callable[[], None]) -> list[str]:
    """Run ``send`` under observation; what changed on the nodes (nothing may)."""
    obs = fleet.observe(send)
    changed = ["node counters changed: " + ", ".join(obs.changed)] if obs.changed else []
    return changed + obs.item_changes


@pytest.mark.parametrize("protocol", AUTH_PROTOCOLS)
def test_unauthenticated_is_refused(fleet: Fleet, auth_proxy: ProxyProcess, protocol: str) -> None:
    problems: list[str] = []

    def send() -> None:
        with open_conn(auth_proxy.port) as s:
            if (p := refused_unauthenticated(protocol, s)) is not None:
                problems.append(p)

    problems += check_quiet(fleet, send)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("protocol", AUTH_PROTOCOLS)
def test_auth_turned_on_applies_to_open_connections(
    fleet: Fleet, users: Path, protocol: str
) -> None:
    fleet.configure()
    with open_conn(fleet.proxy.port) as s:
        fleet.preload()
        assert served(protocol, s) is None, "no auth configured: the probe must be served"
        fleet.configure(auth=users)
        problems: list[str] = []

        def send() -> None:
            if (p := refused_unauthenticated(protocol, s)) is not None:
                problems.append(f"the open connection: {p}")

        problems += check_quiet(fleet, send)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("protocol", AUTH_PROTOCOLS)
def test_removed_user_is_disconnected(
    fleet: Fleet, tmp_path_factory: pytest.TempPathFactory, protocol: str
) -> None:
    path = tmp_path_factory.mktemp("rotate") / "users"
    path.write_text("alice:alice-pass\nbob:bob-pass\n")
    fleet.configure(auth=path)
    with open_conn(fleet.proxy.port) as bob, open_conn(fleet.proxy.port) as alice:
        authenticate(protocol, bob, b"bob", b"bob-pass")
        authenticate(protocol, alice, b"alice", b"alice-pass")
        fleet.preload()
        assert served(protocol, bob) is None and served(protocol, alice) is None
        path.write_text("alice:alice-pass\n")
        fleet.reload()  # the config is the same; the password file is re-read
        assert wait_closed(bob), "bob was removed: his connection must be closed"
        # Only bob's: alice, still in the file, keeps her connection.
        assert served(protocol, alice) is None, "alice's connection must keep working"


@pytest.mark.parametrize("protocol", AUTH_PROTOCOLS)
def test_reload_deny_applies_to_open_connection(fleet: Fleet, protocol: str) -> None:
    fleet.configure()
    with open_conn(fleet.proxy.port) as s:
        fleet.preload()
        assert served(protocol, s) is None, "no deny-list: the probe must be served"
        fleet.configure(deny=["read"])
        wire = probe(protocol)
        got: list[Reply] = []

        def send() -> None:
            got.append(exchange(s, wire))

        problems = check_quiet(fleet, send)
    if (denial := denial_problem(got[0], wire)) is not None:
        problems.insert(0, f"the open connection: {denial}")
    assert not problems, "deny_commands: [read]\n" + "\n".join(problems)

"""Fuzz the sans-IO codec for as long as you like (hypothesis at scale, no extra install).

    python tests/fuzz/fuzz_codec.py --minutes 5 [--seed N]

Inputs are memcached sessions built from a grammar of real commands (text, meta, binary),
then mutated (bytes flipped, inserted, deleted, truncated, spliced) and split at random
points. For every input it checks what the proxy relies on:

- the client parser, the backend reply framer and the binary parser never raise anything
  but their documented errors;
- any split of the same bytes yields the same requests as one read (incremental = whole);
- memory stays bounded: what a parser buffers never exceeds the longest allowed line plus
  the largest allowed item.

It prints how many inputs ran and any failure with a reproducer; exit status 1 on a failure.
Results of runs are recorded in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable

from memfleet.protocol.binary import BinaryParser
from memfleet.protocol.parse import RequestParser
from memfleet.protocol.requests import Kind, Reply, Request
from memfleet.protocol.responses import FramingError, ResponseFramer

MAX_ITEM = 4096
MAX_LINE = 4096

TEXT = [
    b"get {k}\r\n", b"gets {k} {k} {k}\r\n", b"gat 10 {k}\r\n", b"gats 0 {k} {k}\r\n",
    b"set {k} 0 0 {n}\r\n{v}\r\n", b"add {k} 5 100 {n} noreply\r\n{v}\r\n",
    b"cas {k} 0 0 {n} 77\r\n{v}\r\n", b"append {k} 0 0 {n}\r\n{v}\r\n",
    b"delete {k}\r\n", b"delete {k} noreply\r\n", b"incr {k} 5\r\n", b"decr {k} 1 noreply\r\n",
    b"touch {k} 10\r\n", b"flush_all\r\n", b"flush_all 0 noreply\r\n", b"version\r\n",
    b"verbosity 1\r\n", b"stats\r\n", b"mn\r\n", b"mg {k} v k c f t q O{n}\r\n",
    b"ms {k} {n} T10 F5 q\r\n{v}\r\n", b"md {k} q\r\n", b"ma {k} N0 J1 D2 v\r\n",
    b"me {k}\r\n", b"mg {b64} b v\r\n", b"bogus\r\n", b"\r\n", b"quit\r\n",
]  # fmt: skip
REPLIES = [
    b"VALUE {k} 0 {n}\r\n{v}\r\nEND\r\n", b"VALUE {k} 0 {n} 55\r\n{v}\r\nEND\r\n", b"END\r\n",
    b"STORED\r\n", b"NOT_FOUND\r\n", b"VA {n} f0 c9\r\n{v}\r\n", b"EN\r\n", b"HD\r\n",
    b"SERVER_ERROR out of memory\r\n", b"CLIENT_ERROR bad data chunk\r\n", b"42\r\n",
    b"MN\r\n", b"ME {k} exp=-1 la=1 cas=2 fetch=no cls=1 size=63\r\n",
]  # fmt: skip


def _fill(rng: random.Random, template: bytes) -> bytes:
    n = rng.choice([0, 1, 5, 100, MAX_ITEM - 1, MAX_ITEM + 1])
    key = rng.choice([b"k", b"key:1", b"x" * 250, b"y" * 251, b"a\tb"])
    return (
        template.replace(b"{k}", key)
        .replace(b"{b64}", b"a2V5")
        .replace(b"{n}", str(n).encode())
        .replace(b"{v}", bytes(rng.randrange(256) for _ in range(min(n, 64))) * (n // 64 + 1))
    )


def _binary(rng: random.Random) -> bytes:
    op = rng.choice([0x00, 0x01, 0x04, 0x05, 0x09, 0x0A, 0x0C, 0x10, 0x1C, 0x20, 0x21, 0x55])
    key = rng.choice([b"", b"k", b"key:9", b"z" * 250])
    extras = bytes(rng.randrange(256) for _ in range(rng.choice([0, 4, 8, 20])))
    value = b"v" * rng.choice([0, 3, 100])
    body = extras + key + value
    header = bytes([0x80, op]) + len(key).to_bytes(2, "big") + bytes([len(extras), 0, 0, 0])
    header += len(body).to_bytes(4, "big") + rng.randbytes(4) + bytes(8)
    return header + body


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(4)):
        if not b:
            break
        i = rng.randrange(len(b))
        what = rng.randrange(5)
        if what == 0:
            b[i] = rng.randrange(256)
        elif what == 1:
            b.insert(i, rng.choice(b" \r\n\x00\x80"))
        elif what == 2:
            del b[i]
        elif what == 3:
            del b[i:]
        else:
            j = rng.randrange(len(b))
            b[i:i] = b[j : j + rng.randrange(40)]
    return bytes(b)


def _splits(rng: random.Random, data: bytes) -> list[bytes]:
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(8)))
    out, prev = [], 0
    for c in [*cuts, len(data)]:
        out.append(data[prev:c])
        prev = c
    return out


def _summary(reqs: list[Request]) -> list[tuple[object, ...]]:
    # A binary hand-over carries whatever the first read held; only the hand-over matters.
    return [
        (r.kind,)
        if r.kind is Kind.BINARY
        else (r.kind, r.cmd, r.key, tuple(r.keys), r.wire, r.reply)
        for r in reqs
    ]


def _joined(reqs: list[Request]) -> list[tuple[object, ...]]:
    """The summary with a get line handed over in parts (``more``) joined back into one
    get, and get wires left out (a part has none)."""
    out: list[tuple[object, ...]] = []
    keys: list[bytes] = []
    for r in reqs:
        if r.kind is Kind.GET:
            keys += r.keys
            if r.more:
                continue
            out.append((r.kind, r.cmd, tuple(keys), r.reply))
            keys = []
        else:
            out += _summary([r])
    return out


def check_text(rng: random.Random, data: bytes) -> None:
    """Client parser: never raises, split == whole (but for memcached's own read-for-read
    rule: a read ending inside a long line that is not a get closes, silently), bounded."""
    whole = _joined(RequestParser(MAX_ITEM, MAX_LINE).feed(data))
    p = RequestParser(MAX_ITEM, MAX_LINE)
    got: list[Request] = []
    for piece in _splits(rng, data):
        got += p.feed(piece)
        assert p.buffered <= MAX_LINE + MAX_ITEM + 4, p.buffered
    split = _joined(got)
    if split and split[-1] == (Kind.CLOSE, b"", b"", (), b"", Reply.NORMAL) and split != whole:
        split = split[:-1]  # closed where a read ended inside a long line
        whole = whole[: len(split)]
    assert split == whole


def check_replies(rng: random.Random, data: bytes) -> None:
    """Backend framer: only FramingError, split == whole, until the first error."""
    try:
        whole = ResponseFramer().feed(data)
    except FramingError:
        return
    f = ResponseFramer()
    got: list[bytes] = []
    try:
        for piece in _splits(rng, data):
            got += f.feed(piece)
    except FramingError:
        return  # a split may reach the bad length before the whole did not; both refuse
    assert got == whole


def check_binary(rng: random.Random, data: bytes) -> None:
    """Binary parser: never raises, split == whole, bounded."""
    whole = [repr(vars(r)) if hasattr(r, "__dict__") else repr(r) for r in _bin(data, [data])]
    got = [
        repr(vars(r)) if hasattr(r, "__dict__") else repr(r) for r in _bin(data, _splits(rng, data))
    ]
    assert got == whole


def _bin(data: bytes, pieces: list[bytes]) -> list[object]:
    p = BinaryParser(MAX_ITEM)
    out: list[object] = []
    for piece in pieces:
        out += p.feed(piece)
    return out


def one_input(rng: random.Random) -> tuple[str, bytes]:
    """A session to try, and which checker it is for."""
    kind = rng.choice(["text", "text", "replies", "binary"])
    if kind == "text":
        data = b"".join(_fill(rng, rng.choice(TEXT)) for _ in range(rng.randrange(1, 8)))
    elif kind == "replies":
        data = b"".join(_fill(rng, rng.choice(REPLIES)) for _ in range(rng.randrange(1, 8)))
    else:
        data = b"".join(_binary(rng) for _ in range(rng.randrange(1, 6)))
    if rng.random() < 0.7:
        data = _mutate(rng, data)
    if rng.random() < 0.05:
        data = rng.randbytes(rng.randrange(1, 3000))
    return kind, data


CHECKS: dict[str, Callable[[random.Random, bytes], None]] = {
    "text": check_text,
    "replies": check_replies,
    "binary": check_binary,
}


def main(argv: list[str] | None = None) -> int:
    """Run for ``--minutes`` (or ``--count`` inputs); report; exit 1 on a failure."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--count", type=int, default=0, help="stop after this many inputs")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    deadline = time.monotonic() + args.minutes * 60
    runs = {k: 0 for k in CHECKS}
    n = 0
    while time.monotonic() < deadline and (not args.count or n < args.count):
        state = rng.getstate()
        kind, data = one_input(rng)
        try:
            CHECKS[kind](rng, data)
        except Exception as exc:  # a finding: report it with what reproduces it
            rng.setstate(state)
            print(f"FAILURE after {n} inputs (seed {seed}): {kind}: {exc!r}")
            print(f"input: {data[:400]!r}")
            return 1
        runs[kind] += 1
        n += 1
    print(f"seed {seed}: {n} inputs, no failure ({', '.join(f'{k} {v}' for k, v in runs.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

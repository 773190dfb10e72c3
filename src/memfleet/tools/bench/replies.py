"""Counting the replies to a batch of gets and sets as they arrive, however they are split."""

from __future__ import annotations

from memfleet.tools.bench.sample import Sample


def parse_replies(buf: bytearray, kinds: bytes, sample: Sample) -> tuple[int, int] | None:
    """Parse complete replies from ``buf`` for the requests ``kinds`` (b"g" get, b"s" set);
    count them in ``sample``. Returns (replies parsed, bytes consumed); None if the stream
    makes no sense (the connection must be reset)."""
    pos = 0
    n = 0
    end = len(buf)
    for k in kinds:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            break
        if k == 103:  # get
            if buf.startswith(b"VALUE ", pos):
                try:
                    length = int(buf[pos:eol].split()[3])
                except (IndexError, ValueError):
                    return None
                stop = eol + 2 + length + 2
                if end < stop + 5:
                    break
                if buf[stop : stop + 5] != b"END\r\n":
                    return None
                sample.hits += 1
                pos = stop + 5
            elif eol == pos + 3 and buf.startswith(b"END", pos):
                sample.misses += 1
                pos = eol + 2
            else:
                sample.get_errors += 1
                pos = eol + 2
            sample.gets += 1
        else:
            if not (eol == pos + 6 and buf.startswith(b"STORED", pos)):
                sample.set_errors += 1
            sample.sets += 1
            pos = eol + 2
        n += 1
    return n, pos

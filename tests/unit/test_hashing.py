"""Key placement reproduces memcached's proxy, row by row (tests/data/hash_vectors.csv)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from memfleet.backends import hashing
from memfleet.backends.hashing import Placement, jump_hash_py, key_hash, pool_seed

# Both the compiled jump hash (when installed) and the pure-Python one must match.
JUMPS = {"python": jump_hash_py, "active": hashing.jump_hash}

VECTORS = Path(__file__).resolve().parents[1] / "data" / "hash_vectors.csv"


def _rows() -> list[dict[str, str]]:
    with VECTORS.open(newline="") as f:
        return list(csv.DictReader(f))


ROWS = _rows()
BUCKET_COLUMNS = [c for c in ROWS[0] if c.startswith("n") and c[1:].isdigit()]


def test_vectors_are_present() -> None:
    assert len(ROWS) > 500
    assert {r["seed"] for r in ROWS} >= {"", "replica_0", "replica_1"}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['seed'] or '-'}:{r['key']}")
def test_every_vector_row(row: dict[str, str]) -> None:
    seed64 = pool_seed(row["seed"] or None)
    h = key_hash(row["key"].encode(), seed64)
    assert h == int(row["hash64"])
    for col in BUCKET_COLUMNS:
        n = int(col[1:])
        for name, jump in JUMPS.items():
            assert jump(h, n) == int(row[col]), (col, name)
        assert Placement(n, row["seed"] or None).index(row["key"].encode()) == int(row[col])


def test_compiled_jump_hash_is_in_use_unless_pure_python_is_asked_for() -> None:
    # It is a declared dependency; without it every request pays ~0.5 µs more.
    import jump

    if os.environ.get("MEMFLEET_PURE_PYTHON"):
        assert hashing.jump_hash is hashing.jump_hash_py
    else:
        assert hashing.jump_hash is jump.hash


def test_jump_hash_moves_few_keys_when_growing() -> None:
    keys = [f"k{i}".encode() for i in range(2000)]
    before = [Placement(4).index(k) for k in keys]
    after = [Placement(5).index(k) for k in keys]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    # Jump hash only ever moves keys to the new bucket.
    assert all(a == 4 for _, a in moved)
    assert 0 < len(moved) < len(keys) // 3


def test_placement_rejects_empty_pool() -> None:
    with pytest.raises(ValueError):
        Placement(0)

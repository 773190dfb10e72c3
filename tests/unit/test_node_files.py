"""The node supervisor's file logic: state-file validation, pinned options, sizing."""

from __future__ import annotations

from pathlib import Path

import pytest

from memfleet.fleet.node.memory_file import MIB, volume_reserve
from memfleet.fleet.node.pins import pin_changes, pinned_options
from memfleet.fleet.node.probe import connect_host
from memfleet.fleet.node.state_file import check_state_file

# What memcached 1.6.18 wrote on a graceful stop (captured from a real run).
GOOD = (
    b"Tmain\nKslab_config 1.25\nKmaxbytes 67108864\nKchunk_size 48\nKitem_size_max 1048576\n"
    b"Kslab_chunk_size_max 524288\nKslab_page_size 1048576\nKuse_cas true\nKslab_reassign true\n"
    b"Kcurrent_time 63\nKprocess_started 1795279188\nKstop_time 1795279251\nKcurrent_cas 1\n"
    b"Koldest_cas 0\nKlogger_gid 1\nKhashpower 16\nKoldest_live 0\nKmmap_oldbase 0x7f5013a00000\n"
)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (GOOD, None),
        (b"", "is empty"),
        (b"garbage\n" + GOOD[6:], "is not a tag"),
        (GOOD[:100], "truncated"),
        (GOOD.replace(b"Kmmap_oldbase 0x7f5013a00000\n", b""), "no mmap_oldbase"),
        (GOOD.replace(b"Kmaxbytes 67108864", b"Kmaxbytes"), "line 3"),
    ],
    ids=["good", "empty", "garbage", "cut", "missing-key", "no-value"],
)
def test_check_state_file(tmp_path: Path, content: bytes, problem: str | None) -> None:
    meta = tmp_path / "cache.meta"
    meta.write_bytes(content)
    found = check_state_file(meta)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_pinned_options_normalise_every_spelling() -> None:
    argv = ["-p", "1", "-m", "64", "--max-item-size=2m", "-n48", "-f", "1.5", "--disable-cas",
            "-o", "slab_chunk_max=256,lru_crawler,slab_sizes=100-200", "-t", "4",
            "-m", "128"]  # fmt: skip
    assert pinned_options(argv) == {
        "-m": "128",
        "-I": "2m",
        "-n": "48",
        "-f": "1.5",
        "-C": "true",
        "-o slab_chunk_max": "256",
        "-o slab_sizes": "100-200",
    }


def test_pin_changes_name_the_option_and_both_values() -> None:
    old = {"memcached": "1.6.18", "options": {"-m": "64"}}
    assert pin_changes(old, old) == []
    new = {"memcached": "1.6.21", "options": {"-m": "80", "-C": "true"}}
    assert pin_changes(old, new) == [
        "the memcached version changed (1.6.18 → 1.6.21)",
        "-C changed (default → true)",
        "-m (--memory) changed (64 → 80)",
    ]


def test_reserve_and_connect_host() -> None:
    assert volume_reserve(64 * MIB) == 3 * MIB
    assert volume_reserve(1000 * MIB) == 10 * MIB + MIB
    assert connect_host("0.0.0.0") == "127.0.0.1"
    assert connect_host("10.0.0.1,127.0.0.1") == "10.0.0.1"
    assert connect_host("::") == "::1"

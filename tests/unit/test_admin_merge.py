"""The merge rules of the fleet-wide admin commands (memfleet.proxy.admin.groups), on
listings shaped as memcached 1.6 writes them. The integration tests check the same rules
against real nodes (tests/integration/test_admin_fleet.py)."""

from __future__ import annotations

from memfleet.proxy.admin import groups
from memfleet.proxy.admin.listing import fields, render

FAIL = b"SERVER_ERROR backend failure\r\n"


def listing(*pairs: tuple[str, object]) -> bytes:
    return render((k.encode(), str(v).encode()) for k, v in pairs)


def values(reply: bytes) -> dict[bytes, bytes]:
    return dict(fields(reply))


def test_slabs_sum_counts_keep_sizes_and_recount_classes() -> None:
    a = listing(
        ("1:chunk_size", 96), ("1:chunks_per_page", 10922), ("1:total_pages", 1),
        ("1:used_chunks", 3), ("active_slabs", 1), ("total_malloced", 1048576),
    )  # fmt: skip
    b = listing(
        ("1:chunk_size", 96), ("1:chunks_per_page", 10922), ("1:total_pages", 2),
        ("1:used_chunks", 4), ("5:chunk_size", 240), ("5:chunks_per_page", 4369),
        ("5:total_pages", 1), ("5:used_chunks", 1), ("active_slabs", 2),
        ("total_malloced", 3145728),
    )  # fmt: skip
    got = groups.slabs([a, FAIL, b])
    assert fields(got) == [
        (b"1:chunk_size", b"96"), (b"1:chunks_per_page", b"10922"), (b"1:total_pages", b"3"),
        (b"1:used_chunks", b"7"), (b"5:chunk_size", b"240"), (b"5:chunks_per_page", b"4369"),
        (b"5:total_pages", b"1"), (b"5:used_chunks", b"1"), (b"active_slabs", b"2"),
        (b"total_malloced", b"4194304"),
    ]  # fmt: skip
    assert got.endswith(b"END\r\n")


def test_classes_come_in_numeric_order() -> None:
    a = listing(("12:chunk_size", 1184), ("active_slabs", 1))
    b = listing(("3:chunk_size", 152), ("active_slabs", 1))
    assert [k for k, _ in fields(groups.slabs([a, b]))] == [
        b"3:chunk_size", b"12:chunk_size", b"active_slabs",
    ]  # fmt: skip


def test_items_ages_max_evicted_time_of_the_last_eviction() -> None:
    a = listing(
        ("items:1:number", 2), ("items:1:age", 30), ("items:1:evicted", 0),
        ("items:1:evicted_time", 0), ("items:1:outofmemory", 1),
    )  # fmt: skip
    b = listing(
        ("items:1:number", 5), ("items:1:age", 12), ("items:1:evicted", 3),
        ("items:1:evicted_time", 40), ("items:1:outofmemory", 0),
    )  # fmt: skip
    c = listing(
        ("items:1:number", 1), ("items:1:age", 7), ("items:1:evicted", 1),
        ("items:1:evicted_time", 9), ("items:1:outofmemory", 2),
    )  # fmt: skip
    got = values(groups.items([a, b, c]))
    assert got[b"items:1:number"] == b"8"
    assert got[b"items:1:age"] == b"30"
    assert got[b"items:1:evicted"] == b"4"
    # Nodes that evicted nothing say 0 ("never"), not "just now": only b and c count.
    assert got[b"items:1:evicted_time"] == b"9"
    assert got[b"items:1:outofmemory"] == b"3"
    assert values(groups.items([a]))[b"items:1:evicted_time"] == b"0"


def test_sizes_summed_per_size_in_order() -> None:
    a = listing(("96", 3), ("1024", 1))
    b = listing(("480", 2), ("96", 1))
    assert fields(groups.sizes([a, b])) == [(b"96", b"4"), (b"480", b"2"), (b"1024", b"1")]
    off = listing(("sizes_status", "disabled"))
    assert groups.sizes([off, off]) == off


def test_sizes_switch_is_the_nodes_own_lines_without_end() -> None:
    # Each node's reply: its answer to sizes_enable, then the `stats sizes` listing after it.
    enabled = b"STAT sizes_status enabled\r\nSTAT 64 1\r\nEND\r\n"
    assert groups.sizes_switch([enabled, b"STAT sizes_status enabled\r\nEND\r\n"]) == (
        b"STAT sizes_status enabled\r\n"
    )
    disabled = b"STAT sizes_status disabled\r\nSTAT sizes_status disabled\r\nEND\r\n"
    assert groups.sizes_switch([disabled]) == b"STAT sizes_status disabled\r\n"
    error = b"STAT sizes_status error\r\nSTAT sizes_error no_memory\r\nEND\r\n"
    ok = b"STAT sizes_status enabled\r\nEND\r\n"
    assert groups.sizes_switch([ok, error]) == (
        b"STAT sizes_status error\r\nSTAT sizes_error no_memory\r\n"
    )


def test_detail_dump_summed_per_prefix() -> None:
    a = b"PREFIX a get 2 hit 1 set 0 del 0\r\nPREFIX b get 0 hit 0 set 1 del 1\r\nEND\r\n"
    b = b"PREFIX b get 4 hit 4 set 0 del 0\r\nEND\r\n"
    assert groups.detail_dump([a, FAIL, b, b"END\r\n"]) == (
        b"PREFIX a get 2 hit 1 set 0 del 0\r\nPREFIX b get 4 hit 4 set 1 del 1\r\nEND\r\n"
    )


def test_cachedump_concatenated_with_one_end() -> None:
    a = b"ITEM k1 [1 b; 0 s]\r\nEND\r\n"
    b = b"ITEM k2 [2 b; 0 s]\r\nITEM k3 [3 b; 0 s]\r\nEND\r\n"
    assert groups.cachedump([a, b"END\r\n", b]) == (
        b"ITEM k1 [1 b; 0 s]\r\nITEM k2 [2 b; 0 s]\r\nITEM k3 [3 b; 0 s]\r\nEND\r\n"
    )


def test_no_listing_gives_the_first_nodes_error() -> None:
    usage = b"CLIENT_ERROR bad command line\r\n"
    assert groups.cachedump([usage, usage]) == usage
    assert groups.slabs([FAIL, FAIL]) == FAIL
    assert groups.items([]) == b"END\r\n"


def test_changes_answer_once_all_did_or_the_first_error() -> None:
    merge = groups.all_done(b"OK\r\n")
    assert merge([b"OK\r\n", b"OK\r\n"]) == b"OK\r\n"
    small = b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
    assert merge([b"OK\r\n", FAIL, small]) == FAIL
    assert merge([]) == b"OK\r\n"


def test_fleet_totals_next_to_the_proxys_own_counters() -> None:
    a = listing(
        ("pid", 10), ("uptime", 50), ("version", "1.6.18"), ("rusage_user", "0.100000"),
        ("get_hits", 3), ("curr_items", 4), ("limit_maxbytes", 67108864),
        ("accepting_conns", 1),
    )  # fmt: skip
    b = listing(
        ("pid", 11), ("uptime", 20), ("version", "1.6.18"), ("rusage_user", "0.250000"),
        ("get_hits", 5), ("curr_items", 6), ("limit_maxbytes", 67108864),
        ("accepting_conns", 0),
    )  # fmt: skip
    got = groups.fleet_totals([a, FAIL, b], own={b"get_hits", b"uptime", b"rusage_user"})
    assert got == [
        (b"fleet_nodes", b"3"), (b"fleet_nodes_failed", b"1"), (b"fleet_uptime", b"20"),
        (b"fleet_rusage_user", b"0.350000"), (b"fleet_get_hits", b"8"),
        (b"curr_items", b"10"), (b"limit_maxbytes", b"134217728"),
        (b"accepting_conns", b"0"),
    ]  # fmt: skip


def test_settings_maxbytes_summed_and_the_proxys_own_over_the_nodes() -> None:
    a = listing(("maxbytes", 100), ("maxconns", 1024), ("tcpport", 4000), ("chunk_size", 48))
    b = listing(("maxbytes", 200), ("maxconns", 1024), ("tcpport", 4001), ("chunk_size", 48))
    own = {b"maxconns": b"4096", b"tcpport": b"11211", b"binding_protocol": b"auto-negotiate"}
    assert fields(groups.settings([a, b], own)) == [
        (b"maxbytes", b"300"), (b"maxconns", b"4096"), (b"tcpport", b"11211"),
        (b"chunk_size", b"48"), (b"binding_protocol", b"auto-negotiate"),
    ]  # fmt: skip
    assert fields(groups.settings([FAIL], own))[0] == (b"maxbytes", b"0")

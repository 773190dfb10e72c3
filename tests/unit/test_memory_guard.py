"""The process budget's rules (memfleet.proxy.memory), the read flow's reasons
(memfleet.proxy.flow) and the reply estimate (memfleet.proxy.budget), on stand-ins: the
integration test test_memory_bounds drives them through real clients."""

from __future__ import annotations

from memfleet.logs import LimitEvents
from memfleet.proxy.budget import HINT_KEYS, SizeHints, learn
from memfleet.proxy.flow import BUDGET, WRITE, ReadFlow
from memfleet.proxy.limits import LimitCounters
from memfleet.proxy.memory import MemoryGuard

MiB = 1024 * 1024


class Client:
    def __init__(self, held: int, write_paused: bool = False) -> None:
        self.peer = ("127.0.0.1", held)
        self.held = held
        self.write_paused = write_paused
        self.paused = False
        self.dropped = False

    def memory_pause(self) -> None:
        self.paused = True

    def memory_resume(self) -> None:
        self.paused = False

    def drop(self, reply: bytes) -> None:
        self.dropped = True


def guard(clients: list[Client], limit: int) -> tuple[MemoryGuard, LimitCounters]:
    import logging

    counters = LimitCounters()
    g = MemoryGuard(lambda: limit, lambda: clients, counters, LimitEvents(logging.getLogger()))
    return g, counters


def test_under_the_limit_nothing_happens() -> None:
    clients = [Client(10 * MiB), Client(20 * MiB)]
    g, _counters = guard(clients, 64 * MiB)
    g.check()
    assert not any(c.paused or c.dropped for c in clients)
    assert g.held == 30 * MiB


def test_over_it_the_biggest_readers_pause_first_and_resume_below_three_quarters() -> None:
    small, mid, big = Client(4 * MiB), Client(30 * MiB), Client(40 * MiB)
    clients = [small, mid, big]
    g, counters = guard(clients, 64 * MiB)
    g.check()
    assert big.paused and mid.paused and not small.paused
    assert counters.memory_paused == 2 and counters.memory_dropped == 0
    big.held = 30 * MiB  # replies written: 64 MiB, not yet under 48
    g.check()
    assert big.paused
    big.held = mid.held = 10 * MiB
    g.check()
    assert not big.paused and not mid.paused


def test_clients_that_do_not_read_are_dropped_biggest_first() -> None:
    reader = Client(20 * MiB)
    sleeper = Client(50 * MiB, write_paused=True)
    napper = Client(10 * MiB, write_paused=True)
    g, counters = guard([reader, sleeper, napper], 64 * MiB)
    g.check()
    assert sleeper.dropped and not napper.dropped and not reader.dropped
    assert counters.memory_dropped == 1


def test_unsent_bytes_trigger_a_check_between_sweeps() -> None:
    sleeper = Client(100 * MiB, write_paused=True)
    g, _counters = guard([sleeper], 64 * MiB)
    g.unsent(1 * MiB)
    assert not sleeper.dropped  # under a sixteenth of the limit: no check yet
    g.unsent(4 * MiB)
    assert sleeper.dropped


class Transport:
    def __init__(self) -> None:
        self.reading = True

    def pause_reading(self) -> None:
        assert self.reading
        self.reading = False

    def resume_reading(self) -> None:
        assert not self.reading
        self.reading = True

    def is_closing(self) -> bool:
        return False


def test_reading_resumes_only_when_no_reason_holds() -> None:
    f = ReadFlow()
    t = Transport()
    f.transport = t  # type: ignore[assignment]
    assert f.pause(WRITE) and not t.reading
    assert f.pause(BUDGET) and not f.pause(BUDGET)
    assert f.resume(WRITE) and not t.reading
    assert f.resume(BUDGET) and t.reading
    assert not f.resume(BUDGET)


def test_the_estimate_learns_up_at_once_and_down_slowly() -> None:
    floor = 64 * 1024
    est = learn(floor, 500_000, floor)
    assert est == 500_000
    after = [est := learn(est, 100, floor) for _ in range(16)]
    assert after[0] > 450_000  # one small reply barely lowers it
    assert floor < after[-1] < 250_000
    for _ in range(200):
        est = learn(est, 100, floor)
    assert est == floor


def test_size_hints_keep_the_newest_keys() -> None:
    h = SizeHints()
    h.note_reply(b"VALUE big 0 5\r\nhello\r\nEND\r\n")
    assert h.sizes[b"big"] > 0
    for i in range(HINT_KEYS + 10):
        h.note(b"k%d" % i, 70_000)
    assert len(h.sizes) == HINT_KEYS and b"big" not in h.sizes and b"k0" not in h.sizes

"""What a start runs: the memcached command line, once the memory file is sized and
preallocated and its state file checked."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from memfleet.fleet.node.binary import memcached_version
from memfleet.fleet.node.memory_file import (
    MIB,
    MIN_MEMORY_FILE_MB,
    chown_files,
    preallocate,
    size_from_volume,
)
from memfleet.fleet.node.messages import NodeError, say
from memfleet.fleet.node.pins import pinned_options, write_pins
from memfleet.fleet.node.state_file import state_file, wait_past_stop_time
from memfleet.fleet.node.warm_start import check_restart_state

DEFAULT_MEMORY_MB = 64


@dataclass
class NodeOptions:
    """Everything ``memfleet node`` was told."""

    port: int = 11211
    listen: str = "127.0.0.1"
    memory: int | None = None
    memory_file: Path | None = None
    size_from_volume: bool = False
    restartable: bool = False
    user: str | None = None
    ready_file: Path | None = None
    stop_timeout: float = 60.0
    memcached: str | None = None
    extra: list[str] = field(default_factory=list)
    # --metrics HOST:PORT and where the node sits (labels of its metrics; "" = not given).
    metrics: str | None = None
    metrics_interval: float = 5.0
    pool: str = ""
    replica: str = ""
    shard: str = ""


@dataclass
class Plan:
    """The memcached command line and what to expect of the start."""

    argv: list[str]
    memory_mb: int
    warm_expected: bool


def plan_files(opts: NodeOptions, binary: str) -> Plan:
    """Sizing, preallocation and the state-file checks; the memcached argv."""
    memory = opts.memory
    if opts.memory_file is not None:
        opts.memory_file.parent.mkdir(parents=True, exist_ok=True)
        if opts.size_from_volume:
            vs = size_from_volume(opts.memory_file)
            if memory is not None and memory != vs.memory_mb:
                raise NodeError("--memory and --size-from-volume disagree; give one of them")
            memory = vs.memory_mb
            say(
                f"{opts.memory_file.parent}: volume {vs.total // MIB} MiB, reserve "
                f"{vs.reserve // MIB} MiB: -m {memory}"
            )
    elif opts.size_from_volume or opts.restartable:
        flag = "--size-from-volume" if opts.size_from_volume else "--restartable"
        raise NodeError(f"{flag} needs --memory-file")
    memory = memory or DEFAULT_MEMORY_MB
    argv = [binary, "-p", str(opts.port), "-l", opts.listen, "-m", str(memory)]
    if opts.memory_file is not None:
        argv += ["-e", str(opts.memory_file)]
    user = opts.user
    if user is None and os.geteuid() == 0:
        user = "root"  # memcached refuses to run as root without -u
    if user is not None and "-u" not in opts.extra and "--user" not in opts.extra:
        argv += ["-u", user]
    argv += opts.extra
    warm = False
    if opts.memory_file is not None:
        if memory < MIN_MEMORY_FILE_MB:
            say(f"warning: -m {memory} is below {MIN_MEMORY_FILE_MB} MB; memcached may refuse it")
        meta = state_file(opts.memory_file)
        if opts.restartable:
            pins = {"memcached": memcached_version(binary), "options": pinned_options(argv[1:])}
            decision = check_restart_state(opts.memory_file, pins)
            for note in decision.notes:
                say(note)
            warm = decision.warm_expected
            if warm:
                wait_past_stop_time(meta)
            write_pins(opts.memory_file, pins)
        elif meta.exists():
            # Without --restartable the cache is not meant to survive: never warm-start.
            meta.unlink()
        preallocate(opts.memory_file, memory)
        if opts.user is not None and os.geteuid() == 0:
            chown_files(opts.memory_file, opts.user)
    return Plan(argv, memory, warm)

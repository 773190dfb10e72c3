"""``memfleet node``: supervise one real memcached process.

The supervisor owns everything around memcached that memcached does not do itself:

- **memory files** (``-e PATH``): sized from the volume that holds them (``--size-from-volume``)
  and preallocated, so the cache never takes SIGBUS on a full volume;
- **restartable caches**: SIGTERM/SIGINT become memcached's graceful SIGUSR1 stop (which writes
  ``<file>.meta``); on start the state file is checked, because memcached 1.6.18 *aborts* on an
  empty, garbled or truncated one (measured: SIGABRT, and a heap corruption for a truncated
  file) and would crash-loop; the options that make a warm restart impossible are pinned in
  ``<file>.memfleet.json`` so that a change is reported as the reason the start is cold;
- **readiness**: "ready" is logged (and ``--ready-file`` touched) only once memcached answers
  ``version`` — a warm restart of a large cache takes seconds.

``memfleet node prepare`` does the root-only part (sizing, preallocation, state-file check,
ownership) for a Kubernetes init container.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import click

MIB = 1024 * 1024
INSTALL_HINT = "apt-get install -y memcached"
STATE_SUFFIX = ".meta"  # memcached's own name for the restart state file
PINS_SUFFIX = ".memfleet.json"
BAD_STATE_SUFFIX = ".meta.bad"  # one moved-aside copy is kept, for post-mortems
# memcached stores its state beside the memory file; with slab preallocation it needs one
# 1 MiB page per slab class (39 with the default -f/-n/-I), so less than this cannot start.
MIN_MEMORY_FILE_MB = 40
# Keys memcached 1.6 always writes into the state file; one missing means a truncated file.
REQUIRED_STATE_KEYS = ("maxbytes", "current_time", "stop_time", "mmap_oldbase")
_STATE_LINE = re.compile(rb"^(T[A-Za-z0-9_]+|K[A-Za-z0-9_]+ [^ \n]+)$")

# Options that change the memory layout: a warm restart with a different value is refused by
# memcached (it starts cold), so a change is pinned and reported.
_VALUE_OPTIONS = {
    "-m": "-m",
    "--memory-limit": "-m",
    "-I": "-I",
    "--max-item-size": "-I",
    "-n": "-n",
    "--slab-min-size": "-n",
    "-f": "-f",
    "--slab-growth-factor": "-f",
}
_FLAG_OPTIONS = {"-C": "-C", "--disable-cas": "-C"}
_SLAB_EXTENDED = ("slab_chunk_max", "slab_sizes", "slab_reassign", "no_slab_reassign", "modern")
_PIN_NAMES = {"-m": "-m (--memory)", "-I": "-I (max item size)", "-n": "-n", "-f": "-f"}

log_prefix = "memfleet node"


def say(message: str) -> None:
    """One log line on stderr (the supervisor's stdout is memcached's)."""
    click.echo(f"{log_prefix}: {message}", err=True)


class NodeError(Exception):
    """A problem the user can fix; ``str()`` is the one-line message, ``status`` the exit."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def find_memcached(explicit: str | None = None) -> str:
    """The memcached binary; NodeError naming the install command when it is missing."""
    candidate = explicit or shutil.which("memcached") or "/usr/bin/memcached"
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    raise NodeError(f"memcached not found ({candidate}); install it: {INSTALL_HINT}")


def memcached_version(binary: str) -> str:
    """``1.6.18`` from ``memcached -V`` (empty when it cannot be told)."""
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    parts = out.split()
    return parts[1] if len(parts) >= 2 else ""


# --- memory file sizing -------------------------------------------------------------------


def volume_reserve(total: int) -> int:
    """Bytes kept free on the volume: file-system overhead (1 %, at least 2 MiB: block
    bitmaps, journal, the directory) plus 1 MiB for the state file and the pin file."""
    return max(2 * MIB, total // 100) + MIB


@dataclass(frozen=True)
class VolumeSize:
    """What ``--size-from-volume`` computed."""

    total: int  # bytes of the file system holding the memory file
    reserve: int
    memory_mb: int  # the -m given to memcached


def size_from_volume(memory_file: Path) -> VolumeSize:
    """The usable cache size on the file system that holds (or will hold) ``memory_file``."""
    st = os.statvfs(memory_file.parent)
    total = st.f_blocks * st.f_frsize
    reserve = volume_reserve(total)
    mb = (total - reserve) // MIB
    if mb < 1:
        raise NodeError(f"{memory_file.parent}: volume of {total} bytes is too small for a cache")
    return VolumeSize(total, reserve, int(mb))


def preallocate(memory_file: Path, memory_mb: int) -> None:
    """Make ``memory_file`` exactly ``memory_mb`` MiB with every block allocated.

    Existing contents are kept (a warm restart needs them); a larger file is cut to size,
    which memcached would do anyway (and it will start cold then).
    """
    size = memory_mb * MIB
    fd = os.open(memory_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size > size:
            os.ftruncate(fd, size)
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno == 28:  # ENOSPC: say so now rather than SIGBUS later
                raise NodeError(f"{memory_file}: no space for {memory_mb} MB") from None
            # Some file systems (old NFS, some FUSE) cannot fallocate: size it sparsely.
            say(f"warning: {memory_file}: cannot preallocate ({exc.strerror}); sparse file")
            os.ftruncate(fd, size)
    finally:
        os.close(fd)


# --- the restart state file ---------------------------------------------------------------


def state_file(memory_file: Path) -> Path:
    """memcached's restart state file for a memory file."""
    return memory_file.with_name(memory_file.name + STATE_SUFFIX)


def pins_file(memory_file: Path) -> Path:
    """memfleet's pin file (warm-restart-relevant options) beside a memory file."""
    return memory_file.with_name(memory_file.name + PINS_SUFFIX)


def check_state_file(path: Path) -> str | None:
    """None when the state file looks like one memcached 1.6 wrote, else what is wrong.

    memcached aborts (SIGABRT) on an empty file, a line that is neither a tag nor a
    ``K<key> <value>`` pair, and on a truncated file, so every one of those is caught here.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not data:
        return "is empty"
    if not data.endswith(b"\n"):
        return "is truncated (no final newline)"
    lines = data[:-1].split(b"\n")
    if not lines[0].startswith(b"T"):
        return f"first line {lines[0][:40]!r} is not a tag"
    keys: dict[str, bytes] = {}
    for n, line in enumerate(lines, 1):
        if not _STATE_LINE.match(line):
            return f"line {n} {line[:40]!r} is not memcached's format"
        if line.startswith(b"K"):
            key, _, value = line[1:].partition(b" ")
            keys[key.decode()] = value
    missing = [k for k in REQUIRED_STATE_KEYS if k not in keys]
    if missing:
        return f"is truncated (no {', '.join(missing)})"
    return None


def state_stop_time(path: Path) -> int | None:
    """The ``stop_time`` a valid state file records (unix seconds)."""
    with contextlib.suppress(OSError):
        for line in path.read_bytes().splitlines():
            if line.startswith(b"Kstop_time "):
                with contextlib.suppress(ValueError):
                    return int(line.split()[1])
    return None


def move_aside(path: Path) -> Path:
    """Rename a state file out of memcached's way (one old copy is kept)."""
    target = path.with_name(path.name.removesuffix(STATE_SUFFIX) + BAD_STATE_SUFFIX)
    os.replace(path, target)
    return target


def pinned_options(argv: Sequence[str]) -> dict[str, str]:
    """The warm-restart-relevant options of a memcached command line, normalised to their
    short names (the last occurrence wins, as in memcached)."""
    pins: dict[str, str] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        tok = args[i]
        name, eq, inline = tok.partition("=")
        if tok in _FLAG_OPTIONS:
            pins[_FLAG_OPTIONS[tok]] = "true"
        elif name in _VALUE_OPTIONS and (eq or tok == name):
            if eq:
                pins[_VALUE_OPTIONS[name]] = inline
            elif i + 1 < len(args):
                pins[_VALUE_OPTIONS[name]] = args[i + 1]
                i += 1
        elif len(tok) > 2 and tok[:2] in ("-m", "-I", "-n", "-f") and not tok.startswith("--"):
            pins[tok[:2]] = tok[2:]
        elif tok in ("-o", "--extended") and i + 1 < len(args):
            for item in args[i + 1].split(","):
                key, _, value = item.partition("=")
                if key in _SLAB_EXTENDED:
                    pins[f"-o {key}"] = value or "true"
            i += 1
        i += 1
    return pins


def pin_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human reasons why ``new`` cannot restart warm from a cache written under ``old``."""
    reasons: list[str] = []
    if old.get("memcached") and new.get("memcached") and old["memcached"] != new["memcached"]:
        reasons.append(f"the memcached version changed ({old['memcached']} → {new['memcached']})")
    old_opts: dict[str, str] = old.get("options", {})
    new_opts: dict[str, str] = new.get("options", {})
    for key in sorted(set(old_opts) | set(new_opts)):
        before, after = old_opts.get(key, "default"), new_opts.get(key, "default")
        if before != after:
            reasons.append(f"{_PIN_NAMES.get(key, key)} changed ({before} → {after})")
    return reasons


@dataclass
class StateDecision:
    """What the start-up checks decided about the state file."""

    warm_expected: bool
    notes: list[str] = field(default_factory=list)


def check_restart_state(memory_file: Path, pins: dict[str, Any] | None) -> StateDecision:
    """Check the state file (and, with ``pins``, the pinned options); move a bad state file
    aside so memcached starts cold instead of aborting. Returns whether a warm start is
    expected; warnings go to the log."""
    meta = state_file(memory_file)
    if not meta.exists():
        note = "no state file: this start will be cold"
        if memory_file.exists():
            note += " (the last stop was not graceful, or this is the first start)"
        return StateDecision(False, [note])
    problem = check_state_file(meta)
    if problem is not None:
        moved = move_aside(meta)
        say(f"warning: state file {meta} {problem}; moved to {moved}; this start will be cold")
        return StateDecision(False)
    if pins is not None:
        old = _read_pins(pins_file(memory_file))
        reasons = pin_changes(old, pins) if old is not None else []
        if reasons:
            # memcached would refuse these too; moving the file makes the outcome certain.
            moved = move_aside(meta)
            why = "; ".join(reasons)
            say(f"this start will be cold because {why} (state file moved to {moved})")
            return StateDecision(False)
    return StateDecision(True, ["state file found: this start will be warm"])


def _read_pins(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_pins(memory_file: Path, pins: dict[str, Any]) -> None:
    """Record the options this start runs with (atomically)."""
    path = pins_file(memory_file)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def wait_past_stop_time(meta: Path, limit: float = 3.0) -> None:
    """memcached 1.6.18 rejects a state file whose ``stop_time`` is not in the past (it takes
    ``now - stop_time <= 0`` for a clock gone wrong and starts cold), so a restart within the
    same second as the stop would silently lose the cache. Wait that second out (bounded)."""
    stop = state_stop_time(meta)
    if stop is None:
        return
    deadline = time.monotonic() + limit
    while time.time() < stop + 1 and time.monotonic() < deadline:
        time.sleep(0.05)


# --- talking to memcached ------------------------------------------------------------------


def connect_host(listen: str) -> str:
    """Where the supervisor reaches memcached: the first -l address, wildcards as loopback."""
    host = listen.split(",")[0].strip()
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def ask(host: str, port: int, command: bytes, end: bytes, timeout: float = 1.0) -> bytes:
    """Send one command and read until ``end``; OSError when memcached does not answer."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(command)
        buf = b""
        while not buf.endswith(end):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf


def answers_version(host: str, port: int) -> str | None:
    """memcached's ``VERSION`` reply, or None while it does not answer."""
    try:
        reply = ask(host, port, b"version\r\n", b"\r\n")
    except OSError:
        return None
    return reply.decode(errors="replace").strip() if reply.startswith(b"VERSION ") else None


def item_count(host: str, port: int) -> int | None:
    """``curr_items`` from ``stats`` (None if it cannot be read)."""
    try:
        reply = ask(host, port, b"stats\r\n", b"END\r\n")
    except OSError:
        return None
    for line in reply.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == b"curr_items":
            return int(parts[2])
    return None


# --- the supervisor ------------------------------------------------------------------------


_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int) -> Callable[[], None]:
    """A preexec_fn asking Linux to send ``sig`` to the child when its parent dies, so a
    SIGKILLed supervisor never leaves an orphan memcached holding the port."""

    def setup() -> None:
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return setup


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


DEFAULT_MEMORY_MB = 64


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


def chown_files(memory_file: Path, owner: str) -> None:
    """Give the memory file, its state and pin files and their directory to ``owner``."""
    for path in (memory_file.parent, memory_file, state_file(memory_file), pins_file(memory_file)):
        if path.exists():
            shutil.chown(path, user=owner, group=_primary_group(owner))


def _primary_group(owner: str) -> int | None:
    import pwd

    try:
        return pwd.getpwnam(owner).pw_gid
    except KeyError:
        raise NodeError(f"--owner/--user: no such user {owner!r}") from None


class Supervisor:
    """Runs memcached, forwards stop signals, reports readiness, exits with its status."""

    def __init__(self, opts: NodeOptions) -> None:
        self.opts = opts
        self.proc: subprocess.Popen[bytes] | None = None
        self.stop_requested: float | None = None
        self.cold_reported = False

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop_requested is not None:
            return  # already stopping; a second Ctrl-C must not cut a graceful stop short
        self.stop_requested = time.monotonic()
        say(f"{signal.Signals(signum).name}: stopping")
        self._forward_stop()

    def _forward_stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return  # not started yet: run() forwards it right after the start
        graceful = self.opts.restartable
        sig = signal.SIGUSR1 if graceful else signal.SIGTERM
        say("graceful stop (SIGUSR1), saving the cache" if graceful else "stopping (SIGTERM)")
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)

    def _copy_stderr(self, stream: Any) -> None:
        # memcached's own messages pass through; "clean cache" means it decided to start cold.
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            if "starting with a clean cache" in line:
                self.cold_reported = True
            sys.stderr.write(line)
            sys.stderr.flush()

    def run(self) -> int:
        """Start memcached and supervise it until it exits; returns the exit status."""
        binary = find_memcached(self.opts.memcached)
        if self.opts.ready_file is not None:
            self.opts.ready_file.unlink(missing_ok=True)
        plan = plan_files(self.opts, binary)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        say("starting: " + " ".join(plan.argv))
        self.proc = subprocess.Popen(
            plan.argv, stderr=subprocess.PIPE, preexec_fn=die_with_parent(signal.SIGKILL)
        )
        copier = threading.Thread(target=self._copy_stderr, args=(self.proc.stderr,), daemon=True)
        copier.start()
        if self.stop_requested is not None:
            self._forward_stop()
        try:
            self._wait_ready(plan)
            status = self._wait_exit()
        finally:
            if self.proc.poll() is None:  # only on an internal error: never leave it behind
                self.proc.kill()
                self.proc.wait()
            if self.opts.ready_file is not None:
                self.opts.ready_file.unlink(missing_ok=True)
        copier.join(timeout=2)
        return status

    def _wait_ready(self, plan: Plan) -> None:
        assert self.proc is not None
        host = connect_host(self.opts.listen)
        started = last_note = time.monotonic()
        delay = 0.01
        while self.proc.poll() is None and self.stop_requested is None:
            version = answers_version(host, self.opts.port)
            if version is not None:
                items = item_count(host, self.opts.port)
                warm = plan.warm_expected and not self.cold_reported
                how = "warm restart" if warm else "cold start"
                detail = f", {items} items" if items is not None else ""
                say(
                    f"ready: {version.lower()} on {host}:{self.opts.port}, "
                    f"-m {plan.memory_mb} ({how}{detail}, {time.monotonic() - started:.1f}s)"
                )
                if self.opts.ready_file is not None:
                    self.opts.ready_file.parent.mkdir(parents=True, exist_ok=True)
                    self.opts.ready_file.write_text(f"{os.getpid()}\n")
                return
            if time.monotonic() - last_note > 10:
                last_note = time.monotonic()
                say("still waiting for memcached to answer version (loading a warm cache?)")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _wait_exit(self) -> int:
        assert self.proc is not None
        while True:
            try:
                rc = self.proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            since = self.stop_requested
            if since is not None and time.monotonic() - since > self.opts.stop_timeout:
                say(f"memcached did not stop within {self.opts.stop_timeout:g}s: SIGKILL")
                self.proc.kill()
        status = 128 - rc if rc < 0 else rc  # killed by signal N: 128+N, as a shell reports
        if self.stop_requested is None or rc != 0:
            say(f"memcached exited with status {status}")
        else:
            say("memcached stopped" + (" (state saved)" if self.opts.restartable else ""))
        return status


# --- prepare ---------------------------------------------------------------------------------


def prepare(
    memory_file: Path,
    memory: int | None,
    from_volume: bool,
    owner: str | None,
    restartable: bool,
) -> str:
    """The root-only start-up work for an init container; returns a one-line summary."""
    memory_file.parent.mkdir(parents=True, exist_ok=True)
    if from_volume:
        vs = size_from_volume(memory_file)
        memory = vs.memory_mb
    if memory is None:
        raise NodeError("give --memory MB or --size-from-volume")
    preallocate(memory_file, memory)
    state = "none"
    if restartable:
        meta = state_file(memory_file)
        if meta.exists():
            problem = check_state_file(meta)
            if problem is None:
                state = "ok"
            else:
                moved = move_aside(meta)
                say(f"warning: state file {meta} {problem}; moved to {moved}; next start is cold")
                state = "moved aside"
    else:
        state_file(memory_file).unlink(missing_ok=True)
    if owner is not None:
        chown_files(memory_file, owner)
    who = f", owner {owner}" if owner else ""
    return f"{memory_file}: -m {memory}, preallocated, state file: {state}{who}"


# --- command line ----------------------------------------------------------------------------


class _NodeGroup(click.Group):
    """``memfleet node [OPTIONS] [-- MEMCACHED ARGS]`` runs the supervisor; ``memfleet node
    prepare`` is the init-container step. Everything after ``--`` goes to memcached."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["memfleet.passthrough"] = args[cut + 1 :]
            args = args[:cut]
        return super().parse_args(ctx, args)


@contextlib.contextmanager
def _user_errors_exit() -> Iterator[None]:
    """A node's own errors and file errors end the command with one line, not a traceback."""
    try:
        yield
    except NodeError as exc:
        click.echo(f"memfleet: {exc}", err=True)
        sys.exit(exc.status)
    except OSError as exc:
        click.echo(f"memfleet: {exc.filename or ''}: {exc.strerror or exc}", err=True)
        sys.exit(1)


@click.group(
    "node", cls=_NodeGroup, invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)  # fmt: skip
@click.option("--port", type=click.IntRange(1, 65535), default=11211, show_default=True)
@click.option("--listen", default="127.0.0.1", show_default=True, help="memcached's -l.")
@click.option("--memory", type=click.IntRange(1), default=None, help="Cache size in MB (-m).")
@click.option(
    "--memory-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Keep the cache in this mmap'd file (memcached -e): PMEM, DAX, tmpfs.",
)  # fmt: skip
@click.option(
    "--size-from-volume", is_flag=True,
    help="Size the cache from the file system holding --memory-file (minus a reserve).",
)  # fmt: skip
@click.option(
    "--restartable", is_flag=True,
    help="Warm restarts: stop gracefully (SIGUSR1) on SIGTERM/SIGINT, check the state file.",
)  # fmt: skip
@click.option("--user", default=None, help="memcached's -u (default root when run as root).")
@click.option(
    "--ready-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Touched once memcached answers version; removed on exit.",
)  # fmt: skip
@click.option("--stop-timeout", type=click.FloatRange(0.1), default=60.0, show_default=True)
@click.option("--memcached", "memcached_bin", default=None, help="memcached binary to run.")
@click.pass_context
def node_group(
    ctx: click.Context,
    port: int,
    listen: str,
    memory: int | None,
    memory_file: Path | None,
    size_from_volume: bool,
    restartable: bool,
    user: str | None,
    ready_file: Path | None,
    stop_timeout: float,
    memcached_bin: str | None,
) -> None:
    """Supervise one memcached (extra memcached arguments after --)."""
    if ctx.invoked_subcommand is not None:
        return
    opts = NodeOptions(
        port=port,
        listen=listen,
        memory=memory,
        memory_file=memory_file.absolute() if memory_file else None,
        size_from_volume=size_from_volume,
        restartable=restartable,
        user=user,
        ready_file=ready_file,
        stop_timeout=stop_timeout,
        memcached=memcached_bin,
        extra=list(ctx.meta.get("memfleet.passthrough", [])),
    )
    with _user_errors_exit():
        status = Supervisor(opts).run()
    sys.exit(status)


@node_group.command("prepare")
@click.option(
    "--memory-file", type=click.Path(dir_okay=False, path_type=Path), required=True,
    help="The memory file the node will use.",
)  # fmt: skip
@click.option("--memory", type=click.IntRange(1), default=None, help="Cache size in MB.")
@click.option("--size-from-volume", is_flag=True, help="Size from the file system.")
@click.option("--owner", default=None, help="User to give the files to (e.g. memcache).")
@click.option(
    "--restartable/--not-restartable", default=True, show_default=True,
    help="Keep a valid state file (else remove it).",
)  # fmt: skip
def prepare_cmd(
    memory_file: Path,
    memory: int | None,
    size_from_volume: bool,
    owner: str | None,
    restartable: bool,
) -> None:
    """Size, preallocate, check the state file and chown (for an init container)."""
    with _user_errors_exit():
        summary = prepare(memory_file.absolute(), memory, size_from_volume, owner, restartable)
    say(f"prepared {summary}")


if __name__ == "__main__":  # pragma: no cover
    # `python -m memfleet.fleet.node` is `memfleet node` without importing the proxy, the route tree
    # and pydantic: `memfleet up` starts one supervisor per node, so start-up cost adds up.
    node_group(prog_name="memfleet node")

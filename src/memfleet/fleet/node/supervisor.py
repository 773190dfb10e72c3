"""The supervisor: runs memcached, turns SIGTERM/SIGINT into its (graceful) stop, reports
readiness once it answers, and exits with its status."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from memfleet.fleet.node.binary import find_memcached
from memfleet.fleet.node.messages import say
from memfleet.fleet.node.plan import NodeOptions, Plan, plan_files
from memfleet.fleet.node.probe import answers_version, connect_host, item_count
from memfleet.fleet.processes import die_with_parent

if TYPE_CHECKING:
    from memfleet.fleet.node.exporter import NodeMetricsServer
    from memfleet.fleet.node.stats_poller import StatsPoller


class Supervisor:
    """Runs memcached, forwards stop signals, reports readiness, exits with its status."""

    def __init__(self, opts: NodeOptions) -> None:
        self.opts = opts
        self.proc: subprocess.Popen[bytes] | None = None
        self.stop_requested: float | None = None
        self.cold_reported = False
        self.poller: StatsPoller | None = None
        self._metrics: NodeMetricsServer | None = None

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
        if self.opts.metrics is not None:
            self._bind_metrics(self.opts.metrics)  # a taken port fails before memcached runs
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
            if self.poller is not None and self._metrics is not None:
                # Served from the start: a warm restart in progress shows as "not up yet".
                self.poller.start()
                self._metrics.start()
            self._wait_ready(plan)
            status = self._wait_exit()
        finally:
            if self.proc.poll() is None:  # only on an internal error: never leave it behind
                self.proc.kill()
                self.proc.wait()
            if self.opts.ready_file is not None:
                self.opts.ready_file.unlink(missing_ok=True)
            if self._metrics is not None:
                self._metrics.close()
            if self.poller is not None:
                self.poller.stop()
        copier.join(timeout=2)
        return status

    def _bind_metrics(self, listen: str) -> None:
        # Imported here: prometheus-client is only loaded by nodes that export metrics
        # (`memfleet up` starts one supervisor per node, so start-up cost adds up).
        from memfleet.fleet.node.exporter import NodeLabels, NodeMetricsServer, parse_listen
        from memfleet.fleet.node.stats_poller import StatsPoller

        opts = self.opts
        host, port = parse_listen(listen)
        self.poller = StatsPoller(connect_host(opts.listen), opts.port, opts.metrics_interval)
        labels = NodeLabels(opts.pool, opts.replica, opts.shard)
        self._metrics = NodeMetricsServer(self.poller, labels, self._memcached_running)
        bound_host, bound_port = self._metrics.bind(host, port)
        every = f"{opts.metrics_interval:g}s"
        say(f"metrics on http://{bound_host}:{bound_port}/metrics (stats polled every {every})")

    def _memcached_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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

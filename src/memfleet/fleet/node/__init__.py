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

One module per job: :mod:`.binary` (finding memcached), :mod:`.memory_file` (sizing,
preallocation, ownership), :mod:`.state_file` (memcached's ``.meta`` file), :mod:`.pins` (the
pinned options), :mod:`.warm_start` (whether a start can be warm), :mod:`.plan` (the memcached
command line), :mod:`.probe` (asking memcached), :mod:`.supervisor` (running it, forwarding
signals), :mod:`.prepare` (the init-container step), :mod:`.stats_poller` and :mod:`.exporter`
(``--metrics``: one poller of memcached's ``stats``, served as Prometheus metrics) and
:mod:`.command` (the click commands).
``python -m memfleet.fleet.node`` is ``memfleet node`` without importing the proxy, the route
tree and pydantic: ``memfleet up`` starts one supervisor per node, so start-up cost adds up.
"""

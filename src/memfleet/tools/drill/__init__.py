"""``memfleet drill``: a fault drill per topology, with a per-second report, a summary and a plot.

For each topology the drill

1. starts it with ``memfleet up --port 0 --state-file ...`` (a subprocess; ``--hosts`` for the
   host faults, ``--persistence restartable`` for ``restart-node`` so the node comes back warm);
2. warms it: writes ``--keys`` known keys (``drill:k:<i>``) through the proxy;
3. runs the bench workload against the proxy for ``--duration`` seconds: gets of the warmed
   keys and, by ``--ratio``, sets of *other* keys (``drill:w:<i>``), so the warmed set is
   never rewritten and what is lost can be counted exactly;
4. injects the fault at 30% of the run on one node of the cluster tier (or its host) and heals
   it at 60%;
5. reads every warmed key back once the run is over: a key that is missing or holds another
   value is lost.

Faults: ``kill-node`` (SIGKILL of the node's memcached, healed by ``memfleet up`` restarting
it, empty), ``hang-node`` (SIGSTOP, healed by SIGCONT), ``restart-node`` (a graceful stop of
the node and its restart, warm), ``kill-host`` / ``cut-host`` (``memfleet fault`` on the node's
simulated host; needs ``memfleet up --hosts``, i.e. Linux and root — skipped otherwise),
``scale-out`` / ``scale-in`` (the fleet resized by ``memfleet scale`` under the load, with the
proxy's migration window and, with ``--baseline``, again with it off: :mod:`.scale`).

One module per job: :mod:`.options` (the faults and settings), :mod:`.fleet_process` (``memfleet
up`` as a subprocess), :mod:`.faults` (the victim and the injector thread), :mod:`.verify`
(reading the warmed keys back), :mod:`.summary` (per-second points and the summary row),
:mod:`.runner` (one topology, then all of them), :mod:`.report` (the tables and the JSON
document) and :mod:`.plot` (the PNG). The click command is in :mod:`memfleet.cli.drill`.
"""

"""``memfleet bench``: a multiprocess memcached load generator with latency percentiles.

Each worker process drives its share of the connections with non-blocking sockets and a
selector: a connection sends ``--pipeline`` requests in one write (gets and sets mixed by
``--ratio``), waits for all their replies, and sends the next batch (a closed loop, optionally
paced to ``--rate``). Every reply is parsed, so hits, misses and errors are counted exactly;
latency is measured per batch (send of the batch to its last reply byte; with ``--pipeline 1``
that is per request) into a log-bucketed histogram (2% resolution), so memory stays bounded
however long the run.

Workers report one sample per second of the run; the parent merges them into a per-second
time series (the drill plots it) and a total, and shows live progress.

Keys are ``<prefix><index>`` for ``index`` in ``0..keys-1``; the value of a key depends only on
its index, so a reader can check what it gets against what was written.

Only loopback targets are accepted: this is a tool for a fleet on this machine.

One module per job: :mod:`.workload` (target, keys, values, the run's settings),
:mod:`.latency` (the histogram and its percentiles), :mod:`.sample` (one second's counts),
:mod:`.replies` (counting replies), :mod:`.worker` (one worker process's loop),
:mod:`.runner` (forking the workers, merging their samples), :mod:`.preload` (storing every
key first), :mod:`.report` (the JSON document and the text summary) and :mod:`.progress` (the
live line on a terminal). The click command is in :mod:`memfleet.cli.bench`.
"""

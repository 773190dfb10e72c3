"""``memfleet up``: a whole distributed cache on this machine, and ``memfleet status``.

Every cache node of a topology runs under the node supervisor (``memfleet node``, started as
``python -m memfleet.fleet.node`` so that it does not import the proxy) on a free loopback port, in
its own process group (so a Ctrl-C in the terminal reaches only ``up``, which then stops things
in order: the proxy first, then the nodes, restartable nodes gracefully). The proxy config is
written into the data directory and the proxy is started on ``--port``. If ``up`` itself is
killed, Linux's parent-death signal still gives every child a SIGTERM, so a restartable node
saves its cache even then.

With ``--hosts K`` (Linux, root) the nodes live in K network namespaces, see
:mod:`memfleet.fleet.hosts`.

One module per job: :mod:`.layout` (the nodes a topology or a config file needs, and their
proxy config), :mod:`.options` (what ``up`` was told), :mod:`.ports` (free loopback ports),
:mod:`.nodes` (placing and starting the node supervisors), :mod:`.proxy_process` (starting
the proxy), :mod:`.state` (the state file and its table), :mod:`.lifecycle` (start, watch,
stop), and ``memfleet scale``: :mod:`.scale_plan` (what a resize adds and retires),
:mod:`.scaling` (the resize inside ``up``, in the safe order) and :mod:`.scale_client` (the
command's side). The click commands are in :mod:`memfleet.cli.fleet`,
:mod:`memfleet.cli.fleet_ops` and :mod:`memfleet.cli.fleet_scale`.
"""

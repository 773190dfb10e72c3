"""Admin commands over the fleet: ``stats`` and its groups, ``verbosity``,
``cache_memlimit``, answered the way one memcached holding the whole fleet would answer them.

``answer`` decides, per command, what is the proxy's own (``stats proxy``, ``stats
backends``), what is asked of every backend the route tree reaches and merged
(``memfleet.proxy.admin.groups``: one rule per field), what is sent to every backend with one
reply once all have answered, and what is asked of one node by name (``stats @HOST:PORT
<group>``). Every answer comes back through ``cb(token, reply)``, at once or once the nodes
have answered, so it keeps its place among the client's replies.
"""

from memfleet.proxy.admin.fleet import answer

__all__ = ["answer"]

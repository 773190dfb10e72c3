"""Backends: one memcached server each, its pipelined connections, health and rejoin journal,
and the pools that place keys over them."""

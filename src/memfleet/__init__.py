"""memfleet: memcached as a distributed cache, with a memcached-protocol routing proxy."""

__version__ = "0.1.0"

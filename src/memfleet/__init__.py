"""memfleet: memcached as a distributed cache, with a memcached-protocol routing proxy."""

from memfleet._loader import choose as _choose_implementation
from memfleet._loader import is_compiled

__version__ = "0.1.0"
__all__ = ["__version__", "is_compiled"]

_choose_implementation()

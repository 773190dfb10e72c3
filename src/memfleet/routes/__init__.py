"""Route handlers: small composable objects that decide where a request goes."""

from memfleet.routes.allsync import AllSync
from memfleet.routes.base import ReplyCallback, Route
from memfleet.routes.builder import build_pools, build_routes
from memfleet.routes.command import CommandRoute
from memfleet.routes.failover import Failover, ZFailover
from memfleet.routes.fanout import AllAsync, AllFastest, Split
from memfleet.routes.misc import NullRoute, PrefixRoute, RandomRoute
from memfleet.routes.modify import TTLRoute
from memfleet.routes.pool import PoolRoute

__all__ = [
    "AllAsync",
    "AllFastest",
    "AllSync",
    "CommandRoute",
    "Failover",
    "NullRoute",
    "PoolRoute",
    "PrefixRoute",
    "RandomRoute",
    "ReplyCallback",
    "Route",
    "Split",
    "TTLRoute",
    "ZFailover",
    "build_pools",
    "build_routes",
]

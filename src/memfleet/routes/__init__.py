"""Route handlers: small composable objects that decide where a request goes."""

from memfleet.routes.base import ReplyCallback, Route
from memfleet.routes.builder import build_routes
from memfleet.routes.command import CommandRoute
from memfleet.routes.pool import PoolRoute

__all__ = ["CommandRoute", "PoolRoute", "ReplyCallback", "Route", "build_routes"]

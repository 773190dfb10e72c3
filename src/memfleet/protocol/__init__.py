"""Sans-IO memcached protocol codec: bytes in, requests and framed replies out. No sockets."""

from memfleet.protocol.parse import RequestParser
from memfleet.protocol.requests import Kind, Reply, Request
from memfleet.protocol.responses import ResponseFramer

__all__ = ["Kind", "Reply", "Request", "RequestParser", "ResponseFramer"]

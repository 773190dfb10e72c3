"""memcached's binary protocol on the client side, in three modules:

- ``packets``: constants, the ``BinaryRequest`` record, response packets with memcached's texts;
- ``parse``: the sans-IO ``BinaryParser`` (bytes in, ``BinaryRequest`` out, framed exactly as
  memcached 1.6 frames them, bounded, never raising on garbage);
- ``translate``: each binary request into the internal ``Request`` the route tree takes (meta
  for the backends; its table of translations is there), and each reply back into the binary
  response memcached would send.
"""

from memfleet.protocol.binary.packets import (
    DEFAULT_MAX_ITEM_SIZE,
    HEADER_SIZE,
    MAX_KEY_LENGTH,
    NO_AUTO_CREATE,
    QUIET_OF,
    REQUEST_MAGIC,
    RESPONSE_MAGIC,
    STATUS_TEXT,
    Action,
    BinaryRequest,
    Op,
    Status,
    error,
    response,
)
from memfleet.protocol.binary.parse import BinaryParser
from memfleet.protocol.binary.translate import (
    meta_key,
    stats_response,
    translate,
    translate_reply,
    unlink_request,
)

__all__ = [
    "DEFAULT_MAX_ITEM_SIZE", "HEADER_SIZE", "MAX_KEY_LENGTH", "NO_AUTO_CREATE", "QUIET_OF",
    "REQUEST_MAGIC", "RESPONSE_MAGIC", "STATUS_TEXT", "Action", "BinaryParser", "BinaryRequest",
    "Op", "Status", "error", "meta_key", "response", "stats_response", "translate",
    "translate_reply", "unlink_request",
]  # fmt: skip

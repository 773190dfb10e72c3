"""Reply lines the proxy writes itself, preformatted once (memcached's exact wording)."""

from __future__ import annotations

ERROR = b"ERROR\r\n"
BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
BAD_CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
BAD_EXPTIME = b"CLIENT_ERROR invalid exptime argument\r\n"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"
LINE_TOO_LONG = b"CLIENT_ERROR line too long\r\n"
BACKEND_FAILURE = b"SERVER_ERROR backend failure\r\n"
END = b"END\r\n"
OK = b"OK\r\n"
MN = b"MN\r\n"
RESET = b"RESET\r\n"
STORED = b"STORED\r\n"
UNAUTHENTICATED = b"CLIENT_ERROR unauthenticated\r\n"
AUTH_FAILURE = b"CLIENT_ERROR authentication failure\r\n"
BAD_AUTH_TOKEN = b"CLIENT_ERROR bad authentication token format\r\n"
DENIED = b"CLIENT_ERROR command not allowed by the proxy\r\n"


def binary_refusal(opcode: int, opaque: bytes) -> bytes:
    """A binary-protocol "unknown command" response, so a binary client sees a clear error.

    The text protocol would be gibberish to such a client; a well-formed binary error packet
    (status 0x0081) carrying a message is something its library can report.
    """
    body = b"binary protocol is not supported by this proxy"
    header = (
        bytes([0x81, opcode & 0xFF, 0, 0, 0, 0, 0x00, 0x81])
        + len(body).to_bytes(4, "big")
        + opaque[:4].ljust(4, b"\0")
        + bytes(8)
    )
    return header + body

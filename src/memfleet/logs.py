"""Log output: plain text or one JSON object per line, and a rate limit for noisy events.

Events that matter carry ``extra={"event": ..., ...}`` fields (``backend_down``,
``backend_up``, ``reload_ok``, ``reload_refused``, ``client_protocol_error``,
``rate_limited``...). The text format shows the message as it always was; the JSON format
adds the fields, so a log pipeline can select on ``event`` instead of parsing messages.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single line of JSON."""
        doc: dict[str, Any] = {
            "ts": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(level: str, fmt: str = "text") -> None:
    """Configure the root logger on stderr in ``text`` or ``json`` format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


def peer_text(peer: Any) -> str:
    """``host:port`` of a socket peer (whatever asyncio gave: a tuple, a string, None)."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


class RateLimitedLog:
    """Logs an event at most ``burst`` times per ``interval`` seconds; the lines dropped are
    counted and reported in one ``rate_limited`` line when logging resumes, so a client
    sending garbage in a loop cannot fill the disk or slow the proxy down."""

    def __init__(
        self, logger: logging.Logger, event: str, burst: int = 10, interval: float = 10.0
    ) -> None:
        self.logger = logger
        self.event = event
        self.burst = burst
        self.interval = interval
        self._window = 0.0
        self._count = 0
        self.suppressed = 0  # lines dropped in the current window
        self.suppressed_total = 0

    def emit(self, peer: Any, detail: bytes) -> None:
        """One client protocol error from ``peer``; ``detail`` is the reply it was sent."""
        now = time.monotonic()
        if now - self._window >= self.interval:
            if self.suppressed:
                self.logger.warning(
                    "rate-limited: %d %s line(s) suppressed in the last %gs",
                    self.suppressed, self.event, self.interval,
                    extra={"event": "rate_limited", "suppressed": self.suppressed,
                           "what": self.event},
                )  # fmt: skip
            self._window = now
            self._count = 0
            self.suppressed = 0
        if self._count >= self.burst:
            self.suppressed += 1
            self.suppressed_total += 1
            return
        self._count += 1
        reply = detail.strip().decode(errors="replace")[:200]
        self.logger.info(
            "client %s protocol error: %s", peer_text(peer), reply,
            extra={"event": self.event, "peer": peer_text(peer), "reply": reply},
        )  # fmt: skip


class LimitEvents:
    """Logs limit hits: at most one line per kind of limit per interval, with a count of
    what it hid (a flood of bad clients must not become a flood of log lines). Each line
    carries ``event=limit_<kind>`` for the JSON log format."""

    def __init__(self, logger: logging.Logger, interval: float = 1.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._hidden: dict[str, int] = {}

    def warning(self, kind: str, msg: str, *args: object) -> None:
        """Log ``msg`` unless a ``kind`` line was logged less than ``interval`` ago."""
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) < self.interval:
            self._hidden[kind] = self._hidden.get(kind, 0) + 1
            return
        hidden = self._hidden.pop(kind, 0)
        self._last[kind] = now
        suffix = f" ({hidden} more like it since the last line)" if hidden else ""
        self.logger.warning(
            msg + suffix, *args, extra={"event": f"limit_{kind}", "suppressed": hidden}
        )

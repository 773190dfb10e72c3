"""The config hash: one short digest of what a proxy serves, the same wherever it is computed.

`memfleet render` annotates the ConfigMap with it and every proxy reports the one it loaded
(stats, metrics, ``/readyz``), so a fleet whose proxies serve different configs shows it. It is
taken over the validated model, not the file's bytes: comments, key order and YAML spelling do
not change it, any value that changes behaviour does.
"""

from __future__ import annotations

import hashlib
import json

from memfleet.config.model import ProxyConfig

# 12 hex digits (48 bits): enough to tell a fleet's few configs apart, short enough to read.
HASH_LENGTH = 12


def config_hash(config: ProxyConfig) -> str:
    """The config's digest: SHA-256 of its canonical JSON form, first 12 hex digits."""
    canonical = json.dumps(
        config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:HASH_LENGTH]

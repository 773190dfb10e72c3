"""Config validation: one line naming file, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from memfleet.config import ConfigError, load_config, parse_config, parse_hostport

GOOD = """
pools:
  main:
    backends: ["127.0.0.1:21211", "127.0.0.1:21212"]
    seed: replica_0
routes:
  default: main
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "proxy.yaml"
    p.write_text(text)
    return p


def test_good_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.pools["main"].seed == "replica_0"
    assert cfg.pools["main"].read_timeout == 1.0
    assert cfg.listen == "127.0.0.1:11211"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace('"127.0.0.1:21212"', '"127.0.0.1:21212", "host:abc"'),
            "pools.main.backends[2]: 'host:abc' is not HOST:PORT",
        ),
        (
            GOOD.replace("default: main", "default: nope"),
            "routes.default: unknown pool or route 'nope'",
        ),
        (GOOD.replace("default: main", "get: main"), "a 'default' route is required"),
        (
            GOOD + "deny_commands: [flush_all, gat]\n",
            "deny_commands[1]: 'gat' is a command, not an effect (gat does read + touch)",
        ),
        (GOOD.replace("seed: replica_0", "timeout: 3"), "pools.main.timeout: unknown field"),
        (
            GOOD.replace("seed: replica_0", "read_timeout: -1"),
            "pools.main.read_timeout: Input should be greater than 0",
        ),
        (GOOD.replace("default: main", "frobnicate: main\n  default: main"), "routes.frobnicate"),
        ("pools: [\n", "proxy.yaml: line"),
        ("- a\n- b\n", "must hold a mapping"),
        ("routes: {default: main}\n", "pools: is required"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text))
    line = str(exc.value)
    assert "\n" not in line
    assert line.startswith(str(tmp_path / "proxy.yaml"))
    assert message in line


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("[::1]:11211", ("::1", 11211)),
        ("a.b:65535", ("a.b", 65535)),
    ],
)
def test_hostport(value: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(value) == expected


@pytest.mark.parametrize("value", ["", "host", "host:", ":1", "h:0", "h:65536", "h:x"])
def test_bad_hostport(value: str) -> None:
    with pytest.raises(ValueError):
        parse_hostport(value)


def test_max_pending_bytes_is_the_old_name_of_max_client_bytes() -> None:
    base = {"pools": {"main": {"backends": ["127.0.0.1:1"]}}, "routes": {"default": "main"}}
    cfg = parse_config({**base, "limits": {"max_pending_bytes": 1 << 20}}, "proxy.yaml")
    assert cfg.limits.max_client_bytes == 1 << 20
    with pytest.raises(ConfigError, match=r"proxy.yaml: limits: .*one setting"):
        parse_config(
            {**base, "limits": {"max_pending_bytes": 1 << 20, "max_client_bytes": 1 << 20}},
            "proxy.yaml",
        )
    with pytest.raises(ConfigError, match=r"proxy.yaml: limits: max_memory .* below"):
        parse_config(
            {**base, "limits": {"max_memory": 8 << 20, "max_client_bytes": 16 << 20}},
            "proxy.yaml",
        )

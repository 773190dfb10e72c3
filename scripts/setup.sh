#!/usr/bin/env bash
# Installs what memfleet needs on a Debian/Ubuntu machine: memcached from the distribution,
# and memfleet with its dev tools into ./.venv. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v memcached >/dev/null 2>&1 || need_apt+=(memcached)
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3-venv)
# A C compiler and Python's headers let setup.py compile the proxy's hot path with mypyc
# (without them memfleet installs as pure Python, which works but is slower).
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || need_apt+=(python3-dev)
# pylibmc (a dev dependency: the binary-protocol client tests) builds against libmemcached.
[ -e /usr/include/libmemcached/memcached.h ] || need_apt+=(libmemcached-dev)
# promtool and prometheus: the alert rules' unit tests and the real-Prometheus test. Without
# its recommends (the node exporter and friends are not needed).
need_apt_bare=()
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || need_apt_bare+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ] || [ ${#need_apt_bare[@]} -gt 0 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    if [ ${#need_apt[@]} -gt 0 ]; then
        "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
    fi
    if [ ${#need_apt_bare[@]} -gt 0 ]; then
        "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need_apt_bare[@]}" >/dev/null
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'

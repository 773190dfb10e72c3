#!/usr/bin/env bash
# Installs what memfleet needs on a Debian/Ubuntu machine: memcached from the distribution,
# and memfleet with its dev tools into ./.venv. Idempotent. Says what it does as it goes.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "setup: $*" >&2; }

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
# Debian's chromium: the status page's browser test (tests/integration/test_status_page.py).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ] || [ ${#need_apt_bare[@]} -gt 0 ]; then
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    step "apt-get update"
    "${sudo_cmd[@]}" apt-get update -qq
    if [ ${#need_apt[@]} -gt 0 ]; then
        step "apt-get install ${need_apt[*]} (a minute or two the first time)"
        "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
    fi
    if [ ${#need_apt_bare[@]} -gt 0 ]; then
        step "apt-get install --no-install-recommends ${need_apt_bare[*]}"
        "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need_apt_bare[@]}" >/dev/null
    fi
else
    step "Debian packages: all there (memcached, gcc, python3-dev, libmemcached-dev, prometheus, chromium)"
fi

if [ ! -x .venv/bin/python ]; then
    step "creating .venv"
    python3 -m venv .venv
fi
step "upgrading pip in .venv"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
case "${MEMFLEET_COMPILE:-auto}" in
    0) how="pure Python (MEMFLEET_COMPILE=0)" ;;
    *) how="compiling the hot path with mypyc: about a minute" ;;
esac
step "installing memfleet and its dev tools into .venv ($how)"
.venv/bin/python -m pip install -q -e '.[dev]'
hot=$(.venv/bin/python -c 'import memfleet; print("compiled" if memfleet.is_compiled() else "pure Python")')
step "done: $(.venv/bin/memfleet --version)"
step "run it as .venv/bin/memfleet, or put it on this shell's PATH: source .venv/bin/activate"
[ "$hot" = compiled ] || step "note: the hot path runs as pure Python (slower; see README, Performance)"

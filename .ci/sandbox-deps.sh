#!/usr/bin/env bash
# Install what the sandbox's isolation layers need (Debian + pip), then optionally run the
# sandbox test suite as an unprivileged user too.
#
#   bash .ci/sandbox-deps.sh            # install: bubblewrap (fs_hidden), libseccomp + pyseccomp (seccomp)
#   bash .ci/sandbox-deps.sh --user-tests   # also run tests/test_sandbox_*.py as user 'mxsandbox'
#
# Without these packages the sandbox still runs with isolation=auto and lists the missing layers
# in every result; isolation=strict refuses to start.
set -euo pipefail

if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    if ! command -v bwrap >/dev/null || ! ldconfig -p | grep -q libseccomp.so.2; then
        apt-get update -qq
        apt-get install -y -qq bubblewrap libseccomp2 >/dev/null
    fi
fi
python -m pip install -q "pyseccomp>=0.1.2"

if [ "${1:-}" = "--user-tests" ]; then
    user=mxsandbox
    id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
    # The interpreter may live under /root (pyenv); let the user traverse to it (x only, no listing).
    py_real="$(python -c 'import os, sys; print(os.path.realpath(sys.executable))')"
    case "$py_real" in /root/*) chmod o+x /root ;; esac
    repo="$(cd "$(dirname "$0")/.." && pwd)"
    runuser -u "$user" -- env -C "$repo" PYTHONPATH=src PYTHONDONTWRITEBYTECODE=1 \
        "$py_real" -m pytest tests/test_sandbox_*.py -q -p no:cacheprovider
fi

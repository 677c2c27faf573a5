#!/usr/bin/env bash
# Install what the report test needs: Debian's chromium, to render `metaagentx report` output
# headless and check the screenshot (tests/test_eval_report.py skips, with a reason, without it).
#
#   bash .ci/report-deps.sh
#
# Idempotent: does nothing when chromium (or chromium-browser) is already on PATH. Needs root
# (apt-get); as another user it only says what is missing.
set -euo pipefail

if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "report-deps: chromium is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
chromium --version

#!/usr/bin/env bash
# Headless Chromium drives the dashboard (#17) of a real gateway started with an API key; the
# test starts its own real webhook receiver (see .ci/dashboard_test.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi
VENV=target/ci-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import selenium' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "selenium==4.51.0"
fi
. .ci/gateway.sh
GW="$GW" KEY="$KEY" SHOTS=target "$VENV/bin/python" .ci/dashboard_test.py

#!/usr/bin/env bash
# Headless Chromium drives the dashboard (#17) of a real gateway started with an API key; the
# test starts its own real webhook receiver (see .ci/dashboard_test.py).
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/browser-env.sh
GW="$GW" KEY="$KEY" SHOTS=target "$VENV/bin/python" .ci/dashboard_test.py


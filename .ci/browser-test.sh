#!/usr/bin/env bash
# Headless Chromium drives the Swagger UI of a real gateway started with an API key.
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
curl -fsS -H "X-Api-Key: $KEY" -H 'content-type: application/json' \
  -XPOST "$GW/api/sessions" -d '{"name":"default"}' >/dev/null
GW="$GW" KEY="$KEY" SHOT=target/swagger-ui.png "$VENV/bin/python" .ci/browser_test.py

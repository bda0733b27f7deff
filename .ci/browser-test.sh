#!/usr/bin/env bash
# Headless Chromium drives the Swagger UI of a real gateway started with an API key.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/browser-env.sh
curl -fsS -H "X-Api-Key: $KEY" -H 'content-type: application/json' \
  -XPOST "$GW/api/sessions" -d '{"name":"default"}' >/dev/null
GW="$GW" KEY="$KEY" SHOT=target/swagger-ui.png "$VENV/bin/python" .ci/browser_test.py

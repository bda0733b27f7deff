#!/usr/bin/env bash
# Schemathesis against the served /openapi.json of a real gateway (release binary, temp dir, API
# key): every operation, positive and negative data, every check; fails on any finding.
# Bounded for 2 cores: SCHEMATHESIS_MAX_EXAMPLES (default 30) per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/ci-venv
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==4.32.5" "selenium==4.51.0"
fi
. .ci/gateway.sh

# Something to act on: the session `default`, one of its groups and one of its communities.
H=(-H "X-Api-Key: $KEY" -H "content-type: application/json")
curl -fsS "${H[@]}" -XPOST "$GW/api/sessions" -d '{"name":"default"}' >/dev/null
GROUP="$(curl -fsS "${H[@]}" -XPOST "$GW/api/default/groups" \
  -d '{"name":"Team","participants":[{"id":"22222222222@c.us"},{"id":"33333333333@c.us"}]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
COMMUNITY="$(curl -fsS "${H[@]}" -XPOST "$GW/api/default/communities" \
  -d '{"name":"Street","participants":[{"id":"22222222222@c.us"}]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"

# 422 is the contract's answer (as WAHA) for a session that does not exist or is not WORKING:
# schema-valid requests meet it for random session names and after the run stops "default".
# Every check runs (the config's `enabled = true` rather than `--checks all`, which would
# override the per-operation settings below).
CHECKS='[checks]
enabled = true

[checks.positive_data_acceptance]
expected-statuses = [200, 201, 401, 403, 404, 409, 422]'
# WAHA's old POST /api/sessions/start, /stop and /logout share their paths with
# /api/sessions/{session} of a session named start, stop or logout: GET, PUT and DELETE are truly
# allowed there, so an `Allow` listing them is right although these operations document only POST.
OLD_OPS="[[operations]]
include-path-regex = '^/api/sessions/(start|stop|logout)\$'
checks.allow_header_conformance.enabled = false"
# Phases that test one operation at a time get real values for the path parameters, so that
# they reach the group instead of answering 422 / 404 for random names.
cat >"$GW_DIR/pinned.toml" <<TOML
$CHECKS
[parameters]
session = "default"

$OLD_OPS

[[operations]]
include-path-regex = '/groups/[{]id[}]'
parameters = { id = "$GROUP" }

[[operations]]
include-path-regex = '/communities/[{]id[}]'
parameters = { id = "$COMMUNITY" }
TOML
# The stateful phase follows the links from what it created itself: pinned values would send it
# to a session or group that an earlier step deleted.
printf '%s\n\n%s\n' "$CHECKS" "$OLD_OPS" >"$GW_DIR/stateful.toml"

# --workers 1: Python 3.11.7's ast.parse is not thread-safe (gh-106905), and hypothesis calls it.
run() {
  SCHEMATHESIS_HOOKS=.ci/schemathesis_hooks.py "$VENV/bin/schemathesis" --config-file "$1" run "$GW/openapi.json" \
    -H "X-Api-Key: $KEY" \
    --phases "$2" \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
    --workers 1 \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --request-timeout 10 \
    --no-color \
    --report junit --report-dir target/schemathesis
}
status=0
run "$GW_DIR/pinned.toml" examples,coverage,fuzzing || status=$?
run "$GW_DIR/stateful.toml" stateful || status=$?

# A crash would have ended the gateway; an internal fault is logged as an error.
if ! kill -0 "$GW_PID" 2>/dev/null; then
  echo "schemathesis: the gateway died" >&2; cat "$GW_LOG" >&2; exit 1
fi
if grep -q ' ERROR ' "$GW_LOG"; then
  echo "schemathesis: the gateway logged errors" >&2; grep ' ERROR ' "$GW_LOG" >&2; exit 1
fi
exit "$status"

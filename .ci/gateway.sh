# Sourced by the .ci scripts: starts the real gateway binary on 127.0.0.1:<free port> with a temp
# data dir and an API key, and stops it on exit. Sets GW (base URL), KEY, GW_DIR, GW_LOG, GW_PID.
# WAGATE_BIN overrides the binary (default target/release/wagate, built if missing).

BIN="${WAGATE_BIN:-target/release/wagate}"
if [ ! -x "$BIN" ]; then
  cargo build --release --bin wagate
fi
GW_DIR="$(mktemp -d)"
GW_LOG="$GW_DIR/gateway.log"
KEY="ci-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
GW="http://127.0.0.1:$PORT"
NO_COLOR=1 WAGATE_LISTEN="127.0.0.1:$PORT" WAGATE_DATA_DIR="$GW_DIR/data" WAHA_API_KEY="$KEY" \
  "$BIN" >"$GW_LOG" 2>&1 &
GW_PID=$!
stop_gateway() {
  kill "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
  rm -rf "$GW_DIR"
}
trap stop_gateway EXIT
for _ in $(seq 1 100); do
  curl -fsS "$GW/ping" >/dev/null 2>&1 && break
  kill -0 "$GW_PID" 2>/dev/null || { cat "$GW_LOG"; echo "gateway died at start-up" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$GW/ping" >/dev/null

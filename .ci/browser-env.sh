# Sourced by the browser tests: Chromium and its driver from Debian, selenium in the CI venv
# (VENV), then a real release gateway with an API key (GW, KEY; see gateway.sh).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi
VENV=target/ci-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import selenium' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "selenium==4.51.0"
fi
. .ci/gateway.sh

#!/usr/bin/env bash
# Builds the Dockerfile, unchanged, with Debian's podman and runs the image once, on a machine
# with no Docker engine and no registry (what works here: ../shared/notes/containers.md).
#
#  1. The two base images the Dockerfile names are made locally from Debian's packages with
#     debootstrap: `debian:bookworm-slim` (minbase) and `rust:1.95-bookworm` (bookworm with gcc
#     and this machine's own stable Rust toolchain, as the official image has it).
#  2. `podman build --isolation chroot --pull=never` builds the Dockerfile as it is.
#  3. The image runs without an OCI runtime (crun cannot run here): its root filesystem is
#     mounted, a host folder is bound on its volume /app/data, and its entrypoint runs chrooted
#     in new mount and pid namespaces as the image's user with the image's environment.
#  4. Checks: /ping answers, a session and a group change work, the process is not root, the
#     data is on the volume, SIGTERM ends it with 0, and after a restart the group is still there.
#
# Usage: bash scripts/verify-image.sh   (as root; about 1 GiB in target/image; several minutes,
# most of them compiling wagate inside the build stage). Not a CI step: see the README, "Docker".
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="$PWD/target/image"
IMAGE=localhost/wagate:verify
MIRROR=http://deb.debian.org/debian
mkdir -p "$WORK"

for tool in podman debootstrap curl python3; do
  command -v "$tool" >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman debootstrap curl
    break
  }
done

# 1. Base images.
if ! podman image exists docker.io/library/debian:bookworm-slim; then
  rm -rf "$WORK/slim"
  debootstrap --variant=minbase bookworm "$WORK/slim" "$MIRROR" >"$WORK/debootstrap-slim.log"
  # Slim as Debian's own -slim images are: no apt caches or lists, no docs, man pages or
  # locales (and dpkg told to leave them out of what the Dockerfile installs).
  rm -rf "$WORK/slim/var/cache/apt/"*.bin "$WORK/slim/var/cache/apt/archives/"*.deb \
    "$WORK/slim/var/lib/apt/lists/"* "$WORK/slim/usr/share/doc/"* "$WORK/slim/usr/share/man/"* \
    "$WORK/slim/usr/share/locale/"*
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' \
    >"$WORK/slim/etc/dpkg/dpkg.cfg.d/slim"
  # ...and apt keeps no package caches after an install (Debian's images' docker-clean).
  cat >"$WORK/slim/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  tar -C "$WORK/slim" -c . | podman import - docker.io/library/debian:bookworm-slim
fi
if ! podman image exists docker.io/library/rust:1.95-bookworm; then
  rm -rf "$WORK/rust"
  debootstrap --variant=minbase --include=gcc,libc6-dev,make,ca-certificates bookworm "$WORK/rust" \
    "$MIRROR" >"$WORK/debootstrap-rust.log"
  # This machine's own extra CA certificates (e.g. a TLS-inspecting egress proxy's), which
  # cargo needs inside the build to reach crates.io from here.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$WORK/rust/usr/local/share/ca-certificates/"
    chroot "$WORK/rust" update-ca-certificates >/dev/null
  fi
  TOOLCHAIN="$(rustc --print sysroot)"
  cp -a "$TOOLCHAIN" "$WORK/rust/usr/local/rust"
  mkdir -p "$WORK/rust/usr/local/cargo"
  tar -C "$WORK/rust" -c . | podman import \
    --change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    - docker.io/library/rust:1.95-bookworm
fi

# 2. The Dockerfile as it is.
started=$(date +%s)
podman build --isolation chroot --pull=never -t "$IMAGE" . >"$WORK/build.log" 2>&1 || {
  tail -40 "$WORK/build.log" >&2
  exit 1
}
echo "built $IMAGE in $(($(date +%s) - started)) s"
SIZE=$(podman image inspect "$IMAGE" --format '{{.Size}}')
echo "image size: $SIZE bytes ($((SIZE / 1024 / 1024)) MiB)"

# 3. Run it: the image's root filesystem, user, environment and entrypoint.
CID=$(podman create "$IMAGE")
ROOT=$(podman mount "$CID")
cleanup() {
  [ -n "${RUN_PID:-}" ] && kill "$RUN_PID" 2>/dev/null || true
  podman umount "$CID" >/dev/null 2>&1 || true
  podman rm "$CID" >/dev/null 2>&1 || true
}
trap cleanup EXIT
USER_NAME=$(podman image inspect "$IMAGE" --format '{{.Config.User}}')
USER_ID=$(awk -F: -v u="$USER_NAME" '$1 == u {print $3 ":" $4}' "$ROOT/etc/passwd")
ENTRY=$(podman image inspect "$IMAGE" --format '{{join .Config.Entrypoint " "}}')
mapfile -t IMAGE_ENV < <(podman image inspect "$IMAGE" --format '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
VOLUME="$WORK/volume"
rm -rf "$VOLUME" && mkdir -p "$VOLUME" && chown "$USER_ID" "$VOLUME"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"

start() {
  # The image listens on 0.0.0.0:3000 in its own network namespace; here it shares the host's,
  # so it is told a free port of 127.0.0.1 instead. Everything else is the image's.
  unshare --mount --pid --fork --kill-child=SIGTERM sh -c '
    mount --bind "$1" "$2/app/data" && shift 2 && exec chroot "$@"' sh \
    "$VOLUME" "$ROOT" --userspec="$USER_ID" "$ROOT" env -i "${IMAGE_ENV[@]}" \
    WAGATE_LISTEN="127.0.0.1:$PORT" WAHA_NO_API_KEY=true $ENTRY >>"$WORK/run.log" 2>&1 &
  RUN_PID=$!
  for _ in $(seq 100); do
    curl -fsS "$BASE/ping" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the image did not answer /ping" >&2
  cat "$WORK/run.log" >&2
  exit 1
}
# The wagate process started from the image: the one whose root is the image's.
gateway_pid() {
  for p in $(pgrep -x wagate); do
    [ "$(readlink "/proc/$p/root")" = "$ROOT" ] && { echo "$p"; return; }
  done
}
call() { curl -fsS -H 'content-type: application/json' "$@"; }

start
echo "ping: $(curl -fsS "$BASE/ping")"
PID=$(gateway_pid)
UID_RUNNING=$(awk '/^Uid:/ {print $2}' "/proc/$PID/status")
[ "$UID_RUNNING" != 0 ] || { echo "runs as root" >&2; exit 1; }
echo "runs as uid $UID_RUNNING ($USER_NAME)"
call -XPOST "$BASE/api/sessions" -d '{"name":"default"}' >/dev/null
GROUP=$(call -XPOST "$BASE/api/default/groups" \
  -d '{"name":"Image","participants":[{"id":"22222222222@c.us"}]}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
[ "$(call -XPUT "$BASE/api/default/groups/$GROUP/subject" -d '{"subject":"Kept"}')" = true ]
[ -d "$VOLUME/sessions/default" ] || { echo "no data on the volume" >&2; exit 1; }
echo "group $GROUP renamed; its store is on the volume"

kill -TERM "$PID"
status=0
wait "$RUN_PID" || status=$?
RUN_PID=
[ "$status" = 0 ] || { echo "SIGTERM exit status $status" >&2; cat "$WORK/run.log" >&2; exit 1; }
echo "SIGTERM: exit 0"

start
SUBJECT=$(call "$BASE/api/default/groups/$GROUP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["subject"])')
[ "$SUBJECT" = Kept ] || { echo "after a restart the subject is $SUBJECT" >&2; exit 1; }
echo "after a restart on the same volume: subject $SUBJECT"
kill -TERM "$(gateway_pid)"
wait "$RUN_PID" || true
RUN_PID=
echo "image verified"

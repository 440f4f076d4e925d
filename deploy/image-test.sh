#!/usr/bin/env bash
# image-test.sh: builds Porthole's container image with podman and runs
# it twice, checking everything from outside the container: /readyz
# answers 200 on the published port, the process runs as a non-root
# user, the CA certificates are in place, the image's HEALTHCHECK passes,
# the widget is served from the embedded assets, the chat page knows the
# visitor's time zone, and SIGTERM stops it
# cleanly. First with the built-in demo bot (no config), then as in
# production: a mounted config, its secret from the environment, a
# read-only root file system and no capabilities. Any failed step stops the script with exit status 1.
# CI runs it (.ci/run); `make image-test` does too. About 30 s.
#
#   deploy/image-test.sh            IMAGE=… KEEP_IMAGE=1 to keep the image
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/porthole:image-test}
export CA_CERTS=${CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}   # what make image copies in
name=porthole-image-test-$$
work=$(mktemp -d)

step() { echo "image-test: $*"; }
fail() {
  echo "image-test: FAIL: $*" >&2
  if podman container exists "$name" 2>/dev/null; then
    echo "--- container log ---" >&2
    podman logs "$name" >&2 2>&1 || true
    echo >&2
  fi
  exit 1
}
# pm runs podman, leaving out of its stderr the lines of podman 4 saying
# it has no systemd to time the image's health checks with (there is
# none here: the checks below run them by hand), and keeps the rest.
pm() {
  local rc=0
  podman "$@" 2>"$work/podman.err" || rc=$?
  grep -v 'unable to get systemd connection' "$work/podman.err" >&2 || true
  return $rc
}
cleanup() {
  podman rm -f -v -t 0 "$name" >/dev/null 2>&1 || true
  if [ -z "${KEEP_IMAGE:-}" ]; then podman rmi -f "$IMAGE" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

command -v podman >/dev/null || fail "podman is not installed: apt-get install podman runc"
command -v curl >/dev/null || fail "curl is not installed: apt-get install curl"

# podman on these machines: runc with cgroupfs (no systemd), no default
# ulimits (a container may not raise them here), events to a file (no
# journald). A caller's own CONTAINERS_CONF is used as it is.
if [ -z "${CONTAINERS_CONF:-}" ]; then
  cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  export CONTAINERS_CONF=$work/containers.conf
fi
podman --version

step "building $IMAGE"
make --no-print-directory image IMAGE="$IMAGE"

user=$(podman image inspect -f '{{.Config.User}}' "$IMAGE")
[ "$user" = "65532:65532" ] || fail "the image's user is '$user', want 65532:65532"
hc=$(podman image inspect -f '{{.HealthCheck}}' "$IMAGE")
case $hc in *healthcheck*) ;; *) fail "the image has no HEALTHCHECK running porthole healthcheck (got '$hc'); build it with --format docker" ;; esac
size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
step "image user $user, health check $hc, $((size / 1024 / 1024)) MiB"

# check_running WHAT [SECRET]: waits for /readyz on the container's
# published port, then checks its process, its health check, the widget
# and a clean stop, and that SECRET is nowhere in its log; removes it.
check_running() {
  local what=$1 secret=${2:-} hostport pid uids gids code status
  sleep 0.5
  status=$(podman inspect -f '{{.State.Status}} (exit status {{.State.ExitCode}})' "$name")
  case $status in running*) ;; *) fail "$what: the container is $status right after it started" ;; esac
  hostport=$(podman port "$name" 8080/tcp | head -n1) || fail "$what: port 8080 is not published"
  [ -n "$hostport" ] || fail "$what: port 8080 is not published"
  base=http://$hostport

  local deadline=$((SECONDS + 30)) body=""
  while :; do
    status=$(podman inspect -f '{{.State.Status}}' "$name")
    [ "$status" = running ] || fail "$what: the container is $status before /readyz answered"
    if body=$(curl -fsS --max-time 2 "$base/readyz" 2>/dev/null); then break; fi
    [ $SECONDS -lt $deadline ] || fail "$what: $base/readyz did not answer 200 within 30 s"
    sleep 0.3
  done
  [ "$body" = ready ] || fail "$what: /readyz answered '$body', want ready"
  step "$what: GET $base/readyz from outside the container: 200 $body"

  # The server's own process, as the host's kernel sees it.
  pid=$(podman inspect -f '{{.State.Pid}}' "$name")
  uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
  gids=$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
  for id in $uids $gids; do
    [ "$id" != 0 ] || fail "$what: the server runs as root (uid $uids, gid $gids)"
  done
  [ "$uids" = "65532 65532 65532 65532" ] || fail "$what: the server runs as uid $uids, want 65532"
  step "$what: server process $pid runs as uid $uids, gid $gids (not root)"

  podman cp "$name:/etc/ssl/certs/ca-certificates.crt" "$work/ca.crt" \
    || fail "$what: the image has no /etc/ssl/certs/ca-certificates.crt: HTTPS calls to the platforms would fail"
  cmp -s "$work/ca.crt" "$CA_CERTS" \
    || fail "$what: the image's CA certificates differ from the build machine's"
  step "$what: CA certificates at /etc/ssl/certs/ca-certificates.crt ($(grep -c 'BEGIN CERT' "$work/ca.crt") certificates)"

  podman healthcheck run "$name" >/dev/null || fail "$what: the image's HEALTHCHECK failed"
  step "$what: podman healthcheck run: healthy"

  code=$(curl -sS -o "$work/widget.js" -w '%{http_code}' --max-time 5 "$base/widget.js")
  [ "$code" = 200 ] && [ -s "$work/widget.js" ] || fail "$what: GET /widget.js answered $code: the widget assets are not embedded"
  if podman logs "$name" 2>&1 | grep -q 'the widget is not available'; then
    fail "$what: the server says the widget assets were not built into the binary"
  fi
  step "$what: GET /widget.js: 200, $(wc -c <"$work/widget.js") bytes (assets embedded)"

  # The chat page takes the visitor's time zone only when it knows it:
  # the image has no zoneinfo, so the zones must be in the binary.
  code=$(curl -sS -o "$work/chat.html" -w '%{http_code}' --max-time 5 "$base/chat/demo?tz=Asia/Tokyo")
  [ "$code" = 200 ] || fail "$what: GET /chat/demo answered $code"
  grep -q 'tz=Asia%2FTokyo' "$work/chat.html" \
    || fail "$what: the chat page did not take ?tz=Asia/Tokyo: the time zones are not in the binary, times show in UTC"
  step "$what: GET /chat/demo?tz=Asia/Tokyo: 200, times in the visitor's zone"

  pm stop -t 20 "$name" >/dev/null || fail "$what: podman stop failed"
  code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
  [ "$code" = 0 ] || fail "$what: the server exited with status $code on SIGTERM, want 0"
  podman logs "$name" 2>&1 | grep -q 'msg=stopped' || fail "$what: the server did not log a clean stop"
  step "$what: SIGTERM: stopped cleanly, exit status 0"
  if [ -n "$secret" ] && podman logs "$name" 2>&1 | grep -qF "$secret"; then
    fail "$what: the session key is in the server's log"
  fi
  pm rm -f -v "$name" >/dev/null
}

# 1. The image as it comes: the built-in demo bot, data on the volume.
pm run -d --name "$name" -p 127.0.0.1::8080 "$IMAGE" >/dev/null \
  || fail "demo: podman run failed"
check_running demo

# 2. As in production: the example config mounted read-only, its session
# key from the environment (never in a log), a read-only root, no
# capabilities, no privilege escalation; only the data volume is written.
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
PORTHOLE_SESSION_KEY=$key pm run -d --name "$name" \
  -p 127.0.0.1::8080 -e PORTHOLE_SESSION_KEY \
  -v "$PWD/examples/demo.yaml:/etc/porthole/porthole.yaml:ro" \
  --read-only --cap-drop=all --security-opt=no-new-privileges \
  "$IMAGE" serve --config /etc/porthole/porthole.yaml --data /data --log-level debug >/dev/null \
  || fail "config: podman run failed"
check_running config "$key"

echo "image-test: PASS: built $IMAGE, started it twice (demo, mounted config), /readyz answered 200 from outside, non-root, healthy, stopped cleanly"

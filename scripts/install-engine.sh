#!/usr/bin/env bash
# Makes a Debian/Ubuntu host ready for tcplab without any container registry:
#  1. installs Docker's engine from the distribution's packages if there is none,
#  2. starts dockerd if nothing answers (hosts without systemd, CI sandboxes),
#  3. makes the base image debian:bookworm-slim with debootstrap when it cannot be pulled.
# Idempotent: each step is skipped when already done. Run as root.
set -euo pipefail
log() { printf '[install-engine] %s\n' "$*" >&2; }
BASE=${TCPLAB_BASE_IMAGE:-debian:bookworm-slim}

if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io from the distribution's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if ! timeout 10 docker info >/dev/null 2>&1; then
  if command -v systemctl >/dev/null 2>&1 && systemctl start docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then
    log "started docker with systemctl"
  else
    # Twice at most: a dockerd that was stopped (or killed) a moment ago can still hold its containerd, and the
    # new one then times out waiting for it; a second start, once the first has given up, comes up.
    for attempt in 1 2; do
      log "starting dockerd in the background (log: /var/log/tcplab-dockerd.log)"
      nohup dockerd >/var/log/tcplab-dockerd.log 2>&1 &
      pid=$!
      for _ in $(seq 1 60); do timeout 5 docker info >/dev/null 2>&1 && break 2; sleep 1; done
      log "dockerd did not answer within a minute (attempt $attempt)"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    done
  fi
fi
timeout 10 docker info >/dev/null 2>&1 || { log "the Docker engine did not come up; see /var/log/tcplab-dockerd.log"; exit 1; }
log "engine: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  if [ "$BASE" = debian:bookworm-slim ] && ! timeout 60 docker pull -q "$BASE" >/dev/null 2>&1; then
    log "no registry reachable: building $BASE with debootstrap (a few minutes, once)"
    command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
    root=$(mktemp -d /var/tmp/tcplab-rootfs.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase bookworm "$root" >/var/log/tcplab-debootstrap.log 2>&1 \
      || { log "debootstrap failed; see /var/log/tcplab-debootstrap.log"; exit 1; }
    tar -C "$root" -c . | docker import - "$BASE" >/dev/null
  fi
fi
docker image inspect "$BASE" >/dev/null 2>&1 || { log "base image $BASE is missing"; exit 1; }
log "base image $BASE is present"

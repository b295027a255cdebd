#!/usr/bin/env bash
# Start a private Docker engine (its own data root, exec root and socket) and print the
# DOCKER_HOST line to use it:   eval "$(scripts/docker_engine.sh)"
# Usage: scripts/docker_engine.sh [DIR]   (default DIR: /tmp/protege-docker)
#        scripts/docker_engine.sh --stop [DIR]
# Idempotent: a second call reuses the engine already answering on DIR/docker.sock.
set -euo pipefail

stop=0
if [ "${1:-}" = "--stop" ]; then stop=1; shift; fi
dir="${1:-${PROTEGE_DOCKER_DIR:-/tmp/protege-docker}}"
sock="$dir/docker.sock"
host="unix://$sock"

if [ "$stop" = 1 ]; then
  if [ -f "$dir/dockerd.pid" ]; then kill "$(cat "$dir/dockerd.pid")" 2>/dev/null || true; fi
  exit 0
fi

if ! command -v dockerd >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "dockerd missing; run as root to install docker.io" >&2; exit 1; }
  echo "installing docker.io ..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2
fi

mkdir -p "$dir/data" "$dir/exec"
if ! docker -H "$host" version >/dev/null 2>&1; then
  # setsid + nohup: the engine outlives this script and the shell that ran it.
  setsid nohup dockerd --data-root "$dir/data" --exec-root "$dir/exec" -H "$host" \
    --pidfile "$dir/dockerd.pid" >"$dir/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker -H "$host" version >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker -H "$host" version >/dev/null 2>&1; then
    echo "dockerd did not answer on $sock within 60 s; last log lines:" >&2
    tail -n 20 "$dir/dockerd.log" >&2
    exit 1
  fi
fi
echo "export DOCKER_HOST=$host"

#!/usr/bin/env bash
# Build the local base image for bundled tasks without any image registry: debootstrap a
# minimal Debian bookworm root filesystem from the Debian mirror, then `docker import` it.
# Usage: scripts/build_base_image.sh [TAG]   (default protege-base:latest; needs root and
#        DOCKER_HOST from scripts/docker_engine.sh). Env: DEBIAN_MIRROR, PROTEGE_ROOTFS_DIR.
set -euo pipefail

tag="${1:-protege-base:latest}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="python3,python3-pytest,python3-venv,python3-pip,git,patch,ca-certificates,procps,coreutils"

if docker image inspect "$tag" >/dev/null 2>&1 && [ "${FORCE:-0}" != 1 ]; then
  echo "$tag already exists (FORCE=1 to rebuild)" >&2
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
fi

root="${PROTEGE_ROOTFS_DIR:-$(mktemp -d /tmp/protege-rootfs.XXXXXX)}"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >&2
# Smaller image: package caches and docs are not needed to run tests.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
# SWE-bench test commands call `python`; Debian ships only `python3`.
ln -sf python3 "$root/usr/bin/python"
mkdir -p "$root/testbed"
tar -C "$root" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' -c 'WORKDIR /testbed' -c 'CMD ["bash"]' - "$tag" >&2
docker image ls "$tag"

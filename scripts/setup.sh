#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every build and test dependency of vireo from Debian 12 packages.
# Safe to run again; used by the README's commands and by .ci/run.
set -euo pipefail

packages=(
  # build
  build-essential meson ninja-build pkg-config clang libclang-rt-14-dev python3
  liburing-dev zlib1g-dev libzstd-dev libjson-c-dev libmicrohttpd-dev libseccomp-dev
  libcurl4-openssl-dev libsqlite3-dev
  # tests
  libcmocka-dev python3-pytest acpica-tools qemu-system-x86 qemu-utils
  busybox-static iproute2 e2fsprogs
  cpio
  # benchmarks
  hyperfine
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: all dependencies present"

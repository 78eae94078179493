#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Fetch Debian's cloud kernel without installing it and unpack it under
# $1 (default ~/.cache/vireo/linux, or $VIREO_CACHE/linux), outside the
# repository so every clone shares it. Idempotent: a finished unpack is reused.
# Prints the unpack directory; exits non-zero with the reason on failure.
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=${1:-${VIREO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vireo}/linux}
mkdir -p "$OUT"
if [ -f "$OUT/.done" ]; then
	echo "$OUT"
	exit 0
fi
cd "$OUT"
# linux-image-cloud-amd64 is a metapackage: find the versioned image it names.
PKG=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n1)
if [ -z "$PKG" ]; then
	echo "fetch-kernel: apt-cache cannot resolve linux-image-cloud-amd64 (run apt-get update?)" >&2
	exit 1
fi
rm -f ./*.deb
if ! apt-get download "$PKG" >&2; then
	echo "fetch-kernel: apt-get download $PKG failed" >&2
	exit 1
fi
rm -rf root
dpkg -x ./"$PKG"_*.deb root
VMLINUZ=$(ls root/boot/vmlinuz-* | head -n1)
MODDIR=$(ls -d root/lib/modules/* | head -n1)
[ -n "$VMLINUZ" ] && [ -d "$MODDIR" ] || { echo "fetch-kernel: $PKG has no kernel/modules" >&2; exit 1; }
ln -sf "$VMLINUZ" vmlinuz
ln -sfn "$MODDIR" modules
touch .done
echo "$OUT"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# virtio-blk back ends side by side: vireo's vhost-user-blk against
# qemu-storage-daemon's vhost-user-blk export, the same QEMU TCG guest in
# front of both. bench/virtio-blk.sh [rounds] (default 3); BENCH_FORMATS=qcow2
# limits it to one format.
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/virtio-blk.py "$@"

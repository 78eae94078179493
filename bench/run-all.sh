#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every benchmark; each prints medians and ratios against its peer.
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 bench/boot.py "$@"
/usr/bin/python3 bench/snapshot.py
/usr/bin/python3 bench/virtio-blk-kvm.py
# vireo run against QEMU -accel kvm with a Linux guest, inside scripts/lab
bench/linux-lab.sh
# Linux boot: vireo against QEMU microvm and q35, inside scripts/lab
bench/boot-linux.sh
for b in bench/img-bench.sh; do
  [ -x "$b" ] && "$b"
done
exit 0

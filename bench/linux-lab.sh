#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vireo run against QEMU -accel kvm with the same Linux guest: virtio-blk
# (raw, qcow2) and virtio-net throughput and host CPU per GB, side by side
# inside scripts/lab (a TCG VM with nested KVM). The guest is prepared here
# on the host, since the lab's writes are thrown away; see bench/linux-lab.py.
#   bench/linux-lab.sh    (BENCH_ROUNDS=5, BENCH_SECONDS=3 per disk test,
#                          BENCH_NET_MB=256, VIREO=build/vireo; ~17 min)
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 bench/linux-lab.py --prepare
# bash reads a script as it runs it: a run this long outlives edits to
# scripts/lab in a shared tree, so it runs from a copy held in memory ($0
# stays scripts/lab, which finds the tree from it).
LAB=$(cat scripts/lab)
exec bash -c "$LAB" scripts/lab --quiet --timeout "${BENCH_LAB_TIMEOUT:-2400}" -- \
	/usr/bin/python3 bench/linux-lab.py

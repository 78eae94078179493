#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Linux boot, vireo run against QEMU -accel kvm (microvm, q35 with qboot):
# uptime at init, start-to-exit wall and CPU, peak RSS, 1 and 2 vCPUs, with
# and without devices, side by side inside scripts/lab (a TCG VM with nested
# KVM). The guest is prepared here on the host, since the lab's writes are
# thrown away; see bench/boot-linux.py.
#   bench/boot-linux.sh    (BENCH_ROUNDS=5, VIREO=build/vireo)
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 bench/boot-linux.py --prepare
exec scripts/lab --quiet --timeout "${BENCH_LAB_TIMEOUT:-2400}" -- \
	/usr/bin/python3 bench/boot-linux.py "$@"

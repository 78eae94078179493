#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# vireo img vs qemu-img, side by side on the same files, alternating runs,
# median of RUNS (default 5). Prints seconds and the ratio vireo/qemu
# (below 1.0: vireo is faster).
#   bench/img-bench.sh [path-to-vireo]
#   env: RUNS, WORK (scratch dir), SIZE_MB, COUNT_WB, COUNT_NONE, ONLY (regex)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VIREO=${1:-${VIREO:-$ROOT/build/vireo}}
RUNS=${RUNS:-5}
SIZE_MB=${SIZE_MB:-1024}
WORK=${WORK:-$(mktemp -d /var/tmp/vireo-img-bench.XXXXXX)}
COUNT_WB=${COUNT_WB:-100000}
COUNT_NONE=${COUNT_NONE:-20000}
trap 'rm -rf "$WORK"' EXIT
command -v qemu-img >/dev/null || { echo "qemu-img not found"; exit 1; }
[ -x "$VIREO" ] || { echo "vireo not found at $VIREO"; exit 1; }

echo "vireo: $VIREO"
echo "qemu-img: $(qemu-img --version | head -1)"
echo "scratch: $WORK, runs: $RUNS, image: ${SIZE_MB} MiB"

# Input: half random data, half zeros (holes), in 2 MiB stripes.
python3 - "$WORK/src.raw" "$SIZE_MB" <<'PY'
import os, sys
path, mb = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.truncate(mb << 20)
    for i in range(0, mb << 20, 2 << 20):
        if (i >> 21) % 2 == 0:
            f.seek(i)
            f.write(os.urandom(2 << 20))
PY
qemu-img create -q -f qcow2 -o preallocation=falloc "$WORK/prealloc.qcow2" "${SIZE_MB}M"

now() { date +%s.%N; }
# time_cmd <cmd...>: prints elapsed seconds
time_cmd() {
  local t0 t1
  t0=$(now)
  "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; return 1; }
  t1=$(now)
  python3 -c "print($t1 - $t0)"
}
median() { python3 -c "import statistics,sys; print('%.3f' % statistics.median(map(float, sys.argv[1:])))" "$@"; }

printf "\n%-44s %10s %10s %8s\n" "benchmark" "vireo s" "qemu s" "ratio"
# compare <label> <setup-fn> <vireo args...> -- <qemu args...>
compare() {
  local label=$1 prep=$2; shift 2
  # ONLY=regex runs just the matching benchmarks.
  if [ -n "${ONLY:-}" ] && ! [[ $label =~ $ONLY ]]; then return 0; fi
  local -a va=() qa=()
  while [ "$1" != "--" ]; do va+=("$1"); shift; done; shift
  qa=("$@")
  local -a vt=() qt=()
  for ((i = 0; i < RUNS; i++)); do
    $prep; vt+=("$(time_cmd "$VIREO" img "${va[@]}")")
    $prep; qt+=("$(time_cmd qemu-img "${qa[@]}")")
  done
  local vm qm
  vm=$(median "${vt[@]}"); qm=$(median "${qt[@]}")
  printf "%-44s %10s %10s %8s\n" "$label" "$vm" "$qm" "$(python3 -c "print('%.2f' % ($vm / $qm))")"
}

clean_out() { rm -f "$WORK"/out.*; }
mk_qcow2_src() { clean_out; [ -f "$WORK/src.qcow2" ] || qemu-img convert -O qcow2 "$WORK/src.raw" "$WORK/src.qcow2"; }

compare "convert raw -> qcow2 (${SIZE_MB} MiB)" clean_out \
  convert -O qcow2 "$WORK/src.raw" "$WORK/out.qcow2" -- convert -O qcow2 "$WORK/src.raw" "$WORK/out.qcow2"
compare "convert qcow2 -> raw" mk_qcow2_src \
  convert -O raw "$WORK/src.qcow2" "$WORK/out.raw" -- convert -O raw "$WORK/src.qcow2" "$WORK/out.raw"
compare "convert raw -> compressed qcow2" clean_out \
  convert -c -O qcow2 "$WORK/src.raw" "$WORK/out.qcow2" -- convert -c -O qcow2 "$WORK/src.raw" "$WORK/out.qcow2"

# 4 KiB random I/O over the preallocated image; the stride is a large odd
# multiple of 4 KiB so offsets wander over the whole image.
STEP=$((1234567 * 4096 % (SIZE_MB << 20)))
nop() { :; }
for cache in writeback none; do
  count=$COUNT_WB; [ "$cache" = none ] && count=$COUNT_NONE
  for depth in 1 32; do
    for mode in read write; do
      w=(); [ "$mode" = write ] && w=(-w)
      compare "bench 4K $mode qd$depth -t $cache (${count} ops)" nop \
        bench "${w[@]}" -c "$count" -d "$depth" -s 4096 -S "$STEP" -t "$cache" -f qcow2 "$WORK/prealloc.qcow2" -- \
        bench "${w[@]}" -c "$count" -d "$depth" -s 4096 -S "$STEP" -t "$cache" -f qcow2 "$WORK/prealloc.qcow2"
    done
  done
done

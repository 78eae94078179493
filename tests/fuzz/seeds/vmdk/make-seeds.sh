#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Remakes the vmdk fuzz seeds in this folder with qemu-img (Debian 12's
# qemu-utils, 7.2): images whose size is not a whole number of grains, in
# both sparse subformats, gzipped (they are mostly zeros; scripts/fuzz.sh
# unpacks them into build-fuzz/corpus_vmdk). Each source is all zeros but a
# short text at its start, middle and last bytes, so the last grain is
# partial and holds data. Run from this folder: ./make-seeds.sh
set -euo pipefail
G=65536            # bytes in a grain (qemu-img's default 128 sectors)
T=$((512 * G))     # bytes one grain table maps
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mk() {             # name size subformat
  python3 - "$tmp/src" "$2" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
b, t = bytearray(n), b"vireo seed %d\n" % n
b[0:len(t)] = t[:n]
if n > len(t):
    b[n - len(t):n] = t
if n > 70000:
    b[n // 2:n // 2 + len(t)] = t
open(path, "wb").write(bytes(b))
PY
  # Named fuzz.vmdk, as fuzz_vmdk names its input: the extent line matches.
  qemu-img convert -O vmdk -o subformat="$3" "$tmp/src" "$tmp/fuzz.vmdk"
  gzip -9 -n -c "$tmp/fuzz.vmdk" > "$1.vmdk.gz"
}
mk stream-100                  100                 streamOptimized
mk stream-grain-plus-byte      $((G + 1))          streamOptimized
mk stream-grains-minus-sector  $((2 * G - 512))    streamOptimized
mk stream-inside-second-table  $((T + 3 * G + 4097)) streamOptimized
mk sparse-grain-plus-byte      $((G + 1))          monolithicSparse
mk sparse-inside-second-table  $((T + 3 * G + 4097)) monolithicSparse

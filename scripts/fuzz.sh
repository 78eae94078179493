#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds every libFuzzer target in tests/fuzz (fuzz_*.c) with clang into
# build-fuzz/ and runs each for N seconds (default 10):
#   scripts/fuzz.sh [seconds] [target ...]
# The library is compiled once with -fsanitize=fuzzer-no-link and archived;
# each target links against it, so adding a target is adding a file.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-${FUZZ_SECONDS:-10}}
shift || true
OUT=build-fuzz
CC=${CLANG:-clang}
mkdir -p "$OUT/obj"
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
CFLAGS=(-std=c17 -D_GNU_SOURCE -DVIREO_VERSION='"fuzz"' -Isrc -Itests/unit/api -g -O1
        $(pkg-config --cflags json-c libmicrohttpd libcurl))
LIBS=(-luring -lz -lzstd -ljson-c -lpthread -lm)
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do t=$(basename "$f" .c); TARGETS+=("${t#fuzz_}"); done
fi

# Everything but the CLI and main(): the code fuzz targets reach.
LIB_SRCS=$(find src -name '*.c' ! -path 'src/cli/*' ! -name main.c | sort)
LIB=$OUT/libvireo-fuzz.a
if [ ! -f "$LIB" ] || [ -n "$(find src -name '*.[ch]' -newer "$LIB" | head -1)" ]; then
  rm -f "$OUT"/obj/*.o
  for f in $LIB_SRCS; do
    "$CC" "${CFLAGS[@]}" -fsanitize=fuzzer-no-link "${SAN[@]}" -c "$f" \
      -o "$OUT/obj/$(echo "${f#src/}" | tr / _ | sed 's/\.c$/.o/')"
  done
  rm -f "$LIB"
  ar rcs "$LIB" "$OUT"/obj/*.o
fi
for t in "${TARGETS[@]}"; do
  extra=()
  [ "$t" = api_request ] && extra=(tests/unit/api/fake_vmm.c)
  if [ ! -x "$OUT/fuzz_$t" ] || [ "$LIB" -nt "$OUT/fuzz_$t" ] || \
     [ -n "$(find tests/fuzz tests/unit/api -name '*.[ch]' -newer "$OUT/fuzz_$t" | head -1)" ]; then
    "$CC" "${CFLAGS[@]}" -fsanitize=fuzzer "${SAN[@]}" -o "$OUT/fuzz_$t" \
      "tests/fuzz/fuzz_$t.c" "${extra[@]}" "$LIB" "${LIBS[@]}"
  fi
done

# Seed corpora from real images when qemu-img is around.
seed() {
  local dir=$OUT/corpus_$1; shift
  mkdir -p "$dir"
  [ -n "$(ls -A "$dir")" ] && return 0
  command -v qemu-img >/dev/null || return 0
  local tmp; tmp=$(mktemp -d)
  "$@" "$tmp"
  for f in "$tmp"/*; do cp "$f" "$dir/"; done
  rm -rf "$tmp"
}
mk_qcow2() {
  qemu-img create -q -f qcow2 "$1/a.qcow2" 1M
  qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 "$1/b.qcow2" 64K
  qemu-img create -q -f qcow2 -o cluster_size=4096,refcount_bits=1 "$1/c.qcow2" 256K
  qemu-io -c 'write -P 1 0 8k' -c 'write -z 64k 4k' "$1/c.qcow2" >/dev/null
  qemu-io -c "write -P 2 0 64k" "$1/a.qcow2" >/dev/null; qemu-img snapshot -c s "$1/a.qcow2"
  head -c 65536 /dev/urandom > "$1/r"; qemu-img convert -c -O qcow2 -o cluster_size=4096 "$1/r" "$1/d.qcow2"; rm "$1/r"
  qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=16k "$1/e.qcow2" 128K
}
# fuzz_vmdk opens its input as fuzz.vmdk: images made under that name reach
# their own extent.
mk_vmdk() {
  mkdir "$1/x"
  qemu-img create -q -f vmdk "$1/x/fuzz.vmdk" 1M; mv "$1/x/fuzz.vmdk" "$1/a.vmdk"
  head -c 65536 /dev/urandom > "$1/r"; qemu-img convert -O vmdk -o subformat=streamOptimized "$1/r" "$1/x/fuzz.vmdk"; rm "$1/r"
  mv "$1/x/fuzz.vmdk" "$1/b.vmdk"; rmdir "$1/x"
  printf '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 8 ZERO\n' > "$1/c.vmdk"
}
seed qcow2 mk_qcow2
seed vmdk mk_vmdk
# Committed seeds (tests/fuzz/seeds/TARGET/*.gz; the README there says how
# they were made) join the corpus on every run, after the qemu-img ones above
# (seed() only fills an empty corpus).
for t in "${TARGETS[@]}"; do
  for s in tests/fuzz/seeds/"$t"/*.gz; do
    [ -f "$s" ] || continue
    mkdir -p "$OUT/corpus_$t"
    gzip -dc "$s" > "$OUT/corpus_$t/seed-$(basename "$s" .gz)"
  done
done
# Real kernels for the loader: the test guests, when built.
mkdir -p "$OUT/corpus_snapshot"
if [ -x build/tests/unit/test_snapshot_state ] && [ -z "$(ls -A "$OUT/corpus_snapshot")" ]; then
  VIREO_SNAPSHOT_SEED_DIR=$OUT/corpus_snapshot build/tests/unit/test_snapshot_state >/dev/null
fi
mkdir -p "$OUT/corpus_kernel_loader"
for g in build/guests/demo.elf build/guests/demo.bzImage; do [ -f "$g" ] && cp "$g" "$OUT/corpus_kernel_loader/"; done

status=0
for t in "${TARGETS[@]}"; do
  echo "fuzz_$t: ${SECS}s"
  mkdir -p "$OUT/crashes_$t" "$OUT/corpus_$t"
  if ! "$OUT/fuzz_$t" -max_total_time="$SECS" -max_len=262144 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$OUT/crashes_$t/" -print_final_stats=0 "$OUT/corpus_$t" \
        2> "$OUT/fuzz_$t.log"; then
    echo "fuzz_$t: FAILED, see $OUT/fuzz_$t.log and $OUT/crashes_$t/"
    tail -30 "$OUT/fuzz_$t.log"
    status=1
  fi
done
exit $status

#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Build a busybox initramfs for Debian's cloud kernel (fetched by
# fetch-kernel.sh): build-initramfs.sh KERNEL_DIR INIT_SCRIPT OUT.cpio.gz MODULE...
# The modules (and what their depends= lines name) are copied uncompressed
# to /lib/modules/<name>.ko in load order in /lib/modules/order, so the init
# script can insmod them with busybox, which does not read .ko.xz. e2fsprogs'
# mke2fs comes along with its libraries so the guest can make ext4.
set -eu
KDIR=$1; INIT=$2; OUT=$3; shift 3
BUSYBOX=$(command -v busybox)
file "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' || {
	echo "build-initramfs: $BUSYBOX is not static (install busybox-static)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
mkdir -p "$R/bin" "$R/sbin" "$R/lib/modules" "$R/dev" "$R/proc" "$R/sys" "$R/mnt" "$R/tmp" "$R/etc"
cp "$BUSYBOX" "$R/bin/busybox"
cp "$INIT" "$R/init"
# Extra static programs for /bin (space-separated paths), e.g. the benchmark tool.
for x in ${INITRAMFS_EXTRA:-}; do cp "$x" "$R/bin/"; done
chmod +x "$R/init"

modfile() { find -L "$KDIR/modules/kernel" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" | head -n1; }
modcat() { case $1 in *.xz) xz -dc "$1";; *.zst) zstd -dcq "$1";; *) cat "$1";; esac; }
add_module() {
	local name=$1 f deps d
	grep -qx "$name" "$R/lib/modules/order" 2>/dev/null && return 0
	f=$(modfile "$name")
	[ -n "$f" ] || f=$(modfile "$(echo "$name" | tr _ -)")
	if [ -z "$f" ]; then
		if grep -q "/$name.ko" "$KDIR/modules/modules.builtin"; then return 0; fi
		echo "build-initramfs: module $name not found in $KDIR/modules" >&2; exit 1
	fi
	modcat "$f" > "$WORK/m.ko"
	deps=$(strings "$WORK/m.ko" | sed -n 's/^depends=//p' | tr , ' ')
	for d in $deps; do add_module "$d"; done
	modcat "$f" > "$R/lib/modules/$name.ko"
	echo "$name" >> "$R/lib/modules/order"
}
touch "$R/lib/modules/order"
for m in "$@"; do add_module "$m"; done

# mke2fs and the shared libraries it needs, at the paths ldd reports.
cp /sbin/mke2fs "$R/sbin/mke2fs"
for lib in $(ldd /sbin/mke2fs | grep -o '/[^ ]*'); do
	mkdir -p "$R$(dirname "$lib")"
	cp -L "$lib" "$R$lib"
done
cp /etc/mke2fs.conf "$R/etc/mke2fs.conf"
(cd "$R" && find . | cpio -o -H newc --quiet) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"

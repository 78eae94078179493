#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0
# /init of the lab's outer VM (see scripts/lab). Loads KVM and the file
# system modules, mounts the host's root (virtiofs) under a writable tmpfs
# overlay, binds the run directory through writable, runs the command that
# scripts/lab wrote there inside a chroot of the overlay, leaves its exit
# status beside it and powers off. Any failure here is reported on the
# kernel's console (ttyS1) with a LAB: prefix; scripts/lab then finds no
# status file and shows that console's last lines.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "LAB: $*" > /dev/ttyS1; }
die() { say "$*"; poweroff -f; sleep 10; }
for m in $(cat /lib/modules/order); do
	insmod /lib/modules/$m.ko 2>/dev/null || say "insmod $m failed"
done
arg() { sed -n "s/.*\\<$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
RUN=$(arg lab.run)
[ -n "$RUN" ] || die "no lab.run= on the kernel command line"

mkdir -p /host /rw /merged
mount -t virtiofs hostroot /host || die "cannot mount the host's root (virtiofs)"
# The overlay's upper layer lives in guest RAM; the host is never written
# but through the run directory and the shares bound below.
mount -t tmpfs -o size=75% tmpfs /rw || die "tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /merged ||
	die "cannot mount the overlay over the host's root"
M=/merged
mount --rbind /dev $M/dev
mount -t proc proc $M/proc
mount -t sysfs sys $M/sys
mount -t tmpfs tmpfs $M/run
mount -t tmpfs tmpfs $M/dev/shm 2>/dev/null
mkdir -p $M/dev/pts && mount -t devpts -o newinstance,ptmxmode=0666 devpts $M/dev/pts
ln -sf pts/ptmx $M/dev/ptmx 2>/dev/null
[ -d /sys/fs/cgroup ] && mount -t cgroup2 cgroup2 $M/sys/fs/cgroup 2>/dev/null
for d in $RUN $(cat /host$RUN/shares 2>/dev/null); do
	mkdir -p $M$d && mount --bind /host$d $M$d || die "cannot bind $d writable"
done
ip link set lo up
[ -c /dev/kvm ] || say "no /dev/kvm in the lab: is the CPU model missing svm?"
stty -F /dev/ttyS0 -opost 2>/dev/null
if [ -f /host$RUN/tty ]; then
	# Interactive: the command owns the console as its controlling terminal.
	stty -F /dev/ttyS0 opost onlcr $(cat /host$RUN/tty) 2>/dev/null
	setsid -c chroot $M /bin/bash $RUN/cmd.sh < /dev/ttyS0 > /dev/ttyS0 2>&1
	echo $? > /host$RUN/status
else
	# Batch: output through a pipe, as when the host captures it.
	{ chroot $M /bin/bash $RUN/cmd.sh < /dev/null 2>&1; echo $? > /host$RUN/status; } | cat > /dev/ttyS0
fi
sync
poweroff -f

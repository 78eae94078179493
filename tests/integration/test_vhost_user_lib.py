# SPDX-License-Identifier: Apache-2.0
"""Helpers for the vhost-user tests: Debian's cloud kernel, a busybox
initramfs, a vireo back end process and a QEMU TCG guest in front of it."""
import os
import pathlib
import shutil
import socket
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LINUX = ROOT / "tests" / "integration" / "linux"
QEMU = shutil.which("qemu-system-x86_64")
QBOOT = "/usr/share/qemu/qboot.rom"

# The header every init script starts with: busybox applets, the virtual
# file systems, then the modules build-initramfs.sh listed in load order.
INIT_HEAD = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do
  insmod /lib/modules/$m.ko || echo "INSMOD-FAIL $m"
done
echo MODULES-LOADED
"""


def kernel_dir():
    """Fetch (once) and return build/linux; a failure fails the test."""
    if not QEMU:
        pytest.fail("qemu-system-x86_64 is not installed (scripts/setup.sh)")
    r = subprocess.run([str(LINUX / "fetch-kernel.sh")], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        pytest.fail(f"cannot fetch Debian's cloud kernel: {r.stderr.strip()}")
    return pathlib.Path(r.stdout.strip().splitlines()[-1])


def build_initramfs(tmp_path, init_body, modules):
    kdir = kernel_dir()
    init = tmp_path / "init"
    init.write_text(INIT_HEAD + init_body + "\npoweroff -f\n")
    out = tmp_path / "initramfs.gz"
    r = subprocess.run([str(LINUX / "build-initramfs.sh"), str(kdir), str(init), str(out)]
                       + modules, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        pytest.fail(f"initramfs build failed: {r.stderr.strip()}")
    return kdir / "vmlinuz", out


class Backend:
    """`vireo vhost-user ...` running in the background, logging to a file."""

    def __init__(self, args, sock, log_path, prefix=()):
        self.sock = sock
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(list(prefix) + args, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"back end did not come up: {self.output()}")
            time.sleep(0.02)

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return pathlib.Path(self.log_path).read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def alive(self):
        return self.proc.poll() is None


def tcg_smp(cpus):
    """-smp for a TCG guest that shares rings with another process.

    QEMU's TCG emits the guest's memory barriers only when the machine may
    have more than one vCPU (maxcpus > 1). With one, a guest's mb() between
    publishing used_event and rereading used->idx does nothing on the host,
    and a back end's store/fence/load on the other side can miss it: the
    guest then waits forever for an interrupt (seen with vireo and with
    qemu-storage-daemon alike). One hot-pluggable spare vCPU switches the
    barriers on; it is never started."""
    return f"{cpus},maxcpus={max(cpus, 2)}"


def qemu_boot(kernel, initrd, device_args, append="", mem="256M", smp=1, timeout=120,
              prefix=()):
    """Boot the guest under TCG with shared memory; returns its console text.

    no_timer_check: Linux's boot-time check that the PIT reaches the IO-APIC
    wants more than 4 timer ticks within a short TSC-timed delay; with this
    host's two cores busy TCG delivers them late and Linux panics ("IO-APIC +
    timer doesn't work", seen in a full run here). That checks QEMU's board,
    not the vhost-user device under test."""
    cmd = list(prefix) + [
        QEMU, "-M", "pc", "-accel", "tcg", "-m", mem, "-smp", tcg_smp(smp),
        "-object", f"memory-backend-memfd,id=mem,size={mem},share=on",
        "-machine", "memory-backend=mem",
        "-kernel", str(kernel), "-initrd", str(initrd),
        "-append", f"console=ttyS0 quiet panic=-1 no_timer_check {append}",
        "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
    ]
    if os.path.exists(QBOOT):
        cmd += ["-bios", QBOOT]
    cmd += device_args
    r = subprocess.run(cmd, capture_output=True, timeout=timeout)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def vu_connect(sock):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock)
    return s

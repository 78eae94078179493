#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""virtio-blk driven by the ring-3 blkbench guest, same image files, in one
run, alternating, median of N. Rows: 4 KiB random read/write at queue depth
1 and 32, 1 MiB sequential read/write at depth 4; raw and qcow2 files (the
qcow2 fully allocated first). Reported: IOPS (or MiB/s) and ratios.

On KVM: vireo run --disk against QEMU with KVM and virtio-blk-pci (-M pc
with qboot). Without KVM (or with --tcg): the guest under QEMU's TCG with
vireo's vhost-user-blk against qemu-storage-daemon's vhost-user-blk export
(the fair pair: both devices in another process), and QEMU's own in-process
virtio-blk-pci as a reference column. Under TCG the guest's CPU is
emulated, so the figures are far below KVM's and measure what the device
side adds to a light driver, not vireo run.

usage: bench/virtio-blk-kvm.py [--runs N] [--tcg]
"""
import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 1 << 30
ROWS = [  # name, cmdline, ops, bytes per op
    ("4k randread qd1", "qd=1", 8000, 4096),
    ("4k randread qd32", "qd=32", 30000, 4096),
    ("4k randwrite qd1", "qd=1 write", 8000, 4096),
    ("4k randwrite qd32", "qd=32 write", 30000, 4096),
    ("1M seqread qd4", "qd=4 seq bs=1048576", 600, 1 << 20),
    ("1M seqwrite qd4", "qd=4 seq write bs=1048576", 600, 1 << 20),
]


def vireo_cmd(vireo, guests, img, fmt, args):
    return [vireo, "run", "--kernel", f"{guests}/blkbench.elf", "--memory", "256M",
            "--disk", f"{img},format={fmt}", "--cmdline", args]


def qemu_cmd(guests, img, fmt, args):
    return ["qemu-system-x86_64", "-M", "pc", "-bios", "/usr/share/qemu/qboot.rom", "-enable-kvm",
            "-m", "256M", "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0x501,iosize=1", "-kernel",
            f"{guests}/blkbench.bzImage", "-append", args,
            "-drive", f"file={img},if=none,id=d,format={fmt}",
            "-device", "virtio-blk-pci,drive=d,disable-legacy=on"]


TCG = ["qemu-system-x86_64", "-M", "pc", "-accel", "tcg", "-bios", "/usr/share/qemu/qboot.rom",
       "-m", "256M", "-smp", "1,maxcpus=2", "-nodefaults", "-no-user-config", "-display", "none",
       "-serial", "stdio", "-device", "isa-debug-exit,iobase=0x501,iosize=1",
       "-object", "memory-backend-memfd,id=mem,size=256M,share=on",
       "-machine", "memory-backend=mem"]


def vhost_user_backends():
    """start_backend from bench/virtio-blk.py: one way to start each."""
    spec = importlib.util.spec_from_file_location(
        "virtio_blk_bench", os.path.join(ROOT, "bench", "virtio-blk.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.start_backend


def tcg_once(guests, img, fmt, args, kind, start_backend, d):
    """The guest under TCG with `kind` (vireo, qsd or qemu) serving the disk."""
    cmd = TCG + ["-kernel", f"{guests}/blkbench.bzImage", "-append", args]
    if kind == "qemu":
        return once(cmd + ["-drive", f"file={img},if=none,id=d,format={fmt}",
                           "-device", "virtio-blk-pci,drive=d,disable-legacy=on"])
    sock = os.path.join(d, f"{kind}.sock")
    with open(os.path.join(d, f"{kind}.log"), "ab") as log:
        p = start_backend(kind, fmt, img, sock, log)
        try:
            return once(cmd + ["-chardev", f"socket,id=c0,path={sock}",
                               "-device", "vhost-user-blk-pci,chardev=c0,disable-legacy=on"])
        finally:
            p.terminate()
            p.wait()
            if os.path.exists(sock):
                os.unlink(sock)


def tcg_main(a):
    start_backend = vhost_user_backends()
    print(f"virtio-blk, ring-3 guest driver under QEMU TCG (no KVM), median of {a.runs} "
          "alternating runs")
    print(f"{'format':7} {'workload':20} {'vireo vu':>12} {'qsd vu':>12} {'ratio':>6}"
          f" {'qemu in-proc':>13} {'ratio':>6}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR", "/var/tmp")) as d:
        for fmt, img in make_images(d):
            for name, args, ops, size in ROWS:
                args = f"{args} ops={ops}"
                res = {"vireo": [], "qsd": [], "qemu": []}
                for _ in range(a.runs):
                    for kind in res:
                        res[kind].append(tcg_once(a.guests, img, fmt, args, kind,
                                                  start_backend, d))
                v, q, i = (statistics.median(res[k]) for k in ("vireo", "qsd", "qemu"))
                unit = "IOPS" if size == 4096 else "MiB/s"
                scale = 1 if size == 4096 else size / (1 << 20)
                print(f"{fmt:7} {name:20} {v * scale:>7.0f} {unit:<5}{q * scale:>7.0f} {unit:<5}"
                      f"{v / q:>5.2f}x {i * scale:>8.0f} {unit:<5}{v / i:>5.2f}x")
    print("(ratios: vireo / qemu-storage-daemon, vireo / QEMU's own device; above 1: vireo faster)")
    return 0


def once(cmd):
    r = subprocess.run(cmd, capture_output=True, timeout=600)
    m = re.search(rb"BENCH (\d+) ops in (\d+) us", r.stdout)
    if not m:
        raise RuntimeError(f"{cmd[0]}: no result: {r.stdout[-300:]!r} {r.stderr[-300:]!r}")
    return int(m.group(1)) / (int(m.group(2)) / 1e6)


def make_images(d):
    raw = os.path.join(d, "disk.raw")
    with open(raw, "wb") as f:
        for _ in range(SIZE >> 20):
            f.write(os.urandom(1 << 20))
    qcow = os.path.join(d, "disk.qcow2")
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, qcow], check=True)
    return [("raw", raw), ("qcow2", qcow)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--vireo", default=os.path.join(ROOT, "build", "vireo"))
    ap.add_argument("--guests", default=os.path.join(ROOT, "build", "guests"))
    ap.add_argument("--tcg", action="store_true", help="the TCG/vhost-user comparison even on KVM")
    a = ap.parse_args()
    if a.tcg or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        if not a.tcg:
            print("no /dev/kvm: the KVM comparison cannot run; the TCG one instead")
        return tcg_main(a)
    print(f"virtio-blk, ring-3 guest driver on KVM, median of {a.runs} alternating runs")
    print(f"{'format':7} {'workload':20} {'vireo':>12} {'qemu':>12} {'ratio':>7}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR", "/var/tmp")) as d:
        for fmt, img in make_images(d):
            for name, args, ops, size in ROWS:
                args = f"{args} ops={ops}"
                v, q = [], []
                for _ in range(a.runs):
                    v.append(once(vireo_cmd(a.vireo, a.guests, img, fmt, args)))
                    q.append(once(qemu_cmd(a.guests, img, fmt, args)))
                vm, qm = statistics.median(v), statistics.median(q)
                unit = "IOPS" if size == 4096 else "MiB/s"
                scale = 1 if size == 4096 else size / (1 << 20)
                print(f"{fmt:7} {name:20} {vm * scale:>8.0f} {unit:<4}"
                      f"{qm * scale:>8.0f} {unit:<4}{vm / qm:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

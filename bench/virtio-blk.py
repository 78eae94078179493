# SPDX-License-Identifier: Apache-2.0
"""virtio-blk back ends side by side (see bench/virtio-blk.sh).

Method: one QEMU TCG guest (Debian cloud kernel, busybox initramfs, 1 vCPU,
256 MiB) boots against a vhost-user-blk back end and runs
bench/virtio-blk-io (static, O_DIRECT on /dev/vda, queue depth = threads)
for a fixed time per test: 1 MiB sequential write (which also allocates the
span in qcow2), 1 MiB sequential read, 4 KiB random read and write at QD1
and QD32, all within a 64 MiB span of a fresh 256 MiB image. Back ends
alternate boot by boot (vireo, qsd, vireo, ...) for each format, every
round on fresh images; the table shows the median of the rounds and
vireo/qsd. The guest CPU is emulated, so absolute figures are low and
mostly measure the guest's own cost per request; the ratios compare what
the back ends add. The QEMU guest always runs the same binary and command
line; only the socket's owner changes."""
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINUX = ROOT / "tests" / "integration" / "linux"
VIREO = os.environ.get("VIREO", str(ROOT / "build" / "vireo"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
SPAN_MB = 64
GUEST_TIMEOUT = 180   # a normal boot and run takes well under a minute here
ATTEMPTS = 3
TESTS = [("write", 1 << 20, 1), ("read", 1 << 20, 1), ("randread", 4096, 1),
         ("randread", 4096, 32), ("randwrite", 4096, 1), ("randwrite", 4096, 32)]


def build_guest(tmp):
    kdir = subprocess.run([str(LINUX / "fetch-kernel.sh")], check=True, capture_output=True,
                          text=True).stdout.split()[-1]
    tool = tmp / "virtio-blk-io"
    subprocess.run(["gcc", "-O2", "-static", "-o", str(tool),
                    str(ROOT / "bench" / "virtio-blk-io.c"), "-lpthread"], check=True)
    lines = ["#!/bin/busybox sh", "/bin/busybox --install -s /bin",
             "mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev",
             "for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko; done"]
    for op, bs, qd in TESTS:
        lines.append(f"/bin/virtio-blk-io /dev/vda {op} {bs} {qd} {SECONDS} {SPAN_MB}")
    lines.append("poweroff -f")
    init = tmp / "init"
    init.write_text("\n".join(lines) + "\n")
    initrd = tmp / "initrd.gz"
    env = dict(os.environ, INITRAMFS_EXTRA=str(tool))
    subprocess.run([str(LINUX / "build-initramfs.sh"), kdir, str(init), str(initrd),
                    "virtio_pci", "virtio_blk"], check=True, env=env)
    return pathlib.Path(kdir) / "vmlinuz", initrd


def start_backend(kind, fmt, img, sock, log):
    if kind == "vireo":
        cmd = [VIREO, "vhost-user", "blk", "--socket", sock, "--image", img, "--format", fmt]
    else:
        cmd = ["qemu-storage-daemon",
               "--blockdev", f"driver=file,filename={img},node-name=file0,cache.direct=off",
               "--blockdev", f"driver={fmt},file=file0,node-name=disk0",
               "--export", f"type=vhost-user-blk,id=exp0,node-name=disk0,writable=on,"
                           f"addr.type=unix,addr.path={sock}"]
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{kind} back end did not start")
        time.sleep(0.02)
    return p


def run_guest(kernel, initrd, sock):
    # maxcpus=2: TCG emits the guest's memory barriers only when a second
    # vCPU could exist; without them the guest's event-index handshake with
    # the back end (another process) can lose an interrupt and hang, with
    # either back end (tests/integration/test_vhost_user_lib.py, tcg_smp).
    cmd = ["qemu-system-x86_64", "-M", "pc", "-accel", "tcg", "-m", "256M",
           "-smp", "1,maxcpus=2",
           "-object", "memory-backend-memfd,id=mem,size=256M,share=on",
           "-machine", "memory-backend=mem", "-kernel", str(kernel), "-initrd", str(initrd),
           "-append", "console=ttyS0 quiet panic=-1", "-nographic", "-no-reboot",
           "-nodefaults", "-serial", "stdio",
           "-chardev", f"socket,id=c0,path={sock}", "-device", "vhost-user-blk-pci,chardev=c0"]
    if os.path.exists("/usr/share/qemu/qboot.rom"):
        cmd += ["-bios", "/usr/share/qemu/qboot.rom"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=GUEST_TIMEOUT).stdout
    except subprocess.TimeoutExpired:
        return None
    res = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 5 and f[0] == "RESULT":
            ops, nbytes, secs = int(f[2]), int(f[3]), float(f[4])
            res[f[1]] = (ops / secs, nbytes / secs / 1e6)
    if len(res) != len(TESTS):
        raise RuntimeError("guest did not finish every test:\n" + out[-2000:])
    return res


def one(kind, fmt, tmp, kernel, initrd):
    img = str(tmp / f"bench.{fmt}")
    sock = str(tmp / f"{kind}.sock")
    if os.path.exists(img):
        os.unlink(img)
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, img, "256M"], check=True)
    with open(tmp / f"{kind}.log", "ab") as log:
        p = start_backend(kind, fmt, img, sock, log)
        try:
            return run_guest(kernel, initrd, sock)
        finally:
            p.terminate()
            p.wait()
            if os.path.exists(sock):
                os.unlink(sock)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    for tool in ("qemu-system-x86_64", "qemu-storage-daemon", "qemu-img", "gcc"):
        if not shutil.which(tool):
            sys.exit(f"virtio-blk bench: {tool} is missing (scripts/setup.sh)")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="vireo-blk-bench-"))
    kernel, initrd = build_guest(tmp)
    print(f"virtio-blk: QEMU TCG guest, {SECONDS:g} s per test, {SPAN_MB} MiB span, "
          f"{rounds} rounds, medians; QD n = n threads with O_DIRECT pread/pwrite")
    hangs = {"vireo": 0, "qsd": 0}
    for fmt in os.environ.get("BENCH_FORMATS", "raw,qcow2").split(","):
        runs = {"vireo": [], "qsd": []}
        for _ in range(rounds):
            for kind in ("vireo", "qsd"):
                for _ in range(ATTEMPTS):
                    res = one(kind, fmt, tmp, kernel, initrd)
                    if res is not None:
                        break
                    # A guest that hangs is counted and booted again. Before
                    # maxcpus=2 (above) this happened in about one run in
                    # five, with either back end: every completion was in
                    # the used ring past used_event, and one extra write to
                    # the call eventfd let the guest go on.
                    hangs[kind] += 1
                else:
                    sys.exit(f"virtio-blk bench: {kind} guest hung {ATTEMPTS} times in a row")
                runs[kind].append(res)
        print(f"\n{fmt}:\n  {'test':<22} {'vireo':>16} {'qsd':>16} {'vireo/qsd':>10}"
              f"   spread (min-max) vireo | qsd")
        for op, bs, qd in TESTS:
            name = f"{op}-{bs}-qd{qd}"
            unit, idx = ("MB/s", 1) if bs >= 1 << 20 else ("IOPS", 0)
            vs = [r[name][idx] for r in runs["vireo"]]
            qs = [r[name][idx] for r in runs["qsd"]]
            v, q = statistics.median(vs), statistics.median(qs)
            label = f"{op} {bs // 1024}K qd{qd}"
            print(f"  {label:<22} {v:>11.1f} {unit:<4} {q:>11.1f} {unit:<4} {v / q:>9.2f}x"
                  f"   {min(vs):.0f}-{max(vs):.0f} | {min(qs):.0f}-{max(qs):.0f}")
    print(f"\nguest runs that hung and were repeated: vireo {hangs['vireo']}, qsd {hangs['qsd']}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()

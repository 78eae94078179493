#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Linux boot benchmark: vireo run against QEMU -accel kvm (-M microvm and
-M q35 with qboot), the same kernel, initramfs and command line, inside
scripts/lab (bench/boot-linux.sh prepares the guest on the host, where the
lab's writes would not be thrown away, and runs this there).

Guest: Debian's cloud kernel and the busybox initramfs of
tests/integration/linux_vm.py, 256 MiB. The kernel starts /bench-init
(rdinit=), which prints "BENCH-UPTIME <secs>" from /proc/uptime before
anything else and then runs the base /init (virtio modules, then power off).
Under microvm Linux's rtc_cmos polls the RTC about 20,000 times for an
update that never comes (with rtc=off too), so q35 is the fairer peer.
Machines: 1 and 2 vCPUs; with no devices, and with a virtio-blk disk (raw,
64 MiB), a virtio-net NIC on a tap and virtio-rng, all virtio-pci (microvm
with pcie=on). Per boot: the guest's uptime when init starts, the VMM
process's wall time from start to exit, its CPU time (user+sys of all its
threads, which includes the vCPU's time in the guest) and peak RSS, taken
by bench/measure.c (a static launcher, so no Python is charged).

Rounds alternate the VMMs (the order reversed every other round); figures
are medians of BENCH_ROUNDS rounds (default 5) with the ratio to microvm.

usage: bench/boot-linux.py [--prepare | --dmesg]
  --prepare  build the initramfs and bench/measure (run on the host)
  --dmesg    one boot per VMM with initcall_debug, printing the guest's log
environment: VIREO, BENCH_ROUNDS, BENCH_CPUS (1,2), BENCH_DEVS (none,devs),
BENCH_VMMS (vireo,microvm,q35), BENCH_VIREO_BEFORE (another vireo binary,
run as "vireo-before" in the same rounds)
"""
import os
import pathlib
import re
import signal
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import linux_vm  # noqa: E402

VIREO = os.environ.get("VIREO", str(ROOT / "build" / "vireo"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
TIMEOUT = int(os.environ.get("BENCH_TIMEOUT", "300"))   # seconds per boot
CPUS = [int(c) for c in os.environ.get("BENCH_CPUS", "1,2").split(",")]
DEVS = os.environ.get("BENCH_DEVS", "none,devs").split(",")
VMMS = os.environ.get("BENCH_VMMS", "vireo,microvm,q35").split(",")
VIREO_BEFORE = os.environ.get("BENCH_VIREO_BEFORE")
if VIREO_BEFORE:
    VMMS.insert(1, "vireo-before")
OUT = linux_vm.CACHE / "bench-boot-linux"
MEASURE = OUT / "measure"
MEMORY = "256M"
TAP = "vbbtap0"
QEMU = "qemu-system-x86_64"

BENCH_INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
read up idle < /proc/uptime
/bin/busybox echo "BENCH-UPTIME $up"
/bin/busybox umount /proc
exec /init
"""
DMESG_SCRIPT = "echo DMESG-BEGIN; dmesg; echo DMESG-END\n"
END_SCRIPT = "read up idle < /proc/uptime; echo \"BENCH-END $up\"\n"


def prepare():
    """Files are only replaced when they change: a lab still running from
    them (over virtiofs) would find a replaced file stale."""
    OUT.mkdir(parents=True, exist_ok=True)
    src = ROOT / "bench" / "measure.c"
    if not MEASURE.exists() or MEASURE.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-static", "-o", str(MEASURE), str(src)], check=True)
    for name, script in (("initrd-end.img", END_SCRIPT), ("initrd-dmesg.img", DMESG_SCRIPT)):
        img = linux_vm.initrd(OUT, script, files={"bench-init": BENCH_INIT.encode()})
        dst = OUT / name
        if dst.exists() and dst.read_bytes() == img.read_bytes():
            img.unlink()
        else:
            img.rename(dst)
    kernel = linux_vm.kernel_and_base()[0]
    link = OUT / "kernel"
    if not link.is_symlink() or link.readlink() != kernel:
        link.unlink(missing_ok=True)
        link.symlink_to(kernel)


def cmdline(extra=""):
    return f"{linux_vm.CMDLINE} rdinit=/bench-init {extra}".strip()


def vireo_cmd(binary, cpus, devs, disk, initrd, extra):
    cmd = [binary, "run", "--kernel", str(OUT / "kernel"), "--initrd", str(initrd),
           "--cmdline", cmdline(extra), "--cpus", str(cpus), "--memory", MEMORY]
    if devs:
        cmd += ["--disk", f"{disk},format=raw", "--net", f"tap={TAP}", "--rng"]
    return cmd


def qemu_cmd(machine, cpus, devs, disk, initrd, extra):
    cmd = [QEMU, "-accel", "kvm", "-cpu", "host", "-m", MEMORY, "-smp", str(cpus),
           "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
           "-no-reboot", "-kernel", str(OUT / "kernel"), "-initrd", str(initrd),
           "-append", cmdline(extra)]
    if machine == "microvm":
        cmd += ["-M", "microvm,pcie=on" if devs else "microvm"]
    else:
        cmd += ["-M", "q35", "-bios", "/usr/share/qemu/qboot.rom"]
    if devs:
        cmd += ["-drive", f"file={disk},format=raw,if=none,id=d0",
                "-device", "virtio-blk-pci,drive=d0",
                "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no",
                "-device", "virtio-net-pci,netdev=n0",
                "-object", "rng-random,id=r0,filename=/dev/urandom",
                "-device", "virtio-rng-pci,rng=r0"]
    return cmd


def command(vmm, cpus, devs, disk, initrd, extra=""):
    if vmm.startswith("vireo"):
        return vireo_cmd(VIREO_BEFORE if vmm == "vireo-before" else VIREO,
                         cpus, devs, disk, initrd, extra)
    return qemu_cmd(vmm, cpus, devs, disk, initrd, extra)


def boot(cmd):
    # its own session, so that a boot that hangs is killed with its VMM
    p = subprocess.Popen([str(MEASURE)] + cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        stdout, stderr = p.communicate()
        raise RuntimeError(f"{cmd[0]} still running after {TIMEOUT} s:\n"
                           f"{stdout.decode(errors='replace')[-3000:]}")
    r = subprocess.CompletedProcess(cmd, p.returncode, stdout, stderr)
    out = r.stdout.decode(errors="replace")
    last = out.strip().splitlines()[-1].split()
    wall, cpu, rss, code = float(last[0]), float(last[1]), int(last[2]), int(last[3])
    m = re.search(r"BENCH-UPTIME ([0-9.]+)", out)
    end = re.search(r"BENCH-END ([0-9.]+)", out)
    if code != 0 or not m or "LINUX-DONE" not in out:
        raise RuntimeError(f"{cmd[0]} exited {code}:\n{out[-3000:]}\n"
                           f"{r.stderr.decode(errors='replace')[-2000:]}")
    # outside: wall time not spent in the guest kernel's own uptime (loading,
    # decompression before it; poweroff and teardown after)
    outside = wall - float(end.group(1)) * 1000 if end else 0.0
    return {"up": float(m.group(1)) * 1000, "wall": wall, "cpu": cpu, "rss": rss / 1024,
            "out": outside}, out


def setup_tap():
    subprocess.run(["ip", "tuntap", "add", "dev", TAP, "mode", "tap"], check=False,
                   capture_output=True)
    subprocess.run(["ip", "link", "set", TAP, "up"], check=True)


def bench():
    setup_tap()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="boot-linux-"))
    disk = tmp / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    initrd = OUT / "initrd-end.img"
    print(f"Linux boot in the lab: Debian cloud kernel, busybox initramfs, {MEMORY}, "
          f"median of {ROUNDS} alternating rounds")
    print(f"{'machine':26} {'init ms':>8} {'wall ms':>8} {'CPU ms':>8} {'RSS MiB':>8}"
          f" {'outside':>8}   ratio to microvm (init, wall, CPU, RSS); to q35")
    for devs in DEVS:
        for cpus in CPUS:
            samples = {v: [] for v in VMMS}
            for rnd in range(ROUNDS):
                order = VMMS if rnd % 2 == 0 else VMMS[::-1]
                for v in order:
                    samples[v].append(boot(command(v, cpus, devs == "devs", disk, initrd))[0])
                    if os.environ.get("BENCH_VERBOSE"):
                        print(v, cpus, devs, samples[v][-1], file=sys.stderr, flush=True)
            med = {v: {k: statistics.median(s[k] for s in samples[v]) for k in samples[v][0]}
                   for v in VMMS}
            for v in VMMS:
                m = med[v]
                ratio = ""
                for peer in ("microvm", "q35"):
                    if peer in med:
                        ratio += "   " + " ".join(f"{m[k] / med[peer][k]:.2f}x"
                                                  for k in ("up", "wall", "cpu", "rss"))
                print(f"{v + ' ' + str(cpus) + 'cpu ' + devs:26} {m['up']:8.0f} {m['wall']:8.0f} "
                      f"{m['cpu']:8.0f} {m['rss']:8.1f} {m['out']:8.0f}{ratio}", flush=True)
    return 0


def dmesg():
    setup_tap()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="boot-linux-"))
    disk = tmp / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    devs = DEVS[0] == "devs"
    for v in VMMS:
        _, out = boot(command(v, CPUS[0], devs, disk, OUT / "initrd-dmesg.img",
                              os.environ.get("BENCH_EXTRA", "initcall_debug log_buf_len=4M")))
        log = out.split("DMESG-BEGIN", 1)[-1].split("DMESG-END", 1)[0]
        print(f"===== {v}")
        print(log.strip())
    return 0


if __name__ == "__main__":
    if "--prepare" in sys.argv:
        prepare()
        sys.exit(0)
    sys.exit(dmesg() if "--dmesg" in sys.argv else bench())

# SPDX-License-Identifier: Apache-2.0
"""vireo run against QEMU (-accel kvm) with the same Linux guest, side by
side, inside scripts/lab (see bench/linux-lab.sh, which prepares the guest
on the host and runs this there).

Method: Debian's cloud kernel and the busybox initramfs of
tests/integration/linux_vm.py, 1 vCPU, 512 MiB, booted by `vireo run` and
by `qemu-system-x86_64 -accel kvm -M pc` with qboot (no SeaBIOS), the same
kernel, initrd and command line. Each VM has two virtio-blk disks, a fresh
256 MiB raw image and a fresh 256 MiB qcow2 image (cache=none on both
sides; QEMU with aio=io_uring), found in the guest by serial, and one
virtio-net interface on the same tap. The guest runs bench/virtio-blk-io
(O_DIRECT: 1 MiB sequential write then read, 4 KiB random read and write at
QD1 and QD32, within a 64 MiB span) on each disk for a fixed time per test,
then bench/net-send pushes BENCH_NET_MB MiB over TCP to a receiver on the
tap's host address, which checks the byte count. A third VM, QEMU with
vhost=on (vhost_net loaded from the kernel package when the lab lacks it),
runs the network test only, as a reference row.

The images live on ext4 over a loop device over a file in the lab's RAM:
the lab's own file systems (tmpfs, overlay on virtiofs) have no O_DIRECT,
which QEMU's cache=none needs. The tap and every byte of traffic stay in a
network namespace made here; both VMMs run inside it.

Host CPU: before and after each test the guest prints a mark and waits for
a newline on its console; meanwhile the host reads the VMM process's
utime+stime (/proc/PID/stat, all its threads, live and gone; plus QEMU's
vhost-PID kernel thread with vhost=on), so CPU s/GB covers the test alone,
not the boot. It includes the vCPU thread's time in the guest (the guest's
own work, much the same on both sides); the "VMM" columns leave that out
(stat's guest_time). The lab's L1 runs under TCG, so absolute figures are
low; the ratios are what to read.

Rounds alternate the VMMs (order reversed every other round); every figure
is the median over BENCH_ROUNDS rounds (default 5), with min-max.

usage: bench/linux-lab.py [--prepare]   (environment: VIREO, BENCH_ROUNDS,
BENCH_SECONDS per disk test (3), BENCH_NET_MB (256), BENCH_FORMATS)
"""
import json
import os
import pathlib
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import linux_vm  # noqa: E402  (kernel_and_base, initrd, CMDLINE)

VIREO = os.environ.get("VIREO", str(ROOT / "build" / "vireo"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
NET_MB = int(os.environ.get("BENCH_NET_MB", "256"))
FORMATS = os.environ.get("BENCH_FORMATS", "raw,qcow2").split(",")
PREP = linux_vm.CACHE / "bench-linux-lab"
SPAN_MB = 64
IMG_SIZE = "256M"
VM_TIMEOUT = 900
ATTEMPTS = 3
HOST_IP, GUEST_IP, PORT = "10.79.0.1", "10.79.0.2", 5201
TAP, MAC = "vbtap0", "52:54:00:79:00:02"
TICK = os.sysconf("SC_CLK_TCK")
TESTS = [("write", 1 << 20, 1), ("read", 1 << 20, 1), ("randread", 4096, 1),
         ("randread", 4096, 32), ("randwrite", 4096, 1), ("randwrite", 4096, 32)]
KINDS = os.environ.get("BENCH_KINDS", "vireo,qemu,qemu-vhost").split(",")


def guest_script(disks, net):
    """/test.sh: every test between two marks the host answers."""
    lines = ['mark() { echo "MARK $1"; read -r _reply; }',
             "dev_of() { for b in /sys/block/vd*; do",
             '  [ "$(cat $b/serial 2>/dev/null)" = "$1" ] && echo /dev/${b##*/}; done; }']
    for fmt in disks:
        lines.append(f"D=$(dev_of {fmt}disk)")
        for op, bs, qd in TESTS:
            lines += [f"mark B:{fmt}:{op}-{bs}-qd{qd}",
                      f"/bin/virtio-blk-io $D {op} {bs} {qd} {SECONDS:g} {SPAN_MB}",
                      "mark E"]
    if net:
        lines += ["ip link set eth0 up", f"ip addr add {GUEST_IP}/24 dev eth0",
                  "mark B:net:send", f"/bin/net-send {HOST_IP} {PORT} {NET_MB}", "mark E"]
    return "\n".join(lines) + "\n"


def prepare():
    """On the host (the lab's writes are thrown away): kernel, base
    initramfs, the static guest tools and the two per-run initrds."""
    kernel, _ = linux_vm.kernel_and_base()
    PREP.mkdir(parents=True, exist_ok=True)
    tools = {}
    for t in ("virtio-blk-io", "net-send"):
        exe = PREP / t
        subprocess.run(["gcc", "-O2", "-static", "-o", str(exe), str(ROOT / "bench" / f"{t}.c"),
                        "-lpthread"], check=True)
        tools[f"/bin/{t}"] = exe.read_bytes()
    for old in PREP.glob("initrd-*.img"):
        old.unlink()
    full = linux_vm.initrd(PREP, guest_script(FORMATS, True), tools)
    net = linux_vm.initrd(PREP, guest_script([], True), tools)
    (PREP / "manifest.json").write_text(json.dumps(
        {"kernel": str(kernel), "full": str(full), "net": str(net),
         "seconds": SECONDS, "net_mb": NET_MB, "formats": FORMATS}))
    print(f"linux-lab: guest prepared in {PREP}", file=sys.stderr)


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


class Lab:
    """What a run needs inside the lab: a RAM-backed ext4 with O_DIRECT
    for the images, a namespace with the tap, and vhost_net if it loads."""

    def __init__(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="vireo-linux-lab-"))
        self.ns = "vireo-bl-" + uuid.uuid4().hex[:6]
        self.loop = None
        self.fs = self.tmp / "fs"

    def __enter__(self):
        back = self.tmp / "backing.img"
        with open(back, "wb") as f:
            f.truncate(1 << 30)
        self.loop = sh("losetup", "--find", "--show", str(back)).stdout.strip()
        sh("mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", self.loop)
        self.fs.mkdir()
        sh("mount", self.loop, str(self.fs))
        sh("ip", "netns", "add", self.ns)
        ex = ["ip", "netns", "exec", self.ns]
        sh(*ex, "ip", "link", "set", "lo", "up")
        sh(*ex, "ip", "tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr")
        sh(*ex, "ip", "addr", "add", f"{HOST_IP}/24", "dev", TAP)
        sh(*ex, "ip", "link", "set", TAP, "up")
        return self

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        if self.loop:
            subprocess.run(["umount", str(self.fs)], capture_output=True)
            subprocess.run(["losetup", "-d", self.loop], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fresh_images(self):
        imgs = {}
        for fmt in FORMATS:
            p = self.fs / f"bench.{fmt}"
            if p.exists():
                p.unlink()
            sh("qemu-img", "create", "-q", "-f", fmt, str(p), IMG_SIZE)
            imgs[fmt] = str(p)
        return imgs


def load_vhost_net(kernel):
    """/dev/vhost-net, loading the modules from the kernel package the lab
    booted (scripts/lab does not load them). True when it is there."""
    if os.path.exists("/dev/vhost-net"):
        return True
    mods = pathlib.Path(kernel).parent / "modules" / "kernel"
    for m in ("drivers/vhost/vhost_iotlb", "drivers/vhost/vhost", "drivers/net/tap",
              "drivers/vhost/vhost_net"):
        subprocess.run(["busybox", "insmod", str(mods / f"{m}.ko")], capture_output=True)
    for _ in range(20):
        if os.path.exists("/dev/vhost-net"):
            return True
        time.sleep(0.1)
    return False


def vmm_cmd(kind, man, imgs):
    kernel, cmdline = man["kernel"], linux_vm.CMDLINE
    initrd = man["net" if kind == "qemu-vhost" else "full"]
    if kind == "vireo":
        cmd = [VIREO, "run", "--kernel", kernel, "--initrd", initrd, "--cmdline", cmdline,
               "--cpus", "1", "--memory", "512M", "--net", f"tap={TAP},mac={MAC}"]
        for fmt, img in imgs.items():
            cmd += ["--disk", f"{img},format={fmt},cache=none,serial={fmt}disk"]
        return cmd
    cmd = ["qemu-system-x86_64", "-accel", "kvm", "-M", "pc", "-bios",
           "/usr/share/qemu/qboot.rom", "-cpu", "host", "-smp", "1", "-m", "512M",
           "-nographic", "-nodefaults", "-no-user-config", "-no-reboot", "-serial", "stdio",
           "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
           "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no,"
                      f"vhost={'on' if kind == 'qemu-vhost' else 'off'}",
           "-device", f"virtio-net-pci,netdev=n0,mac={MAC}"]
    if kind == "qemu":
        for i, (fmt, img) in enumerate(imgs.items()):
            cmd += ["-drive", f"file={img},if=none,id=d{i},format={fmt},cache=none,aio=io_uring",
                    "-device", f"virtio-blk-pci,drive=d{i},serial={fmt}disk"]
    return cmd


def cpu_ticks(pid, extra):
    """(utime+stime, guest_time) in ticks of the process and `extra` pids."""
    total = guest = 0
    for p in [pid] + extra:
        try:
            f = pathlib.Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12])   # fields 14, 15
        guest += int(f[40])                # field 43
    return total, guest


def vhost_threads(pid):
    """QEMU's vhost worker kernel threads (named vhost-PID on Linux 6.1);
    their CPU is the device's but not in QEMU's own stat."""
    out = []
    for d in pathlib.Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == f"vhost-{pid}":
                    out.append(int(d.name))
            except OSError:
                pass
    return out


RECEIVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(600)
c, _ = s.accept()
buf, n = bytearray(1 << 20), 0
while True:
    k = c.recv_into(buf)
    if not k:
        break
    n += k
c.close()
print("RECV", n, flush=True)
"""


def run_vm(lab, kind, man, imgs):
    """One boot: {label: (bytes, ops, secs, cpu_s, guest_s)}."""
    recv = subprocess.Popen(["ip", "netns", "exec", lab.ns, sys.executable, "-c", RECEIVER,
                             HOST_IP, str(PORT)], stdout=subprocess.PIPE, text=True)
    log = open(lab.tmp / f"{kind}.console", "wb")
    p = subprocess.Popen(["ip", "netns", "exec", lab.ns] + vmm_cmd(kind, man, imgs),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    res, cur, start, extra, buf = {}, None, None, [], b""
    deadline = time.monotonic() + VM_TIMEOUT
    try:
        fd = p.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{kind}: no end within {VM_TIMEOUT} s")
            if not select.select([fd], [], [], min(left, 5))[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            log.write(chunk)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                f = line.decode(errors="replace").strip().split()
                if len(f) >= 2 and f[0] == "MARK":
                    if kind == "qemu-vhost" and not extra:
                        extra = vhost_threads(p.pid)
                    now = cpu_ticks(p.pid, extra)
                    if f[1].startswith("B:"):
                        cur, start = f[1][2:], now
                    elif cur in res:
                        res[cur] += ((now[0] - start[0]) / TICK, (now[1] - start[1]) / TICK)
                    p.stdin.write(b"\n")
                    p.stdin.flush()
                elif len(f) == 5 and f[0] == "RESULT":      # virtio-blk-io
                    res[cur] = (int(f[3]), int(f[2]), float(f[4]))
                elif len(f) == 4 and f[0] == "RESULT":      # net-send
                    res[cur] = (int(f[2]), 0, float(f[3]))
        rc = p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()
        try:
            got = recv.communicate(timeout=10 if "net:send" in res else 1)[0]
        except subprocess.TimeoutExpired:
            recv.kill()
            got = recv.communicate()[0]
    console = (lab.tmp / f"{kind}.console").read_text(errors="replace")
    want = [k for k, _ in row_names(kind)]
    if rc != 0 or any(len(res.get(k, ())) != 5 for k in want):
        raise RuntimeError(f"{kind} exited {rc} or a test failed; console:\n{console[-1500:]}")
    if "net:send" in res and f"RECV {man['net_mb'] << 20}\n" != got:
        raise RuntimeError(f"{kind}: host received {got!r}, not {man['net_mb'] << 20} bytes")
    return res


def row_names(kind):
    names = [("net:send", "net TCP guest->host")]
    if kind != "qemu-vhost":
        names = [(f"{fmt}:{op}-{bs}-qd{qd}",
                  f"{fmt} {op} " + ("1M" if bs == 1 << 20 else f"{bs >> 10}K qd{qd}"))
                 for fmt in FORMATS for op, bs, qd in TESTS] + names
    return names


def med(xs):
    return statistics.median(xs)


def report(runs, have_vhost):
    print(f"\n{'row':<24} {'vireo':>11} {'QEMU':>11} {'v/Q':>6} {'paired':>6}   "
          f"{'CPU s/GB: vireo':>15} {'QEMU':>7} {'v/Q':>5}   {'VMM-only: vireo':>15} "
          f"{'QEMU':>7} {'v/Q':>5}   spread vireo | QEMU")
    pairs = [("qemu", k, n) for k, n in row_names("vireo")]
    if have_vhost:
        pairs.append(("qemu-vhost", "net:send", "net vs QEMU vhost=on"))
    for peer, key, name in pairs:
        def figs(kind):
            rate, cpu, vmm = [], [], []
            for r in runs[kind]:
                nbytes, ops, secs, cpu_s, guest_s = r[key]
                gb = nbytes / 1e9
                rate.append(nbytes / secs / 1e6 if ops == 0 or nbytes / ops >= 1 << 20
                            else ops / secs)
                cpu.append(cpu_s / gb)
                vmm.append((cpu_s - guest_s) / gb)
            return rate, cpu, vmm
        vr, vc, vv = figs("vireo")
        qr, qc, qv = figs(peer)
        unit = "IOPS" if "K qd" in name else "MB/s"   # as figs() computes them
        # The same round's runs are next to each other in time: the median
        # of their ratios is less moved by load that comes and goes on a
        # shared host than the ratio of the medians.
        paired = med([v / q for v, q in zip(vr, qr)])
        print(f"{name:<24} {med(vr):>6.0f} {unit} {med(qr):>6.0f} {unit} "
              f"{med(vr) / med(qr):>5.2f}x {paired:>5.2f}x   {med(vc):>15.1f} {med(qc):>7.1f} "
              f"{med(vc) / med(qc):>5.2f}   {med(vv):>15.1f} {med(qv):>7.1f} "
              f"{med(vv) / med(qv) if med(qv) > 0 else float('nan'):>5.2f}   "
              f"{min(vr):.0f}-{max(vr):.0f} | {min(qr):.0f}-{max(qr):.0f}")


def main():
    if "--prepare" in sys.argv[1:]:
        prepare()
        return
    man = json.loads((PREP / "manifest.json").read_text())
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or os.geteuid() != 0:
        sys.exit("linux-lab: needs root and /dev/kvm (run bench/linux-lab.sh)")
    t0 = time.monotonic()
    with Lab() as lab:
        have_vhost = load_vhost_net(man["kernel"])
        kinds = [k for k in KINDS if have_vhost or k != "qemu-vhost"]
        print(f"linux-lab: {ROUNDS} rounds, {man['seconds']:g} s per disk test, "
              f"{man['net_mb']} MiB per net run, vhost-net {'on' if have_vhost else 'missing'}",
              flush=True)
        runs = {k: [] for k in kinds}
        failed = {k: 0 for k in kinds}
        for r in range(ROUNDS):
            for kind in (kinds if r % 2 == 0 else kinds[::-1]):
                for attempt in range(ATTEMPTS):
                    try:
                        runs[kind].append(run_vm(lab, kind, man, lab.fresh_images()))
                        break
                    except RuntimeError as e:
                        # Counted and shown, then booted again: one bad
                        # boot should not cost the whole run.
                        failed[kind] += 1
                        print(f"linux-lab: {kind} run failed ({e}); again", flush=True)
                else:
                    sys.exit(f"linux-lab: {kind} failed {ATTEMPTS} times in a row")
            print(f"linux-lab: round {r + 1} done at {time.monotonic() - t0:.0f} s", flush=True)
    print("\nLinux guest (Debian cloud 6.1, 1 vCPU, 512 MiB) in vireo run vs "
          "qemu-system-x86_64 -accel kvm -M pc (qboot), inside scripts/lab "
          "(QEMU TCG EPYC+SVM, nested KVM);")
    print(f"medians of {ROUNDS} rounds, alternating; disks cache=none "
          "(QEMU aio=io_uring) on ext4/loop in RAM; QEMU virtio-net vhost=off "
          "unless said; CPU = VMM process utime+stime per GB during the test")
    report(runs, have_vhost)
    print("runs that failed and were repeated: "
          + ", ".join(f"{k} {n}" for k, n in failed.items()))


if __name__ == "__main__":
    main()

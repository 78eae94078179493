# SPDX-License-Identifier: Apache-2.0
"""Ring-3 guest drivers (tests/guests/guests/virtio_*.c) against virtio-pci
devices: QEMU's (TCG, the reference) and vireo's (`--disk`, `--net`,
`--rng`).  Each guest drives a modern virtio-pci device through its
capabilities, split virtqueues and MSI-X; every completion it waits for must
also raise its queue's MSI-X interrupt, which the guest counts in an IDT
handler.  The host side then checks what the guest did:

- virtio_blk writes a seeded pattern at known sectors (incl. the last ones),
  flushes, reads back, discards, write-zeroes; this file recomputes the
  pattern and reads the image (qcow2 through qemu-img convert).
- virtio_net talks ARP, ICMP echo and UDP to the host end of a tap inside a
  network namespace created here, with a UDP echo server in that namespace.
- virtio_rng reads random bytes twice; with --vsock it also finds the
  virtio-vsock function and reads its guest CID.

QEMU boots the bzImage through qboot on -M pc (microvm has no PCI); vireo
boots both the bzImage (64-bit entry) and the PVH ELF."""
import os
import re
import secrets
import select
import shutil
import socket
import struct
import subprocess
import sys
import time

import pytest

from conftest import run, tap_fd_launcher
from test_vhost_user_lib import Backend, tcg_smp

MEMORY = "128M"
QEMU = shutil.which("qemu-system-x86_64")
QEMU_IMG = shutil.which("qemu-img")
QBOOT = "/usr/share/qemu/qboot.rom"
DISK_BYTES = 8 << 20
SECTOR = 512
REGION = 128                      # sectors, as in virtio_blk.c
M64 = (1 << 64) - 1
HOST_IP, GUEST_IP = "10.77.0.1", "10.77.0.2"
GUEST_MAC = "52:54:00:76:69:72"
ECHO_PORT = 7777


def pass_line(name):
    return f"VIREO-GUEST: PASS {name}"


def image(guests, name, fmt):
    path = guests / f"{name}.{fmt}"
    if not path.exists():
        pytest.fail(f"guest image {path} missing: run 'make guests'")
    return str(path)


# ---------------------------------------------------------------- disk pattern


def pat(seed, w):
    """virtio_blk.c's pat(): the 64-bit word at byte offset 8*w."""
    x = (((w + 1) * 0x9E3779B97F4A7C15) & M64) ^ seed
    x ^= x >> 29
    x = (x * 0xBF58476D1CE4E5B9) & M64
    return x ^ (x >> 32)


def pattern(seed, sector, nsect):
    w0 = sector * SECTOR // 8
    n = nsect * SECTOR // 8
    return struct.pack(f"<{n}Q", *(pat(seed, w0 + i) for i in range(n)))


def pattern_regions(capacity):
    return [0, 2049, (capacity // 2) & ~7, capacity - REGION]


def write_pattern(path, seed):
    """What a read-only run must find: the pattern regions, written here."""
    capacity = DISK_BYTES // SECTOR
    with open(path, "r+b") as f:
        for s in pattern_regions(capacity):
            f.seek(s * SECTOR)
            f.write(pattern(seed, s, REGION))


def check_disk(raw, seed, out):
    """The image after a read-write run, as virtio_blk.c documents it."""
    data = open(raw, "rb").read()
    assert len(data) == DISK_BYTES
    capacity = DISK_BYTES // SECTOR
    for s in pattern_regions(capacity):
        got = data[s * SECTOR:(s + REGION) * SECTOR]
        assert got == pattern(seed, s, REGION), f"pattern at sector {s} not on disk"
    if "BLK: write-zeroes verified" in out:
        base = 6144
        want = bytearray(pattern(seed, base, REGION))
        want[32 * SECTOR:96 * SECTOR] = bytes(64 * SECTOR)
        assert data[base * SECTOR:(base + REGION) * SECTOR] == want, \
            "write-zeroes region: pattern/zeros/pattern not on disk"


def qcow2_to_raw(path, tmp_path):
    raw = tmp_path / "converted.raw"
    subprocess.run([QEMU_IMG, "convert", "-f", "qcow2", "-O", "raw", str(path), str(raw)],
                   check=True, capture_output=True)
    return raw


def new_disk(tmp_path, fmt, seed=None):
    """A blank (or, with a seed, pre-patterned) 8 MiB disk in raw or qcow2."""
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as f:
        f.truncate(DISK_BYTES)
    if seed is not None:
        write_pattern(raw, seed)
    if fmt == "raw":
        return raw
    if QEMU_IMG is None:
        pytest.skip("SKIPPED: qemu-img is not installed")
    q = tmp_path / "disk.qcow2"
    subprocess.run([QEMU_IMG, "convert", "-f", "raw", "-O", "qcow2", str(raw), str(q)],
                   check=True, capture_output=True)
    return q


# ---------------------------------------------------------------- network namespace


ECHO_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(4096)
    s.sendto(b"ECHO " + data, addr)
"""


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, check=check)


@pytest.fixture
def netns(request):
    """A namespace with tap0 (HOST_IP/24, up) and a UDP echo server on
    HOST_IP:ECHO_PORT; deleted, with everything in it, afterwards."""
    return make_netns(request)


@pytest.fixture
def netns_mq(request):
    """netns with a multi-queue tap0 (for --net tap=tap0,queues=N)."""
    return make_netns(request, multi_queue=True)


def make_netns(request, multi_queue=False):
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("SKIPPED: network namespaces need root and iproute2")
    name = f"vireo-t-{os.getpid()}-{secrets.token_hex(3)}"
    ip("netns", "add", name)
    server = None

    def cleanup():
        if server is not None:
            server.kill()
            server.wait()
        ip("netns", "del", name, check=False)
    request.addfinalizer(cleanup)

    def ns(*args):
        return subprocess.run(["ip", "netns", "exec", name, *args], capture_output=True,
                              check=True)
    ns("ip", "link", "set", "lo", "up")
    ns("ip", "tuntap", "add", "dev", "tap0", "mode", "tap", "vnet_hdr",
       *(["multi_queue"] if multi_queue else []))
    ns("ip", "addr", "add", f"{HOST_IP}/24", "dev", "tap0")
    ns("ip", "link", "set", "tap0", "up")
    server = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", ECHO_SERVER,
                               HOST_IP, str(ECHO_PORT)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    line = server.stdout.readline()
    assert line.strip() == b"ready", f"echo server: {line!r} {server.stderr.read()!r}"
    return name


def net_cmdline(token):
    return (f"guest_ip={GUEST_IP} host_ip={HOST_IP} port={ECHO_PORT} token={token} "
            f"expect_mac={GUEST_MAC}")


def check_net(out, token):
    assert "NET: ICMP echo reply verified" in out, out
    assert f'NET: UDP echo verified: "ECHO vireo-udp {token}"' in out, out


# Small mergeable receive buffers and a ping whose reply (1442-byte frame)
# needs six of them.
MERGEABLE = "mrg_rxbuf=256 ping_len=1400"


def check_mergeable(out):
    """The guest's summary: some frame took several buffers (6 for the reply)."""
    m = re.search(r"NET: mergeable: (\d+) frames in (\d+) buffers of 256 bytes, "
                  r"(\d+) over several \(most (\d+)\)", out)
    assert m, out
    assert int(m.group(3)) >= 1 and int(m.group(4)) >= 6, m.group(0)


# The ring features the guests negotiate (and then require) on top of
# VERSION_1: plain split rings, or doorbells by avail_event and
# multi-buffer chains through indirect tables.
RING_FEATURES = ["", "event_idx indirect"]
FORMATS = ["bzImage", "elf"]


# ---------------------------------------------------------------- QEMU (TCG)


@pytest.fixture(scope="session")
def qemu():
    if QEMU is None:
        pytest.skip("SKIPPED: qemu-system-x86_64 is not installed")
    if not os.path.exists(QBOOT):
        pytest.skip(f"SKIPPED: {QBOOT} missing (qemu-system-data)")
    return [QEMU, "-accel", "tcg", "-cpu", "max", "-M", "pc", "-bios", QBOOT, "-nodefaults",
            "-no-user-config", "-nographic", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0x501,iosize=1", "-m", MEMORY, "-no-reboot"]


def qemu_run(qemu, guests, name, cmdline, devices, netns=None, timeout=60):
    args = qemu + ["-kernel", image(guests, name, "bzImage"), "-append", cmdline] + devices
    if netns:
        args = ["ip", "netns", "exec", netns] + args
    r = run(args, timeout=timeout, stdin=subprocess.DEVNULL)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    # 0: ACPI power-off (guest_pass waits for it before the debug exit).
    assert pass_line(name) in out, f"no PASS line (rc {r.returncode})\n{out}\n{err}"
    assert r.returncode == 0, f"exit {r.returncode}\n{out}\n{err}"
    return out


def qemu_disk(path, fmt="raw", readonly=False, serial="vireo-disk"):
    ro = ",readonly=on" if readonly else ""
    return ["-drive", f"file={path},if=none,id=d0,format={fmt}{ro}",
            "-device", f"virtio-blk-pci,drive=d0,disable-legacy=on,serial={serial}"]


@pytest.mark.parametrize("features", RING_FEATURES)
def test_qemu_blk(qemu, guests, tmp_path, features):
    seed = secrets.randbits(48)
    disk = new_disk(tmp_path, "raw")
    out = qemu_run(qemu, guests, "virtio_blk", f"seed={seed} expect_id=vireo-disk {features}",
                   qemu_disk(disk))
    assert 'GET_ID status 0 id "vireo-disk"' in out
    check_disk(disk, seed, out)


def test_qemu_blk_readonly(qemu, guests, tmp_path):
    seed = secrets.randbits(48)
    disk = new_disk(tmp_path, "raw", seed=seed)
    before = disk.read_bytes()
    out = qemu_run(qemu, guests, "virtio_blk", f"seed={seed} readonly",
                   qemu_disk(disk, readonly=True))
    assert "write refused" in out
    assert disk.read_bytes() == before


@pytest.mark.parametrize("features", RING_FEATURES)
def test_qemu_rng(qemu, guests, features):
    qemu_run(qemu, guests, "virtio_rng", features, ["-device", "virtio-rng-pci,disable-legacy=on"])


QEMU_TAP_NET = ["-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off",
                "-device", f"virtio-net-pci,netdev=n0,disable-legacy=on,mac={GUEST_MAC}"]


@pytest.mark.parametrize("features", RING_FEATURES)
def test_qemu_net(qemu, guests, netns, features):
    token = secrets.token_hex(6)
    out = qemu_run(qemu, guests, "virtio_net", f"{net_cmdline(token)} {features}",
                   QEMU_TAP_NET, netns=netns)
    check_net(out, token)


def test_qemu_net_mergeable(qemu, guests, netns):
    """The reference for mrg_rxbuf: QEMU's virtio-net spreads a 1442-byte
    echo reply over 256-byte receive buffers."""
    token = secrets.token_hex(6)
    out = qemu_run(qemu, guests, "virtio_net", f"{net_cmdline(token)} {MERGEABLE}",
                   QEMU_TAP_NET, netns=netns)
    check_net(out, token)
    check_mergeable(out)


def test_qemu_net_multiqueue(qemu, guests, netns_mq):
    """The reference for expect_pairs: QEMU's multi-queue virtio-net."""
    token = secrets.token_hex(6)
    out = qemu_run(qemu, guests, "virtio_net", f"{net_cmdline(token)} expect_pairs=2",
                   ["-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no,vhost=off,queues=2",
                    "-device", f"virtio-net-pci,netdev=n0,disable-legacy=on,mq=on,vectors=6,"
                    f"mac={GUEST_MAC}"], netns=netns_mq)
    check_net(out, token)
    assert "NET: 2 queue pairs enabled" in out, out


# ---------------------------------------------------------------- vireo


@pytest.fixture(scope="session")
def vireo_virtio(vireo):
    """vireo with the virtio-pci options; a vireo without them is reported
    as skipped, never as passing."""
    r = run([vireo, "run", "--help"])
    text = (r.stdout + r.stderr).decode(errors="replace")
    for opt in ("--disk", "--net", "--rng"):
        if opt not in text:
            pytest.skip(f"SKIPPED: vireo run has no {opt} yet")
    return vireo


def vireo_run(vireo, guests, name, fmt, cmdline, options, netns=None, timeout=60):
    args = [vireo, "run", "--kernel", image(guests, name, fmt), "--memory", MEMORY,
            "--cmdline", cmdline, "--debug-exit"] + options
    if netns:
        args = ["ip", "netns", "exec", netns] + args
    r = run(args, timeout=timeout, stdin=subprocess.DEVNULL)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    assert pass_line(name) in out, f"no PASS line (rc {r.returncode})\n{out}\n{err}"
    assert r.returncode == 0, f"exit {r.returncode}\n{out}\n{err}"
    return out




@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("disk_fmt", ["raw", "qcow2"])
@pytest.mark.parametrize("features", RING_FEATURES)
def test_vireo_blk(vireo_virtio, guests, kvm, tmp_path, fmt, disk_fmt, features):
    seed = secrets.randbits(48)
    disk = new_disk(tmp_path, disk_fmt)
    out = vireo_run(vireo_virtio, guests, "virtio_blk", fmt,
                    f"seed={seed} expect_id=vireo-disk {features}",
                    ["--disk", f"{disk},format={disk_fmt},serial=vireo-disk"])
    assert "BLK: flush ok" in out and "BLK: discard ok" in out, out
    assert "BLK: 8 concurrent reads verified" in out, out
    raw = disk if disk_fmt == "raw" else qcow2_to_raw(disk, tmp_path)
    check_disk(raw, seed, out)


@pytest.mark.kvm
@pytest.mark.parametrize("disk_fmt", ["raw", "qcow2"])
def test_vireo_blk_readonly(vireo_virtio, guests, kvm, tmp_path, disk_fmt):
    seed = secrets.randbits(48)
    disk = new_disk(tmp_path, disk_fmt, seed=seed)
    before = disk.read_bytes()
    out = vireo_run(vireo_virtio, guests, "virtio_blk", "elf", f"seed={seed} readonly",
                    ["--disk", f"{disk},format={disk_fmt},readonly=on"])
    assert "write refused" in out, out
    assert disk.read_bytes() == before


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("features", RING_FEATURES)
def test_vireo_rng(vireo_virtio, guests, kvm, fmt, features):
    vireo_run(vireo_virtio, guests, "virtio_rng", fmt, features, ["--rng"])


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("features", RING_FEATURES)
def test_vireo_net(vireo_virtio, guests, kvm, netns, fmt, features):
    token = secrets.token_hex(6)
    out = vireo_run(vireo_virtio, guests, "virtio_net", fmt, f"{net_cmdline(token)} {features}",
                    ["--net", f"tap=tap0,mac={GUEST_MAC}"], netns=netns)
    check_net(out, token)


@pytest.mark.kvm
@pytest.mark.parametrize("features", RING_FEATURES)
def test_vireo_net_multiqueue(vireo_virtio, guests, kvm, netns_mq, features):
    """queues=2 on a multi-queue tap: the device offers VIRTIO_NET_F_MQ with
    max_virtqueue_pairs 2, the guest enables both pairs through the control
    queue and transmits on each."""
    token = secrets.token_hex(6)
    out = vireo_run(vireo_virtio, guests, "virtio_net", "elf",
                    f"{net_cmdline(token)} expect_pairs=2 {features}",
                    ["--net", f"tap=tap0,queues=2,mac={GUEST_MAC}"], netns=netns_mq)
    check_net(out, token)
    assert "NET: 2 queue pairs enabled" in out, out
    assert "NET: pair 1:" in out, out


@pytest.mark.kvm
@pytest.mark.parametrize("features", RING_FEATURES)
def test_vireo_net_mergeable(vireo_virtio, guests, kvm, netns, features):
    token = secrets.token_hex(6)
    out = vireo_run(vireo_virtio, guests, "virtio_net", "elf",
                    f"{net_cmdline(token)} {MERGEABLE} {features}",
                    ["--net", f"tap=tap0,mac={GUEST_MAC}"], netns=netns)
    check_net(out, token)
    check_mergeable(out)


TAP_FD_LAUNCHER = tap_fd_launcher("tap0")


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
def test_vireo_net_fd(vireo_virtio, guests, kvm, netns, fmt):
    """--net fd=N: a tap the caller opened and handed in."""
    token = secrets.token_hex(6)
    args = ["ip", "netns", "exec", netns, sys.executable, "-c", TAP_FD_LAUNCHER, vireo_virtio,
            "run", "--kernel", image(guests, "virtio_net", fmt), "--memory", MEMORY,
            "--cmdline", net_cmdline(token), "--debug-exit", "--net", f"fd=@FD@,mac={GUEST_MAC}"]
    r = run(args, timeout=60, stdin=subprocess.DEVNULL)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    assert pass_line("virtio_net") in out, f"no PASS line (rc {r.returncode})\n{out}\n{err}"
    assert r.returncode == 0, f"exit {r.returncode}\n{out}\n{err}"
    check_net(out, token)


@pytest.mark.kvm
def test_vireo_all_devices(vireo_virtio, guests, kvm, tmp_path):
    """Several virtio functions on one bus: each guest finds its own among
    the others, and MSI-X vectors of different devices do not mix."""
    seed = secrets.randbits(48)
    disk = new_disk(tmp_path, "raw")
    opts = ["--rng", "--disk", f"{disk},format=raw"]
    vireo_run(vireo_virtio, guests, "virtio_rng", "elf", "", opts)
    out = vireo_run(vireo_virtio, guests, "virtio_blk", "elf", f"seed={seed}", opts)
    check_disk(disk, seed, out)


@pytest.mark.kvm
def test_vireo_vsock_on_pci(vireo_virtio, guests, kvm, tmp_path):
    """--vsock puts a virtio-vsock function on the bus with the CID asked
    for; its socket exists while the VM runs and is removed at the end."""
    sock = tmp_path / "v.sock"
    out = vireo_run(vireo_virtio, guests, "virtio_rng", "elf", "expect_vsock_cid=4097",
                    ["--rng", "--vsock", f"cid=4097,uds={sock}"])
    assert "VSOCK: guest_cid 4097" in out, out
    assert not sock.exists(), "the vsock socket outlived vireo"


def wait_path(path, proc, timeout=10):
    end = time.time() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
        assert time.time() < end, f"{path} did not appear"
        time.sleep(0.02)


@pytest.mark.kvm
def test_vireo_vsock_socket_waits_for_a_driver(vireo_virtio, guests, kvm, tmp_path):
    """The host side of the hybrid convention on a guest that has no vsock
    driver: the socket accepts and takes "CONNECT <port>", and the request
    waits (neither "OK" nor a close) until a guest driver could answer."""
    sock = tmp_path / "v.sock"
    proc = subprocess.Popen([vireo_virtio, "run", "--kernel", str(guests / "counter.elf"),
                             "--memory", MEMORY, "--cmdline", "every=1000000000",
                             "--vsock", f"cid=3,uds={sock}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_path(sock, proc)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(sock))
            s.sendall(b"CONNECT 1234\n")
            s.settimeout(0.5)
            with pytest.raises(socket.timeout):
                s.recv(64)
        assert proc.poll() is None, "vireo ended on a vsock connection"
    finally:
        proc.kill()
        proc.wait()


def read_until(proc, want, timeout=30):
    """stdout of proc until `want` appears; everything read so far."""
    buf = b""
    end = time.time() + timeout
    while want.encode() not in buf:
        left = end - time.time()
        assert left > 0, f"no {want!r} within {timeout} s:\n{buf.decode(errors='replace')}"
        r, _, _ = select.select([proc.stdout], [], [], left)
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"vireo ended before {want!r}:\n{buf.decode(errors='replace')}"
            buf += chunk
    return buf.decode(errors="replace")


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("features", RING_FEATURES)
def test_vireo_console_virtio(vireo_virtio, guests, kvm, fmt, features):
    """--console virtio: hvc0's output reaches stdout, and a line written on
    vireo's stdin reaches the guest through the receive queue (COM1 gets
    none of it: the guest echoes what it read through hvc0)."""
    token, word = secrets.token_hex(6), secrets.token_hex(8)
    proc = subprocess.Popen([vireo_virtio, "run", "--kernel", image(guests, "virtio_console", fmt),
                             "--memory", MEMORY, "--cmdline", f"token={token} {features}",
                             "--debug-exit", "--console", "virtio"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = read_until(proc, f"HVC hello {token}\n")
        proc.stdin.write(f"ping {word}\n".encode())
        proc.stdin.flush()
        out += read_until(proc, pass_line("virtio_console"))
        rest, err = proc.communicate(timeout=30)
        out += rest.decode(errors="replace")
    finally:
        proc.kill()
    assert f"HVC echo ping {word}\n" in out, out
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err.decode(errors='replace')}"


# ---------------------------------------------------------------- devices through the API


def api_vm(vireo, tmp_path, netns=None):
    """`vireo run --api-socket` with nothing configured; (process, socket)."""
    from vmapi import wait_socket
    sock = str(tmp_path / f"api-{secrets.token_hex(3)}.sock")
    args = [vireo, "run", "--api-socket", sock, "--debug-exit"]
    if netns:
        args = ["ip", "netns", "exec", netns] + args
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    wait_socket(sock, proc)
    return proc, sock


def end_vm(proc):
    """Kill a vireo the test started, unless it already ended."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def api_boot(proc, sock, name, timeout=60):
    from vmapi import api
    assert api(sock, "PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    out, err = proc.communicate(timeout=timeout)
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    assert pass_line(name) in out, f"no PASS line (rc {proc.returncode})\n{out}\n{err}"
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    return out


@pytest.mark.kvm
def test_vireo_drives_through_the_api(vireo_virtio, guests, kvm, tmp_path):
    """PUT /drives as a Firecracker client does it: the root drive is the
    guest's first disk whatever order the drives came in, its drive_id is
    the serial the guest reads."""
    from vmapi import api
    seed = secrets.randbits(48)
    disk = new_disk(tmp_path, "qcow2")
    spare = tmp_path / "spare.raw"
    spare.write_bytes(bytes(1 << 20))
    proc, sock = api_vm(vireo_virtio, tmp_path)
    try:
        assert api(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})[0] == 204
        assert api(sock, "PUT", "/boot-source", {
            "kernel_image_path": image(guests, "virtio_blk", "elf"),
            "boot_args": f"seed={seed} expect_id=rootfs"})[0] == 204
        assert api(sock, "PUT", "/drives/scratch", {
            "drive_id": "scratch", "path_on_host": str(spare), "is_root_device": False,
            "is_read_only": True})[0] == 204
        assert api(sock, "PUT", "/drives/rootfs", {
            "drive_id": "rootfs", "path_on_host": str(disk), "is_root_device": True,
            "is_read_only": False})[0] == 204
        status, cfg = api(sock, "GET", "/vm/config")
        assert status == 200
        assert cfg["drives"][0]["path_on_host"] == str(disk)
        out = api_boot(proc, sock, "virtio_blk")
    finally:
        end_vm(proc)
    assert "BLK: flush ok" in out and "BLK: discard ok" in out, out
    check_disk(qcow2_to_raw(disk, tmp_path), seed, out)
    assert spare.read_bytes() == bytes(1 << 20)


@pytest.mark.kvm
def test_vireo_entropy_through_the_api(vireo_virtio, guests, kvm, tmp_path):
    """PUT /entropy adds the virtio-rng device the guest then reads from."""
    from vmapi import api
    proc, sock = api_vm(vireo_virtio, tmp_path)
    try:
        assert api(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})[0] == 204
        assert api(sock, "PUT", "/boot-source", {
            "kernel_image_path": image(guests, "virtio_rng", "elf")})[0] == 204
        assert api(sock, "PUT", "/entropy", {})[0] == 204
        assert api(sock, "GET", "/vm/config")[1]["entropy"] == {}
        api_boot(proc, sock, "virtio_rng")
    finally:
        end_vm(proc)


@pytest.mark.kvm
def test_vireo_network_interface_through_the_api(vireo_virtio, guests, kvm, netns, tmp_path):
    from vmapi import api
    token = secrets.token_hex(6)
    proc, sock = api_vm(vireo_virtio, tmp_path, netns=netns)
    try:
        assert api(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})[0] == 204
        assert api(sock, "PUT", "/boot-source", {
            "kernel_image_path": image(guests, "virtio_net", "elf"),
            "boot_args": net_cmdline(token)})[0] == 204
        assert api(sock, "PUT", "/network-interfaces/eth0", {
            "iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": GUEST_MAC})[0] == 204
        out = api_boot(proc, sock, "virtio_net")
    finally:
        end_vm(proc)
    check_net(out, token)


@pytest.mark.kvm
def test_vireo_net_fd_survives_a_failed_start(vireo_virtio, guests, kvm, netns, tmp_path):
    """--net fd=N with the API: a start that fails (the boot source is not a
    kernel) leaves the tap fd usable, and the next start boots with it."""
    from vmapi import api, wait_socket
    token = secrets.token_hex(6)
    sock = str(tmp_path / "api.sock")
    junk = tmp_path / "not-a-kernel"
    junk.write_text("hello\n" * 100)
    proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", TAP_FD_LAUNCHER,
                             vireo_virtio, "run", "--api-socket", sock, "--debug-exit",
                             "--net", f"fd=@FD@,mac={GUEST_MAC}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_socket(sock, proc)
        assert api(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})[0] == 204
        assert api(sock, "PUT", "/boot-source", {"kernel_image_path": str(junk)})[0] == 204
        status, body = api(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        assert status == 400, body
        assert api(sock, "PUT", "/boot-source", {
            "kernel_image_path": image(guests, "virtio_net", "elf"),
            "boot_args": net_cmdline(token)})[0] == 204
        out = api_boot(proc, sock, "virtio_net")
    finally:
        end_vm(proc)
    check_net(out, token)


# ---------------------------------------------------------------- vireo's vhost-user back ends (QEMU TCG)
#
# The same ring-3 drivers under QEMU's TCG, with vireo's device code behind
# QEMU's vhost-user front ends: the device side of `vireo run` (one code
# path) driven by these guests on hosts without KVM. Guest memory is a
# shared memfd; `-smp 1,maxcpus=2` keeps TCG's memory barriers (see tcg_smp).


@pytest.fixture(scope="session")
def qemu_vu(qemu):
    return qemu + ["-smp", tcg_smp(1),
                   "-object", f"memory-backend-memfd,id=mem,size={MEMORY},share=on",
                   "-machine", "memory-backend=mem"]


def backend(vireo, tmp_path, args, netns=None):
    sock = str(tmp_path / "vu.sock")
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return Backend([vireo, "vhost-user", *args, "--socket", sock, "-v"], sock,
                   tmp_path / "backend.log", prefix=prefix), sock


def qemu_vu_run(qemu_vu, guests, name, cmdline, devices, be):
    try:
        out = qemu_run(qemu_vu, guests, name, cmdline, devices, timeout=180)
    finally:
        rc = be.stop()
    log = be.output()
    assert "needs reset" not in log, log
    assert rc == 0, log
    return out


@pytest.mark.parametrize("disk_fmt", ["raw", "qcow2"])
@pytest.mark.parametrize("features", RING_FEATURES)
def test_vhost_user_blk_guest(qemu_vu, vireo, guests, tmp_path, disk_fmt, features):
    seed = secrets.randbits(48)
    disk = new_disk(tmp_path, disk_fmt)
    be, sock = backend(vireo, tmp_path, ["blk", "--image", str(disk), "--format", disk_fmt])
    out = qemu_vu_run(qemu_vu, guests, "virtio_blk", f"seed={seed} {features}",
                      ["-chardev", f"socket,id=c0,path={sock}",
                       "-device", "vhost-user-blk-pci,chardev=c0,disable-legacy=on"], be)
    assert "BLK: flush ok" in out and "BLK: discard ok" in out, out
    assert "BLK: 8 concurrent reads verified" in out, out
    raw = disk if disk_fmt == "raw" else qcow2_to_raw(disk, tmp_path)
    check_disk(raw, seed, out)


def test_vhost_user_blk_guest_readonly(qemu_vu, vireo, guests, tmp_path):
    seed = secrets.randbits(48)
    disk = new_disk(tmp_path, "raw", seed=seed)
    before = disk.read_bytes()
    be, sock = backend(vireo, tmp_path, ["blk", "--image", str(disk), "--readonly"])
    out = qemu_vu_run(qemu_vu, guests, "virtio_blk", f"seed={seed} readonly",
                      ["-chardev", f"socket,id=c0,path={sock}",
                       "-device", "vhost-user-blk-pci,chardev=c0,disable-legacy=on"], be)
    assert "write refused" in out, out
    assert disk.read_bytes() == before


# No virtio_net guest here: Debian's QEMU 7.2 segfaults in vhost_net_start
# (msix_set_vector_notifiers) as soon as a guest enables vhost-user-net with
# MSI-X under TCG, and these guests need MSI-X. Linux's driver covers that
# back end with INTx (test_vhost_user_net.py).


@pytest.mark.parametrize("features", RING_FEATURES)
def test_vhost_user_rng_guest(qemu_vu, vireo, guests, tmp_path, features):
    be, sock = backend(vireo, tmp_path, ["rng"])
    qemu_vu_run(qemu_vu, guests, "virtio_rng", features,
                ["-chardev", f"socket,id=c0,path={sock}",
                 "-device", "vhost-user-rng-pci,chardev=c0"], be)

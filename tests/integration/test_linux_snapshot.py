# SPDX-License-Identifier: Apache-2.0
"""Pause, snapshot and restore of a running Linux guest through the API:
its counter stops and goes on, and after a restore in a new process (or in
two clones at once) its disk, network and vsock still work, and the file
system on its disk checks clean from the host, even when the snapshot is
taken during heavy disk I/O.

The guest prints `TICK n` every 0.2 s from a background loop and runs the
commands the test types on its serial console (each a shell function below
that reports through a marker), so the same guest can be driven after a
restore."""
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid

import pytest

from conftest import run
from linux_vm import LinuxVM
from vmapi import api

MiB = 1 << 20
HOST_IP, GUEST_IP = "10.77.0.1", "10.77.0.2"

# Console input is the command channel, so it must not echo: the echo of a
# command would show its text next to the markers.
COMMON = r"""
ln -sf /proc/mounts /etc/mtab
stty -echo 2>/dev/null
ticker() { i=0; while :; do i=$((i + 1)); echo "TICK $i"; sleep 0.2; done; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# a new file, and an old one read back from the disk (not the page cache)
diskcheck() {
  dd if=/dev/urandom of=/mnt/$1 bs=64k count=16 2>/dev/null; sync
  echo 3 > /proc/sys/vm/drop_caches
  echo "DISKCHECK $1 $(sha /mnt/$1) $(sha /mnt/before)"
}
netcheck() {
  if ping -c 3 -W 10 $HOST_IP >/dev/null 2>&1; then echo "NETCHECK $1 ok"; else echo "NETCHECK $1 fail"; fi
}
# errors from virtio (a ring gone wrong) or the net or block drivers
kerrors() { dmesg | grep -iE "virtio|not a head|broken|blk_update_request|I/O error|EXT4-fs error" | sed 's/^/KMSG /'
  echo "KERRORS $(dmesg | grep -ciE 'not a head|broken|blk_update_request|I/O error|EXT4-fs error')"; }
finish() { sync; umount /mnt && echo UMOUNTED; poweroff -f; }
"""

MAIN_LOOP = r"""
ticker &
echo GUEST-READY
while read -r line; do eval "$line"; done
"""


def guest_script(body):
    return COMMON.replace("$HOST_IP", HOST_IP) + body + MAIN_LOOP


def wait_api(sock, vm, timeout=60):
    deadline = time.monotonic() + timeout
    while not os.path.exists(sock):
        if vm.proc.poll() is not None:
            pytest.fail(f"vireo exited {vm.proc.returncode}:\n{vm.tail()}")
        if time.monotonic() > deadline:
            pytest.fail("the API socket did not appear")
        time.sleep(0.05)


def call(sock, method, path, body=None, want=204):
    status, reply = api(str(sock), method, path, body)
    assert status == want, f"{method} {path}: {status} {reply}"
    return reply


def console(vm):
    with vm.lock:
        return vm.buf


def ticks(data):
    """[(n, end offset)] of every complete TICK line in console bytes."""
    return [(int(m.group(1)), m.end()) for m in re.finditer(rb"TICK (\d+)\r?\n", data)]


def last_tick(vm):
    t = ticks(console(vm))
    assert t, f"the guest never ticked:\n{vm.tail()}"
    return t[-1]


def pause(vm, sock, settle=True):
    """Pauses the VM; returns its last tick once the console is quiet."""
    call(sock, "PATCH", "/vm", {"state": "Paused"})
    if settle:
        assert call(sock, "GET", "/", want=200)["state"] == "Paused"
        time.sleep(1)          # what the guest wrote before the pause drains
    return last_tick(vm)


def snapshot(vm, sock, d, name="s", settle=True):
    """Pause, snapshot to d/name.state + d/name.mem, kill; the last tick.
    settle=False takes the snapshot right after the pause."""
    pause(vm, sock, settle)
    call(sock, "PUT", "/snapshot/create", {"snapshot_type": "Full",
                                           "snapshot_path": str(d / f"{name}.state"),
                                           "mem_file_path": str(d / f"{name}.mem")})
    if not settle:
        time.sleep(1)
    last = last_tick(vm)
    vm.kill()
    return last[0]


def restore(vireo, tmp_path, d, name, extra=(), vm_name="restored", **kw):
    return LinuxVM(vireo, tmp_path, boot=False, name=vm_name,
                   args=["--restore", str(d / f"{name}.state"),
                         "--restore-mem", str(d / f"{name}.mem"), *extra], **kw)


def assert_goes_on(vm, last):
    """The restored counter goes on from where it stopped, not from 1."""
    vm.expect(rf"TICK {last + 3}\r?\n", timeout=300)
    first = ticks(console(vm))[0][0]
    # the tick being printed at the pause may have gone half to the old process
    assert first in (last + 1, last + 2), f"restored at TICK {first}, paused at {last}"


def command(vm, cmd, pattern, timeout=300):
    """Types a command on the guest's console; returns the marker's match."""
    start = len(console(vm))
    vm.send(cmd + "\n")
    return vm.expect(pattern, timeout=timeout, start=start)


def fs_check(image, fmt, tmp_path, present=(), absent=()):
    """e2fsck -fn on the image (read by qemu-img) is clean; `present` files
    ({name: sha256}) are there with those contents, `absent` ones are not."""
    raw = tmp_path / (image.name + ".fsck.raw")
    r = run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(image), str(raw)], timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    r = run(["e2fsck", "-fn", str(raw)], timeout=300)
    assert r.returncode == 0, f"e2fsck on {image.name}: {r.stdout.decode()}{r.stderr.decode()}"
    for name, digest in dict(present).items():
        out = tmp_path / f"dump-{image.name}-{name}"
        r = run(["debugfs", "-R", f"dump /{name} {out}", str(raw)], timeout=60)
        assert out.exists(), f"/{name} missing from {image.name}: {r.stderr.decode()}"
        assert hashlib.sha256(out.read_bytes()).hexdigest() == digest, f"/{name} differs"
    for name in absent:
        r = run(["debugfs", "-R", f"stat /{name}", str(raw)], timeout=60)
        assert b"File not found" in r.stderr + r.stdout, f"/{name} is in {image.name}"
    raw.unlink()


TICKER = guest_script("")


def test_pause_stops_the_counter_and_resume_goes_on(linux, tmp_path):
    sock = tmp_path / "api.sock"
    with LinuxVM(linux, tmp_path, TICKER, api_socket=sock) as vm:
        vm.expect(r"TICK 5\r?\n", timeout=300)
        wait_api(str(sock), vm)
        n, end = pause(vm, sock)
        quiet = console(vm)
        time.sleep(3)        # 15 ticks' worth
        assert console(vm) == quiet, "the guest went on while paused"
        assert call(sock, "GET", "/", want=200)["state"] == "Paused"
        call(sock, "PATCH", "/vm", {"state": "Resumed"})
        assert call(sock, "GET", "/", want=200)["state"] == "Running"
        vm.expect(rf"TICK {n + 2}\r?\n", timeout=300, start=end)
        vm.expect(rf"TICK {n + 5}\r?\n", timeout=300, start=end)
        after = [k for k, _ in ticks(console(vm)) if k > n]
        assert after[:4] == [n + 1, n + 2, n + 3, n + 4], f"ticks after resume: {after[:10]}"


@pytest.fixture
def netns():
    """A network namespace with a persistent tap at HOST_IP, and `vireo`
    run inside it through a wrapper (the tap lives in the namespace)."""
    if os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists("/dev/net/tun"):
        pytest.fail("needs root, iproute2 and /dev/net/tun to make a network namespace")
    ns = "vireo-ls-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ex = ["ip", "netns", "exec", ns]
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["ip", "tuntap", "add", "dev", "vstap0", "mode", "tap", "vnet_hdr"],
                    ["ip", "addr", "add", f"{HOST_IP}/24", "dev", "vstap0"],
                    ["ip", "link", "set", "vstap0", "up"]):
            subprocess.run(ex + cmd, check=True, capture_output=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def in_netns(vireo, ns, tmp_path):
    w = tmp_path / "vireo-in-netns"
    w.write_text(f"#!/bin/sh\nexec ip netns exec {ns} {vireo} \"$@\"\n")
    w.chmod(0o755)
    return str(w)


DISK_NET = guest_script(r"""
/sbin/mke2fs -q -F -t ext4 /dev/vda && mount -t ext4 /dev/vda /mnt && echo DISK-READY
dd if=/dev/urandom of=/mnt/before bs=64k count=8 2>/dev/null && sync
echo "BEFORE $(sha /mnt/before)"
ip addr add 10.77.0.2/24 dev eth0 && ip link set eth0 up && echo NET-READY
""")


def test_snapshot_kill_restore_keeps_counter_disk_and_network(linux, tmp_path, netns):
    vireo = in_netns(linux, netns, tmp_path)
    disk = tmp_path / "disk.qcow2"
    assert run([linux, "img", "create", "-f", "qcow2", str(disk), "128M"]).returncode == 0
    sock = tmp_path / "api.sock"
    with LinuxVM(vireo, tmp_path, DISK_NET, api_socket=sock, name="first",
                 args=["--disk", str(disk), "--net", "tap=vstap0"]) as vm:
        vm.expect("GUEST-READY", timeout=300)
        for m in ("DISK-READY", "NET-READY"):
            assert m in vm.output(), vm.tail()
        before = vm.expect(r"BEFORE ([0-9a-f]{64})").group(1).decode()
        # the network works before the snapshot, so a failure after is the restore's
        assert command(vm, "netcheck 0", r"NETCHECK 0 (\w+)\r?\n").group(1) == b"ok", vm.tail()
        vm.expect(r"TICK 3\r?\n", timeout=300)
        last = snapshot(vm, sock, tmp_path)

    # The VM moves to another tap (with the old one's MAC, as the guest's
    # ARP cache expects): the snapshot's tap is gone, so --net must name it.
    ex = ["ip", "netns", "exec", netns, "ip"]
    mac = subprocess.run(ex + ["-br", "link", "show", "vstap0"], check=True,
                         capture_output=True, text=True).stdout.split()[2]
    for cmd in (["tuntap", "del", "dev", "vstap0", "mode", "tap"],
                ["tuntap", "add", "dev", "vstap1", "mode", "tap", "vnet_hdr"],
                ["link", "set", "vstap1", "address", mac],
                ["addr", "add", f"{HOST_IP}/24", "dev", "vstap1"],
                ["link", "set", "vstap1", "up"]):
        subprocess.run(ex + cmd, check=True, capture_output=True)
    with restore(vireo, tmp_path, tmp_path, "s", extra=["--net", "tap=vstap1"]) as vm2:
        assert_goes_on(vm2, last)
        m = command(vm2, "diskcheck after", r"DISKCHECK after ([0-9a-f]{64}) ([0-9a-f]{64})")
        after = m.group(1).decode()
        assert m.group(2).decode() == before, "a file written before the snapshot changed"
        assert command(vm2, "netcheck 1", r"NETCHECK 1 (\w+)\r?\n").group(1) == b"ok", vm2.tail()
        r = run(["ip", "netns", "exec", netns, "busybox", "ping", "-c", "3", "-W", "10",
                 GUEST_IP], timeout=120)
        assert r.returncode == 0, \
            f"the host cannot ping the restored guest: {r.stdout.decode()}{r.stderr.decode()}"
        m = command(vm2, "kerrors", r"KERRORS (\d+)\r?\n")
        assert m.group(1) == b"0", f"the guest kernel logged errors:\n{vm2.tail()}"
        command(vm2, "finish", "UMOUNTED")
        assert vm2.wait(300) == 0
    fs_check(disk, "qcow2", tmp_path, present={"before": before, "after": after})


NET_ONLY = guest_script(r"""
ip addr add 10.77.0.2/24 dev eth0 && ip link set eth0 up && echo NET-READY
""")

# UDP datagrams to the guest, 200 a second: slow enough that the guest keeps
# RX buffers posted, so the device is filling them while the snapshot is taken.
FLOOD = f"""
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    s.sendto(b"x" * 512, ("{GUEST_IP}", 9))
    time.sleep(0.005)
"""


def test_snapshot_under_network_traffic_keeps_the_network(linux, tmp_path, netns):
    vireo = in_netns(linux, netns, tmp_path)
    sock = tmp_path / "api.sock"
    flood = None
    try:
        with LinuxVM(vireo, tmp_path, NET_ONLY, api_socket=sock, name="first",
                     args=["--net", "tap=vstap0"]) as vm:
            vm.expect("GUEST-READY", timeout=300)
            assert "NET-READY" in vm.output(), vm.tail()
            assert command(vm, "netcheck 0", r"NETCHECK 0 (\w+)\r?\n").group(1) == b"ok", vm.tail()
            flood = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", FLOOD])
            time.sleep(2)
            last = snapshot(vm, sock, tmp_path, settle=False)
        with restore(vireo, tmp_path, tmp_path, "s") as vm2:
            assert_goes_on(vm2, last)
            assert command(vm2, "netcheck 1", r"NETCHECK 1 (\w+)\r?\n").group(1) == b"ok", vm2.tail()
            flood.kill()
            flood.wait()
            m = command(vm2, "kerrors", r"KERRORS (\d+)\r?\n")
            assert m.group(1) == b"0", f"the guest kernel logged errors:\n{vm2.tail()}"
            command(vm2, "finish", "UMOUNTED|Power down")
            assert vm2.wait(300) == 0
    finally:
        if flood:
            flood.kill()
            flood.wait()


CLONE = guest_script(r"""
/sbin/mke2fs -q -F -t ext4 /dev/vda && mount -t ext4 /dev/vda /mnt && echo DISK-READY
dd if=/dev/urandom of=/mnt/before bs=64k count=8 2>/dev/null && sync
echo "BEFORE $(sha /mnt/before)"
""")


def fnv(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def vsock_exchange(uds, port, payload, timeout=120):
    """Connects through the clone's vsock socket to the guest's listener,
    sends payload and half-closes; returns the guest's reply line."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        try:
            s.connect(str(uds))
            s.sendall(f"CONNECT {port}\n".encode())
            line = b""
            while not line.endswith(b"\n"):
                d = s.recv(1)
                if not d:
                    raise ConnectionError("closed before OK")
                line += d
            break
        except (OSError, ConnectionError):
            s.close()
            if time.monotonic() > deadline:
                pytest.fail(f"no vsock connection through {uds}")
            time.sleep(0.3)
    assert line.startswith(b"OK "), line
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while not reply.endswith(b"\n"):
        d = s.recv(4096)
        if not d:
            break
        reply += d
    s.close()
    return reply.decode(errors="replace").strip()


def test_two_clones_run_side_by_side_with_their_own_overlays(linux, tmp_path):
    disk = tmp_path / "base.qcow2"
    assert run([linux, "img", "create", "-f", "qcow2", str(disk), "128M"]).returncode == 0
    sock = tmp_path / "api.sock"
    with LinuxVM(linux, tmp_path, CLONE, api_socket=sock, name="base",
                 args=["--disk", str(disk), "--vsock", f"cid=5,uds={tmp_path}/base.vsock"]) as vm:
        vm.expect("GUEST-READY", timeout=300)
        assert "DISK-READY" in vm.output(), vm.tail()
        before = vm.expect(r"BEFORE ([0-9a-f]{64})").group(1).decode()
        vm.expect(r"TICK 3\r?\n", timeout=300)
        last = snapshot(vm, sock, tmp_path)
    base_sha = hashlib.sha256(disk.read_bytes()).hexdigest()

    dirs = {c: tmp_path / f"clone-{c}" for c in "AB"}
    for d in dirs.values():
        d.mkdir()
    clones = {c: restore(linux, tmp_path, tmp_path, "s", vm_name=f"clone-{c}",
                         extra=["--clone-overlays", str(dirs[c])]) for c in "AB"}
    try:
        for vm in clones.values():
            assert_goes_on(vm, last)
        files = {}
        for c, vm in clones.items():
            m = command(vm, f"diskcheck clone-{c}",
                        rf"DISKCHECK clone-{c} ([0-9a-f]{{64}}) ([0-9a-f]{{64}})")
            files[c] = m.group(1).decode()
            assert m.group(2).decode() == before
            command(vm, "vsock-test listen 5000 &", "LISTENING 5000")
        payloads = {c: os.urandom(1000 + 1000 * i) for i, c in enumerate("AB")}
        for c, vm in clones.items():
            reply = vsock_exchange(dirs[c] / "vsock.sock", 5000, payloads[c])
            want = f"GOT {len(payloads[c])} {fnv(payloads[c]):08x}"
            assert reply == want, f"clone {c}: vsock reply {reply!r}, wanted {want!r}"
            vm.expect(rf"SERVED {len(payloads[c])} {fnv(payloads[c]):08x}", timeout=120)
        for c, vm in clones.items():
            other = "B" if c == "A" else "A"
            assert f"SERVED {len(payloads[other])}" not in vm.output(), \
                f"clone {c} got clone {other}'s vsock connection"
            m = command(vm, "kerrors", r"KERRORS (\d+)\r?\n")
            assert m.group(1) == b"0", f"the guest kernel logged errors:\n{vm.tail()}"
            command(vm, "finish", "UMOUNTED")
            assert vm.wait(300) == 0
    finally:
        for vm in clones.values():
            vm.kill()

    assert hashlib.sha256(disk.read_bytes()).hexdigest() == base_sha, "the base disk changed"
    for c, d in dirs.items():
        overlays = list(d.glob("base.qcow2.clone-*.qcow2"))
        assert len(overlays) == 1, f"clone {c}'s directory: {list(d.iterdir())}"
        other = "B" if c == "A" else "A"
        fs_check(overlays[0], "qcow2", tmp_path,
                 present={"before": before, f"clone-{c}": files[c]}, absent=[f"clone-{other}"])
    fs_check(disk, "qcow2", tmp_path, present={"before": before}, absent=["clone-A", "clone-B"])


HEAVY_IO = guest_script(r"""
/sbin/mke2fs -q -F -t ext4 /dev/vda && mount -t ext4 /dev/vda /mnt && echo DISK-READY
iolooop() {
  n=0
  while [ ! -e /tmp/stop ]; do
    n=$((n + 1))
    dd if=/dev/zero of=/mnt/f$((n % 4)) bs=64k count=48 2>/dev/null
    dd if=/dev/urandom of=/mnt/r$((n % 3)) bs=4k count=64 conv=fsync 2>/dev/null
    echo "IO $n"
  done
  echo IO-STOPPED
}
stopio() { touch /tmp/stop; }
iolooop &
""")


def test_snapshot_during_heavy_io_restores_to_a_clean_fs(linux, tmp_path):
    disk = tmp_path / "disk.qcow2"
    assert run([linux, "img", "create", "-f", "qcow2", str(disk), "256M"]).returncode == 0
    sock = tmp_path / "api.sock"
    with LinuxVM(linux, tmp_path, HEAVY_IO, cpus=2, api_socket=sock, name="io",
                 args=["--disk", str(disk)]) as vm:
        vm.expect("GUEST-READY", timeout=300)
        assert "DISK-READY" in vm.output(), vm.tail()
        vm.expect(r"IO 4\r?\n", timeout=300)
        last = snapshot(vm, sock, tmp_path)
        io_before = max(int(n) for n in re.findall(r"IO (\d+)\r?\n", vm.output()))

    with restore(linux, tmp_path, tmp_path, "s") as vm2:
        assert_goes_on(vm2, last)
        # the writes in flight at the snapshot complete: the loop goes on
        vm2.expect(rf"IO {io_before + 3}\r?\n", timeout=300)
        command(vm2, "stopio", "IO-STOPPED")
        m = command(vm2, "kerrors", r"KERRORS (\d+)\r?\n")
        assert m.group(1) == b"0", f"the guest kernel logged errors:\n{vm2.tail()}"
        command(vm2, "finish", "UMOUNTED")
        assert vm2.wait(300) == 0
    r = run(["qemu-img", "check", "-f", "qcow2", str(disk)], timeout=120)
    assert r.returncode == 0 and b"No errors were found" in r.stdout, r.stdout.decode()
    fs_check(disk, "qcow2", tmp_path)

# SPDX-License-Identifier: Apache-2.0
"""virtio-net of `vireo run` driven by Linux's virtio_net driver. vireo
runs inside a network namespace the test makes, on a tap there whose host
side has an address; all traffic stays in that namespace. The host's end
of each transfer is a Python helper started in the namespace with
`ip netns exec`; the guest reports through its console."""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest

from linux_vm import LinuxVM

HOST_IP = "10.78.0.1"
GUEST_IP = "10.78.0.2"
TAP = "vtap0"
MAC = "52:54:00:78:00:02"
BIG = 64 << 20

NET_UP = f"""
ip link set eth0 up
ip addr add {GUEST_IP}/24 dev eth0
"""


def sh(*args):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=60)


@pytest.fixture
def netns(tmp_path):
    """A namespace holding a persistent multi-queue tap with the host's
    address, and a wrapper that runs vireo inside it: (name, wrapper)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("SKIPPED: needs root and iproute2 to create a network namespace")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("SKIPPED: /dev/net/tun is missing")
    ns = "vireo-ln-" + uuid.uuid4().hex[:8]
    sh("ip", "netns", "add", ns)
    try:
        ex = ["ip", "netns", "exec", ns]
        sh(*ex, "ip", "link", "set", "lo", "up")
        # multi_queue: vireo opens a single-queue tap with IFF_MULTI_QUEUE too
        # when the tap was made that way, so one tap serves every test
        sh(*ex, "ip", "tuntap", "add", "dev", TAP, "mode", "tap", "vnet_hdr", "multi_queue")
        sh(*ex, "ip", "addr", "add", f"{HOST_IP}/24", "dev", TAP)
        sh(*ex, "ip", "link", "set", TAP, "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def in_netns(vireo, tmp_path, ns):
    """A path that runs vireo inside `ns` (LinuxVM runs "<path> run ...")."""
    w = tmp_path / "vireo-in-netns"
    w.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {vireo} "$@"\n')
    w.chmod(0o755)
    return str(w)


class Helper:
    """A Python program run inside the namespace; its stdout is its report."""

    def __init__(self, ns, code, *args):
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code]
                                     + [str(a) for a in args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self, timeout=120):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return out + err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# Accept one connection on HOST:PORT and read it to EOF: "RECV <n> <sha256>".
RECEIVER = r"""
import hashlib, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(600)
c, _ = s.accept()
c.settimeout(300)
h, n = hashlib.sha256(), 0
while True:
    d = c.recv(1 << 20)
    if not d:
        break
    h.update(d)
    n += len(d)
c.close()
print("RECV", n, h.hexdigest(), flush=True)
"""

# Connect to GUEST:PORT (retrying until the guest listens) and send N random
# bytes: "SEND <n> <sha256>".
SENDER = r"""
import hashlib, os, socket, sys, time
data = os.urandom(int(sys.argv[3]))
print("SEND", len(data), hashlib.sha256(data).hexdigest(), flush=True)
deadline = time.monotonic() + 600
while True:
    c = socket.socket()
    c.settimeout(300)
    try:
        c.connect((sys.argv[1], int(sys.argv[2])))
        break
    except OSError:
        c.close()
        if time.monotonic() > deadline:
            raise
        time.sleep(0.5)
c.sendall(data)
c.close()
print("SENT", flush=True)
"""

PING_AND_TRANSFER = NET_UP + f"""
ping -c 3 -W 5 {HOST_IP} && echo PING-OK
dd if=/dev/urandom of=/tmp/out bs=1M count={BIG >> 20} 2>/dev/null
echo "GUEST-SHA $(sha256sum /tmp/out | cut -d' ' -f1) $(wc -c < /tmp/out)"
nc {HOST_IP} 7001 < /tmp/out && echo SENT-TO-HOST
rm -f /tmp/out
nc -l -p 7002 < /dev/null > /tmp/in && echo RECEIVED-FROM-HOST
echo "GOT-SHA $(sha256sum /tmp/in | cut -d' ' -f1) $(wc -c < /tmp/in)"
"""


def test_linux_net_ping_and_64mib_each_way(linux, tmp_path, netns):
    """The guest pings the tap's host side, sends it 64 MiB of random data
    and receives 64 MiB from it; both digests match what was sent."""
    recv = Helper(netns, RECEIVER, HOST_IP, 7001)
    send = Helper(netns, SENDER, GUEST_IP, 7002, BIG)
    try:
        with LinuxVM(in_netns(linux, tmp_path, netns), tmp_path, PING_AND_TRANSFER,
                     memory="512M", args=["--net", f"tap={TAP},mac={MAC}"]) as vm:
            vm.expect(r"LINUX-DONE", timeout=600)
            rc = vm.wait(120)
            out = vm.output()
        got = recv.result()
        sent = send.result()
    finally:
        recv.kill()
        send.kill()
    assert "PING-OK" in out, out
    m = re.search(r"GUEST-SHA ([0-9a-f]{64}) (\d+)", out)
    assert m and int(m[2]) == BIG, out
    assert f"RECV {BIG} {m[1]}" in got, f"host received: {got}\n{out}"
    assert "SENT-TO-HOST" in out, out
    m = re.search(r"SEND (\d+) ([0-9a-f]{64})", sent)
    assert m and int(m[1]) == BIG and "SENT" in sent.split("\n", 1)[1], sent
    assert "RECEIVED-FROM-HOST" in out, out
    assert f"GOT-SHA {m[2]} {BIG}" in out, out
    assert rc == 0, out


# Echo every connection (up to N of them, each in its own thread) and say
# how many bytes each carried: "ECHOED <n>" per connection.
ECHO_SERVER = r"""
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
s.settimeout(600)
def echo(c):
    c.settimeout(300)
    n = 0
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        c.sendall(d)
        n += len(d)
    c.close()
    print("ECHOED", n, flush=True)
ts = []
for _ in range(int(sys.argv[3])):
    c, _ = s.accept()
    t = threading.Thread(target=echo, args=(c,))
    t.start()
    ts.append(t)
for t in ts:
    t.join()
"""

FLOWS_PER_CPU = 4
FLOW_BYTES = 2 << 20

# Connections pinned to each vCPU leave through that vCPU's TX queue (the
# driver's XPS map); the tap steers a flow's replies to the queue the flow
# came from, so each pair's RX queue carries traffic too. The interrupt
# counts of the per-queue MSI-X vectors show which queues did work.
MULTIQUEUE = NET_UP + f"""
echo "QUEUES $(ls -d /sys/class/net/eth0/queues/rx-* | wc -l) \
$(ls -d /sys/class/net/eth0/queues/tx-* | wc -l)"
grep -E 'virtio[0-9]+-(input|output)' /proc/interrupts | sed 's/^/IRQ-BEFORE /'
dd if=/dev/urandom of=/tmp/blob bs={FLOW_BYTES} count=1 2>/dev/null
for cpu in 0 1; do
  for i in $(seq {FLOWS_PER_CPU}); do
    taskset -c $cpu nc {HOST_IP} 7003 < /tmp/blob > /tmp/echo.$cpu.$i &
  done
done
wait
want=$(sha256sum < /tmp/blob)
ok=0
for f in /tmp/echo.*; do [ "$(sha256sum < $f)" = "$want" ] && ok=$((ok+1)); done
echo "ECHOES-OK $ok"
grep -E 'virtio[0-9]+-(input|output)' /proc/interrupts | sed 's/^/IRQ-AFTER /'
"""


def queue_irqs(out, tag):
    """{'input.0': count summed over CPUs, ...} from the guest's report."""
    counts = {}
    for line in out.splitlines():
        m = re.match(rf"{tag}\s+\d+:\s+((?:\d+\s+)+).*virtio\d+-((?:input|output)\.\d+)\s*$",
                     line)
        if m:
            counts[m[2]] = sum(int(x) for x in m[1].split())
    return counts


def test_linux_net_two_queue_pairs_both_carry_traffic(linux, tmp_path, netns):
    """queues=2 with two vCPUs: Linux uses both pairs, eight echoed
    connections come back whole, and both RX and both TX queues worked."""
    flows = 2 * FLOWS_PER_CPU
    echo = Helper(netns, ECHO_SERVER, HOST_IP, 7003, flows)
    try:
        with LinuxVM(in_netns(linux, tmp_path, netns), tmp_path, MULTIQUEUE, cpus=2,
                     memory="512M", args=["--net", f"tap={TAP},mac={MAC},queues=2"]) as vm:
            vm.expect(r"LINUX-DONE", timeout=600)
            rc = vm.wait(120)
            out = vm.output()
        echoed = echo.result()
    finally:
        echo.kill()
    assert "QUEUES 2 2" in out, out
    assert echoed.count(f"ECHOED {FLOW_BYTES}") == flows, f"{echoed}\n{out}"
    assert f"ECHOES-OK {flows}" in out, out
    before, after = queue_irqs(out, "IRQ-BEFORE"), queue_irqs(out, "IRQ-AFTER")
    queues = ["input.0", "input.1", "output.0", "output.1"]
    assert sorted(after) == queues, out
    for q in queues:
        assert after[q] > before[q], f"{q}: no interrupts during the transfers\n{out}"
    assert rc == 0, out

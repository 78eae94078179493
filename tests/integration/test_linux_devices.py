# SPDX-License-Identifier: Apache-2.0
"""virtio-console, virtio-rng and virtio-vsock of `vireo run`, each driven
by Linux's own driver; the guest reports through its console."""
import hashlib
import os
import queue
import re
import socket
import subprocess
import threading
import time

from linux_vm import LinuxVM, run_script

# The shell's own output would be "echo $((6*7))MARK"; only a shell that
# read the line and ran it prints 42MARK.
CONSOLE = r"""
echo "CONSOLES $(cut -d' ' -f1 /proc/consoles | tr '\n' ' ')"
[ -c /dev/hvc0 ] || echo NO-HVC0
sh -c 'echo HVC-SHELL-READY; exec sh -i' < /dev/hvc0 > /dev/hvc0 2>&1
echo HVC-SHELL-EXITED
"""


def test_linux_virtio_console_shell(linux, tmp_path):
    """--console virtio with console=hvc0: the kernel's console is hvc0,
    and a shell on hvc0 runs a line typed on vireo's stdin."""
    with LinuxVM(linux, tmp_path, CONSOLE, cmdline="console=hvc0",
                 args=["--console", "virtio"]) as vm:
        ready = vm.expect(r"HVC-SHELL-READY", timeout=300)
        vm.send("echo $((6*7))MARK\n")
        vm.expect(r"42MARK", timeout=120, start=ready.end())
        vm.send("exit\n")
        vm.expect(r"HVC-SHELL-EXITED", timeout=120)
        rc = vm.wait(120)
        out = vm.output()
    consoles = re.search(r"CONSOLES (.*)", out)
    assert consoles and "hvc0" in consoles[1].split(), out
    assert "NO-HVC0" not in out, out
    assert rc == 0, out


RNG_BYTES = 64 * 1024
RNG = f"""
echo "RNG-CURRENT $(cat /sys/class/misc/hw_random/rng_current)"
head -c {RNG_BYTES} /dev/hwrng > /tmp/a
head -c {RNG_BYTES} /dev/hwrng > /tmp/b
for f in a b; do
  echo "READ-$f $(wc -c < /tmp/$f) $(sha256sum < /tmp/$f | cut -d' ' -f1) \
$(od -An -v -tx1 /tmp/$f | tr -s ' ' '\\n' | grep . | sort -u | wc -l)"
done
"""


def test_linux_virtio_rng_feeds_hwrng(linux, tmp_path):
    """--rng: Linux's hw_random core uses virtio_rng, and two 64 KiB reads
    of /dev/hwrng are whole, differ, and each holds all 256 byte values
    (one random 64 KiB misses a value with probability about 256 e^-256)."""
    rc, out = run_script(linux, tmp_path, RNG, timeout=300, args=["--rng"])
    assert re.search(r"RNG-CURRENT virtio_rng", out), out
    reads = dict((m[1], (int(m[2]), m[3], int(m[4]))) for m in
                 re.finditer(r"READ-([ab]) (\d+) ([0-9a-f]{64}) (\d+)", out))
    assert sorted(reads) == ["a", "b"], out
    for size, _, distinct in reads.values():
        assert size == RNG_BYTES and distinct == 256, out
    assert reads["a"][1] != reads["b"][1], out
    assert "LINUX-DONE" in out, out
    assert rc == 0, out


VSOCK_BYTES = 16 << 20
CID = 3
GUEST_PORT = 6000
HOST_PORT = 5000
VSOCK = f"""
/bin/vsock-test listen {GUEST_PORT} &
L=$!
/bin/vsock-test connect {HOST_PORT} {VSOCK_BYTES}
wait $L
echo "LISTENER-EXIT $?"
"""

# FNV-1a as vsock-test computes it; 16 MiB in Python takes half a minute
# under the lab's TCG, so the host's digests come from this.
FNV_C = r"""
#include <stdint.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint32_t h = 2166136261u;
		int c;
		if (!f)
			return 1;
		while ((c = getc(f)) != EOF)
			h = (h ^ (uint8_t)c) * 16777619u;
		printf("%08x\n", h);
		fclose(f);
	}
	return 0;
}
"""


def fnv_of(tmp_path, *blobs):
    src, exe = tmp_path / "fnv.c", tmp_path / "fnv"
    src.write_text(FNV_C)
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], check=True, timeout=120)
    files = []
    for i, b in enumerate(blobs):
        files.append(tmp_path / f"blob{i}")
        files[-1].write_bytes(b)
    r = subprocess.run([str(exe)] + [str(f) for f in files], check=True, timeout=120,
                       capture_output=True, text=True)
    return r.stdout.split()


def pattern(n):
    """vsock-test's stream: byte i is i * 7 % 251."""
    period = bytes(i * 7 % 251 for i in range(251))
    return (period * (n // 251 + 1))[:n]


def echo_server(path, result, stop):
    """Serve one connection to `path`: keep every byte and echo it. A
    thread receives without ever waiting on the echo, so the guest's
    writes always drain whether or not it reads the echo yet."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(1)
    while not stop.is_set():
        try:
            c, _ = srv.accept()
            break
        except socket.timeout:
            continue
    else:
        return
    c.settimeout(300)
    chunks, todo = [], queue.Queue()

    def send():
        while (d := todo.get()) is not None:
            c.sendall(d)
        c.shutdown(socket.SHUT_WR)
    sender = threading.Thread(target=send)
    sender.start()
    try:
        while d := c.recv(1 << 16):
            chunks.append(d)
            todo.put(d)
    finally:
        todo.put(None)
        sender.join(300)
        c.close()
        srv.close()
    result["received"] = b"".join(chunks)


def host_client(path, data, result, stop):
    """Connect to the guest's port through vireo's socket and send `data`,
    retrying until the guest listens; keeps the "OK" line and the reply."""
    while not stop.is_set():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(300)
        try:
            s.connect(path)
            s.sendall(f"CONNECT {GUEST_PORT}\n".encode())
            line = b""
            while not line.endswith(b"\n"):
                d = s.recv(1)
                if not d:
                    raise ConnectionError("closed before OK")
                line += d
        except (OSError, ConnectionError):
            s.close()
            time.sleep(0.3)       # the guest's listener is not up yet
            continue
        with s:
            result["ok"] = line.decode().strip()
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            reply = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                reply += d
            result["reply"] = reply.decode(errors="replace").strip()
        return


def test_linux_vsock_16mib_each_way(linux, tmp_path):
    """--vsock: the guest sends 16 MiB to host port 5000 (PATH_5000), which
    echoes it back, while the host connects to the guest's port 6000 with
    "CONNECT 6000" and sends 16 MiB of random data; the host sees the
    guest's exact stream, and the guest's digests match both."""
    uds = str(tmp_path / "v.sock")
    data = os.urandom(VSOCK_BYTES)
    want_echo, want_got = fnv_of(tmp_path, pattern(VSOCK_BYTES), data)
    echoed, client, stop = {}, {}, threading.Event()
    threads = [threading.Thread(target=echo_server, args=(f"{uds}_{HOST_PORT}", echoed, stop)),
               threading.Thread(target=host_client, args=(uds, data, client, stop))]
    for t in threads:
        t.start()
    try:
        with LinuxVM(linux, tmp_path, VSOCK, args=["--vsock", f"cid={CID},uds={uds}"]) as vm:
            vm.expect(r"LINUX-DONE", timeout=600)
            rc = vm.wait(120)
            out = vm.output()
    finally:
        stop.set()
        for t in threads:
            t.join(300)
    got = echoed.get("received", b"")
    assert len(got) == VSOCK_BYTES and got == pattern(VSOCK_BYTES), \
        f"host port {HOST_PORT} got {len(got)} bytes, " \
        f"sha256 {hashlib.sha256(got).hexdigest()}\n{out}"
    assert f"ECHO {VSOCK_BYTES} {want_echo}" in out, out
    assert re.fullmatch(r"OK \d+", client.get("ok", "")), (client, out)
    assert client.get("reply") == f"GOT {VSOCK_BYTES} {want_got}", (client, out)
    assert f"SERVED {VSOCK_BYTES} {want_got}" in out, out
    assert "LISTENER-EXIT 0" in out, out
    assert rc == 0, out

# SPDX-License-Identifier: Apache-2.0
"""vireo's virtio-vsock driven by the project's ring-3 guest driver
(tests/guests/guests/virtio_vsock.c), through Firecracker's hybrid Unix
socket convention:

- host to guest: this file connects to the Unix socket, says
  "CONNECT <port>", expects "OK <hostport>", sends a seeded pattern the
  guest checks byte by byte, and gets every byte echoed back (or, with
  `noecho`, a "SUM <n> <fnv>" line);
- guest to host: the guest connects to host port P, which reaches the
  listener this file runs at "<socket>_<P>"; every byte is checked here, and
  the answer "GOT <n> <fnv>" is checked by the guest.

Under QEMU TCG the device is `vireo vhost-user vsock`; under KVM it is
`vireo run --vsock` (skipped while vireo run has no --vsock).  Variants
make the host read slowly, so the guest runs out of credit and the device's
buffers fill, advertise a guest buffer above 16 MiB, and give wrong data or a
wrong answer, where the guest must FAIL."""
import array
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import run
from test_vhost_user_lib import Backend, tcg_smp

QEMU = shutil.which("qemu-system-x86_64")
QBOOT = "/usr/share/qemu/qboot.rom"
MEMORY = "128M"
CID = 3
LISTEN_PORT = 1234          # the guest's
HOST_PORT = 5000            # the host's: <uds>_5000
PASS = "VIREO-GUEST: PASS virtio_vsock"
FAIL = "VIREO-GUEST: FAIL virtio_vsock"


def pattern(seed, n):
    """virtio_vsock.c's pattern(): LCG words, little-endian."""
    words = array.array("I")
    x = seed & 0xFFFFFFFF
    for _ in range((n + 3) // 4):
        x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
        words.append(x)
    if sys.byteorder != "little":
        words.byteswap()
    return words.tobytes()[:n]


def fnv1a32(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def recv_all(s, slow, limit):
    """Read to EOF; `slow` waits first and then reads in small bites, so
    everything behind this socket fills up."""
    out = bytearray()
    if slow:
        time.sleep(1.5)
    while len(out) <= limit:
        d = s.recv(4096 if slow else 65536)
        if not d:
            break
        out += d
        if slow:
            time.sleep(0.002)
    return bytes(out)


class HostSide:
    """The host's ends of both connections, each on its own threads."""

    def __init__(self, uds, rx_data, tx_len, slow=False, wrong_answer=False, echo=True):
        self.uds, self.rx_data, self.tx_len = uds, rx_data, tx_len
        self.slow, self.wrong_answer, self.echo = slow, wrong_answer, echo
        self.stop = threading.Event()
        self.result = {}
        self.errors = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(f"{uds}_{HOST_PORT}")
        self.srv.listen(1)
        self.srv.settimeout(0.5)
        self.threads = [threading.Thread(target=self._guard, args=(f,))
                        for f in (self._connect, self._serve)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        self.srv.close()

    def _guard(self, fn):
        try:
            fn()
        except Exception as e:           # reported by the test, not lost in a thread
            self.errors.append(f"{fn.__name__}: {e!r}")

    def _connect(self):
        """CONNECT until the guest listens (before that it answers RST and
        vireo closes the socket), then send, half-close and read back."""
        while not self.stop.is_set():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(60)
            try:
                s.connect(self.uds)
                s.sendall(f"CONNECT {LISTEN_PORT}\n".encode())
                line = b""
                while not line.endswith(b"\n"):
                    d = s.recv(1)
                    if not d:
                        raise ConnectionError("closed before OK")
                    line += d
            except (OSError, ConnectionError):
                s.close()
                time.sleep(0.2)
                continue
            self.result["ok"] = line.decode(errors="replace").strip()
            sender = threading.Thread(target=self._send, args=(s,))
            sender.start()
            self.result["echo"] = recv_all(s, self.slow, len(self.rx_data) + 4096)
            sender.join(60)
            s.close()
            return

    def _send(self, s):
        try:
            s.sendall(self.rx_data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.errors.append(f"send: {e!r}")

    def _serve(self):
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            with c:
                c.settimeout(60)
                data = recv_all(c, self.slow, self.tx_len + 4096)
                self.result["data"] = data
                h = fnv1a32(data) ^ (1 if self.wrong_answer else 0)
                c.sendall(f"GOT {len(data)} {h:08x}\n".encode())
            return


def cmdline(rx_seed, rx_len, tx_seed, tx_len, extra=""):
    return (f"listen={LISTEN_PORT} rx_len={rx_len} rx_seed={rx_seed} "
            f"connect={HOST_PORT} tx_len={tx_len} tx_seed={tx_seed} expect_cid={CID} {extra}")


def summary(out):
    """The guest's and vireo's lines worth reading in a failure message."""
    return "\n".join(line for line in out.splitlines()
                     if line.startswith(("VSOCK", "VIREO-GUEST", "vireo:", "qemu")))


def check_pass(host, out, rx_data, tx_seed, tx_len, echo=True):
    out = summary(out)
    assert not host.errors, f"{host.errors}\n{out}"
    assert PASS in out, out
    assert host.result.get("ok", "").startswith("OK "), f"{host.result.get('ok')}\n{out}"
    if echo:
        got = host.result.get("echo")
        assert got is not None and len(got) == len(rx_data), \
            f"echo: {None if got is None else len(got)} bytes of {len(rx_data)}\n{out}"
        assert got == rx_data, "echoed bytes differ"
    else:
        want = f"SUM {len(rx_data)} {fnv1a32(rx_data):08x}\n".encode()
        assert host.result.get("echo") == want, f"{host.result.get('echo')}\n{out}"
    data = host.result.get("data")
    assert data is not None and len(data) == tx_len, \
        f"guest to host: {None if data is None else len(data)} bytes of {tx_len}\n{out}"
    assert data == pattern(tx_seed, tx_len), "guest to host: bytes differ from the pattern"
    assert f"host confirmed {tx_len} bytes" in out, out


# ---------------------------------------------------------------- QEMU (TCG)


@pytest.fixture(scope="session")
def qemu():
    if QEMU is None:
        pytest.skip("SKIPPED: qemu-system-x86_64 is not installed")
    if not os.path.exists(QBOOT):
        pytest.skip(f"SKIPPED: {QBOOT} missing (qemu-system-data)")
    return [QEMU, "-accel", "tcg", "-cpu", "max", "-M", "pc", "-bios", QBOOT, "-nodefaults",
            "-no-user-config", "-nographic", "-serial", "stdio", "-smp", tcg_smp(1),
            "-device", "isa-debug-exit,iobase=0x501,iosize=1", "-m", MEMORY, "-no-reboot",
            "-object", f"memory-backend-memfd,id=mem,size={MEMORY},share=on",
            "-machine", "memory-backend=mem"]


def qemu_vsock(qemu, vireo, guests, tmp_path, cmd, host):
    """Boot the guest in QEMU with vireo's vhost-user vsock; (rc, output)."""
    sock = str(tmp_path / "vu.sock")
    be = Backend([vireo, "vhost-user", "vsock", "--socket", sock, "--guest-cid", str(CID),
                  "--uds-path", host.uds, "-v"], sock, tmp_path / "backend.log")
    host.start()
    try:
        r = run(qemu + ["-chardev", f"socket,id=v0,path={sock}",
                        "-device", "vhost-user-vsock-pci,chardev=v0",
                        "-kernel", str(guests / "virtio_vsock.bzImage"), "-append", cmd],
                timeout=180, stdin=subprocess.DEVNULL)
    finally:
        rc = be.stop()            # closes vireo's sockets: host threads see EOF
        host.join()
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    log = be.output()
    (tmp_path / "console.log").write_text(out)
    assert "needs reset" not in log, log
    assert rc == 0, log
    return r.returncode, out + "\n" + log


def seeds():
    return int.from_bytes(os.urandom(4), "little"), int.from_bytes(os.urandom(4), "little")


@pytest.mark.parametrize("features", ["", "event_idx indirect"])
def test_qemu_both_directions(qemu, vireo, guests, tmp_path, features):
    rx_seed, tx_seed = seeds()
    rx_data, tx_len = pattern(rx_seed, 1 << 20), 4 << 20
    host = HostSide(str(tmp_path / "v.sock"), rx_data, tx_len)
    rc, out = qemu_vsock(qemu, vireo, guests, tmp_path,
                         cmdline(rx_seed, len(rx_data), tx_seed, tx_len, features), host)
    check_pass(host, out, rx_data, tx_seed, tx_len)
    assert rc == 0, summary(out)


def test_qemu_slow_host_reader(qemu, vireo, guests, tmp_path):
    """The host reads late and slowly: the guest must stall on credit
    (CREDIT_REQUEST) and the device must still deliver every byte sent
    before the guest's SHUTDOWN."""
    rx_seed, tx_seed = seeds()
    rx_data, tx_len = pattern(rx_seed, 1 << 20), 3 << 20
    host = HostSide(str(tmp_path / "v.sock"), rx_data, tx_len, slow=True)
    rc, out = qemu_vsock(qemu, vireo, guests, tmp_path,
                         cmdline(rx_seed, len(rx_data), tx_seed, tx_len, "buf_alloc=16384"),
                         host)
    check_pass(host, out, rx_data, tx_seed, tx_len)
    stalls = [int(line.split(", ")[1].split()[0]) for line in out.splitlines()
              if line.startswith("VSOCK: connect port") and "credit stalls" in line]
    assert stalls and stalls[0] > 0, "the slow reader never stalled the guest\n" + summary(out)
    assert rc == 0, summary(out)


def test_qemu_big_guest_buffer(qemu, vireo, guests, tmp_path):
    """A guest buffer above 16 MiB (here 64 MiB) and one of 2^32 - 1: the
    device's credit arithmetic must still let data through."""
    rx_seed, tx_seed = seeds()
    rx_data = pattern(rx_seed, 2 << 20)
    for buf_alloc in (64 << 20, 0xFFFFFFFF):
        sub = tmp_path / f"b{buf_alloc:x}"
        sub.mkdir()
        host = HostSide(str(sub / "v.sock"), rx_data, 65536, echo=False)
        rc, out = qemu_vsock(qemu, vireo, guests, sub,
                             cmdline(rx_seed, len(rx_data), tx_seed, 65536,
                                     f"noecho buf_alloc={buf_alloc}"), host)
        check_pass(host, out, rx_data, tx_seed, 65536, echo=False)
        assert rc == 0, summary(out)


def test_qemu_guest_rejects_wrong_data(qemu, vireo, guests, tmp_path):
    """The host sends another seed's pattern: the guest must fail."""
    rx_seed, tx_seed = seeds()
    host = HostSide(str(tmp_path / "v.sock"), pattern(rx_seed ^ 1, 65536), 65536)
    rc, out = qemu_vsock(qemu, vireo, guests, tmp_path,
                         cmdline(rx_seed, 65536, tx_seed, 65536), host)
    assert f"{FAIL}: listen: byte 0 is" in out, summary(out)
    assert PASS not in out and rc != 0, summary(out)


def test_qemu_guest_rejects_wrong_answer(qemu, vireo, guests, tmp_path):
    """The host answers a wrong checksum for the guest's data: the guest
    must fail (the data itself arrived intact)."""
    rx_seed, tx_seed = seeds()
    rx_data = pattern(rx_seed, 65536)
    host = HostSide(str(tmp_path / "v.sock"), rx_data, 200000, wrong_answer=True)
    rc, out = qemu_vsock(qemu, vireo, guests, tmp_path,
                         cmdline(rx_seed, len(rx_data), tx_seed, 200000), host)
    assert host.result.get("data") == pattern(tx_seed, 200000), summary(out)
    assert f"{FAIL}: host answered" in out, summary(out)
    assert PASS not in out and rc != 0, summary(out)


# ---------------------------------------------------------------- KVM


@pytest.fixture(scope="session")
def vireo_vsock(vireo):
    r = run([vireo, "run", "--help"])
    if "--vsock" not in (r.stdout + r.stderr).decode(errors="replace"):
        pytest.skip("SKIPPED: vireo run has no --vsock option yet (vireo run --help)")
    return vireo


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", ["bzImage", "elf"])
@pytest.mark.parametrize("slow", [False, True], ids=["fast", "slow-reader"])
def test_vireo_run_vsock(vireo_vsock, guests, kvm, tmp_path, fmt, slow):
    rx_seed, tx_seed = seeds()
    rx_data, tx_len = pattern(rx_seed, 1 << 20), 4 << 20
    uds = str(tmp_path / "v.sock")
    host = HostSide(uds, rx_data, tx_len, slow=slow)
    host.start()
    try:
        r = run([vireo_vsock, "run", "--kernel", str(guests / f"virtio_vsock.{fmt}"),
                 "--memory", MEMORY, "--debug-exit", "--vsock", f"cid={CID},uds={uds}",
                 "--cmdline", cmdline(rx_seed, len(rx_data), tx_seed, tx_len,
                                      "buf_alloc=16384" if slow else "")],
                timeout=180, stdin=subprocess.DEVNULL)
    finally:
        host.join()
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    check_pass(host, out, rx_data, tx_seed, tx_len)
    assert r.returncode == 0, summary(out)


@pytest.mark.kvm
def test_vireo_vsock_through_the_api(vireo_vsock, guests, kvm, tmp_path):
    """PUT /vsock as a Firecracker client configures it: the same exchange
    with a VM configured and started only through the API."""
    from vmapi import api, wait_socket
    rx_seed, tx_seed = seeds()
    rx_data, tx_len = pattern(rx_seed, 256 << 10), 1 << 20
    uds, sock = str(tmp_path / "v.sock"), str(tmp_path / "api.sock")
    host = HostSide(uds, rx_data, tx_len)
    host.start()
    proc = subprocess.Popen([vireo_vsock, "run", "--api-socket", sock, "--debug-exit"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_socket(sock, proc)
        assert api(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})[0] == 204
        assert api(sock, "PUT", "/boot-source", {
            "kernel_image_path": str(guests / "virtio_vsock.elf"),
            "boot_args": cmdline(rx_seed, len(rx_data), tx_seed, tx_len)})[0] == 204
        assert api(sock, "PUT", "/vsock", {"guest_cid": CID, "uds_path": uds})[0] == 204
        assert api(sock, "PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        host.join()
    out = stdout.decode(errors="replace") + stderr.decode(errors="replace")
    check_pass(host, out, rx_data, tx_seed, tx_len)
    assert proc.returncode == 0, summary(out)

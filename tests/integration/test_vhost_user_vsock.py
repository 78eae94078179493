# SPDX-License-Identifier: Apache-2.0
"""vireo's vhost-user virtio-vsock with Firecracker's hybrid Unix-socket
convention, driven by Linux's vsock drivers in a QEMU TCG guest: the guest
connects to host port 5000 (served at <uds>_5000, an echo server here) and
the host connects to the guest's port 6000 through "CONNECT 6000\\n"; both
directions' data is checked by length and FNV-1a digest."""
import os
import socket
import subprocess
import threading
import time

from test_vhost_user_lib import Backend, ROOT, build_initramfs, qemu_boot

MODULES = ["virtio_pci", "vsock", "vmw_vsock_virtio_transport_common",
           "vmw_vsock_virtio_transport"]
NBYTES = 1_000_000
HOST_BYTES = 700_001

INIT = rf"""
timeout 90 /bin/vsock-test listen 6000 &
L=$!
/bin/vsock-test connect 5000 {NBYTES}
wait $L
echo DONE
"""


def fnv(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return f"{h:08x}"


def pattern(n):
    return bytes((i * 7) % 251 for i in range(n))


def echo(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)


def echo_server(path, stop, conns=1):
    """Echo `conns` connections to `path`, each in its own thread."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(conns)
    srv.settimeout(0.5)
    served = []
    while not stop.is_set() and len(served) < conns:
        try:
            c, _ = srv.accept()
        except socket.timeout:
            continue
        c.settimeout(60)
        t = threading.Thread(target=echo, args=(c,))
        t.start()
        served.append(t)
    for t in served:
        t.join(60)
    srv.close()


def host_client(path, result, stop):
    data = os.urandom(HOST_BYTES)
    result["want"] = f"GOT {HOST_BYTES} {fnv(data)}"
    while not stop.is_set():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        try:
            s.connect(path)
            s.sendall(b"CONNECT 6000\n")
            line = b""
            while not line.endswith(b"\n"):
                d = s.recv(1)
                if not d:
                    raise ConnectionError("closed before OK")
                line += d
            result["ok"] = line.decode().strip()
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            reply = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                reply += d
            result["reply"] = reply.decode().strip()
            return
        except (OSError, ConnectionError):
            time.sleep(0.3)       # the guest's listener is not up yet
        finally:
            s.close()


def boot_with_vsock(vireo, tmp_path, init, host_side):
    """Boot the guest running `init` against vireo's vhost-user vsock while
    the threads host_side(uds, stop) returns serve the host end; returns
    (console, backend log, backend exit code)."""
    tool = tmp_path / "vsock-test"
    subprocess.run(["gcc", "-O2", "-static", "-o", str(tool),
                    str(ROOT / "tests/integration/linux/vsock-test.c")], check=True)
    os.environ["INITRAMFS_EXTRA"] = str(tool)
    try:
        kernel, initrd = build_initramfs(tmp_path, init, MODULES)
    finally:
        del os.environ["INITRAMFS_EXTRA"]
    sock = str(tmp_path / "vu.sock")
    uds = str(tmp_path / "v.sock")
    be = Backend([vireo, "vhost-user", "vsock", "--socket", sock, "--guest-cid", "3",
                  "--uds-path", uds, "-v"], sock, tmp_path / "backend.log")
    stop = threading.Event()
    threads = host_side(uds, stop)
    for t in threads:
        t.start()
    try:
        out = qemu_boot(kernel, initrd, ["-chardev", f"socket,id=v0,path={sock}",
                                         "-device", "vhost-user-vsock-pci,chardev=v0"],
                        timeout=180)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        rc = be.stop()
    return out, be.output(), rc


def test_linux_vsock_both_directions(vireo, tmp_path):
    result = {}
    out, log, rc = boot_with_vsock(vireo, tmp_path, INIT, lambda uds, stop: [
        threading.Thread(target=echo_server, args=(uds + "_5000", stop)),
        threading.Thread(target=host_client, args=(uds, result, stop))])
    assert f"ECHO {NBYTES} {fnv(pattern(NBYTES))}" in out, out + log
    assert result.get("ok", "").startswith("OK "), (result, out, log)
    assert result.get("reply") == result["want"], (result, out)
    assert result["want"].replace("GOT", "SERVED") in out, out
    assert "needs reset" not in log
    assert rc == 0, log


PARALLEL = [(5000, 300_000), (5000, 500_001), (5001, 700_002), (5001, 900_003)]


def test_linux_vsock_parallel_connections(vireo, tmp_path):
    """Four guest connections at once, two to each of two host ports: every
    stream's echo comes back whole, none mixed with another's."""
    init = "".join(f"/bin/vsock-test connect {port} {n} &\n" for port, n in PARALLEL)
    init += "wait\necho DONE\n"
    out, log, rc = boot_with_vsock(vireo, tmp_path, init, lambda uds, stop: [
        threading.Thread(target=echo_server, args=(f"{uds}_{port}", stop, 2))
        for port in (5000, 5001)])
    for _, n in PARALLEL:
        assert f"ECHO {n} {fnv(pattern(n))}" in out, out + log
    assert "DONE" in out, out
    assert "needs reset" not in log
    assert rc == 0, log

# SPDX-License-Identifier: Apache-2.0
"""vireo's vhost-user-blk back end driven by Linux's own virtio-blk driver
in a QEMU TCG guest: ext4 made, written and synced in one boot, checked in
a second boot against the same back end process (so the back end also
survives a front end leaving and a new one arriving), then the image is
checked with qemu-img."""
import hashlib
import json
import os
import socket
import struct
import subprocess

import pytest

from test_vhost_user_lib import Backend, build_initramfs, qemu_boot, vu_connect

MODULES = ["virtio_pci", "virtio_blk"]

INIT = r"""
mode=$(sed -n 's/.*vireo_mode=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "MODE $mode"
if [ "$mode" = write ]; then
  /sbin/mke2fs -q -F -t ext4 /dev/vda && echo MKFS-OK
  mount -t ext4 /dev/vda /mnt && echo MOUNT-OK
  seq 1 100000 > /mnt/seq.txt
  mkdir -p /mnt/dir
  yes vireo-virtio-blk | head -c 6291456 > /mnt/dir/big.bin
  sync
  md5sum /mnt/seq.txt /mnt/dir/big.bin | sed 's/^/WROTE /'
  umount /mnt && echo UMOUNT-OK
else
  mount -t ext4 -o ro /dev/vda /mnt && echo MOUNT-OK
  md5sum /mnt/seq.txt /mnt/dir/big.bin | sed 's/^/READ /'
  cat /sys/block/vda/mq/*/nr_tags >/dev/null 2>&1
  echo "QUEUES $(ls /sys/block/vda/mq | wc -l)"
  umount /mnt
fi
echo DONE
"""


def expected_md5():
    seq = "".join(f"{i}\n" for i in range(1, 100001)).encode()
    line = b"vireo-virtio-blk\n"
    big = (line * (6291456 // len(line) + 1))[:6291456]
    return {"/mnt/seq.txt": hashlib.md5(seq).hexdigest(),
            "/mnt/dir/big.bin": hashlib.md5(big).hexdigest()}


def sums(out, tag):
    got = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == tag:
            got[parts[2]] = parts[1]
    return got


@pytest.mark.parametrize("fmt,queues", [("qcow2", 1), ("raw", 2)])
def test_linux_ext4_on_vhost_user_blk(vireo, tmp_path, fmt, queues):
    kernel, initrd = build_initramfs(tmp_path, INIT, MODULES)
    img = tmp_path / f"disk.{fmt}"
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(img), "128M"], check=True)
    sock = str(tmp_path / "blk.sock")
    be = Backend([vireo, "vhost-user", "blk", "--socket", sock, "--image", str(img),
                  "--num-queues", str(queues), "-v"], sock, tmp_path / "backend.log")
    dev = ["-chardev", f"socket,id=c0,path={sock}",
           "-device", f"vhost-user-blk-pci,chardev=c0,num-queues={queues}"]
    try:
        out1 = qemu_boot(kernel, initrd, dev, "vireo_mode=write", smp=queues)
        assert "MKFS-OK" in out1 and "UMOUNT-OK" in out1, out1 + be.output()
        assert be.alive(), be.output()
        out2 = qemu_boot(kernel, initrd, dev, "vireo_mode=read", smp=queues)
        assert "MOUNT-OK" in out2, out2 + be.output()
    finally:
        rc = be.stop()
    want = expected_md5()
    assert sums(out1, "WROTE") == want, out1
    assert sums(out2, "READ") == want, out2
    assert f"QUEUES {queues}" in out2, out2
    assert "needs reset" not in be.output()
    assert rc == 0, be.output()
    if fmt == "qcow2":
        r = subprocess.run(["qemu-img", "check", "--output=json", str(img)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        info = json.loads(r.stdout)
        assert info.get("corruptions", 0) == 0 and info.get("leaks", 0) == 0, info


# ---- a hostile front end: the back end drops it and serves the next one ----

def vu_msg(req, payload=b"", flags=1, size=None):
    return struct.pack("<III", req, flags, len(payload) if size is None else size) + payload


def get_features(sock_path):
    s = vu_connect(sock_path)
    s.sendall(vu_msg(1))
    hdr = s.recv(12)
    req, flags, size = struct.unpack("<III", hdr)
    (feat,) = struct.unpack("<Q", s.recv(8))
    s.close()
    assert req == 1 and flags & 4 and size == 8
    return feat


@pytest.mark.parametrize("bad", [
    vu_msg(1, size=1 << 30),                              # absurd payload size
    vu_msg(1, flags=2),                                   # wrong version
    vu_msg(5, struct.pack("<II", 9, 0) + b"\0" * 8 * 32 * 9),   # 9 regions, no fds
    vu_msg(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 4096, 0, 0)),  # no fd
    vu_msg(8, struct.pack("<II", 200, 128)),              # ring index out of range
    vu_msg(8, struct.pack("<II", 0, 100)),                # ring size not a power of 2
    vu_msg(8, struct.pack("<II", 0, 1 << 20)),            # ring size too large
    vu_msg(24, struct.pack("<III", 0, 4096, 0)),          # config larger than allowed
    vu_msg(12, struct.pack("<Q", 0)),                     # kick without its fd
    vu_msg(2, struct.pack("<Q", 1 << 63)),                # features not offered
])
def test_hostile_front_end(vireo, tmp_path, bad):
    img = tmp_path / "d.raw"
    img.write_bytes(b"\0" * (1 << 20))
    sock = str(tmp_path / "h.sock")
    be = Backend([vireo, "vhost-user", "blk", "--socket", sock, "--image", str(img)], sock,
                 tmp_path / "be.log")
    try:
        feat = get_features(sock)
        assert feat & (1 << 32) and feat & (1 << 30)
        s = vu_connect(sock)
        s.sendall(bad)
        # The back end hangs up on a protocol error.
        try:
            assert s.recv(64) == b""
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
        assert be.alive(), be.output()
        assert get_features(sock) == feat
    finally:
        rc = be.stop()
    assert rc == 0, be.output()


def test_memory_region_beyond_its_file(vireo, tmp_path):
    """A region larger than its memfd would SIGBUS the back end on first
    touch: it must be refused (connection dropped), the server unharmed."""
    img = tmp_path / "d.raw"
    img.write_bytes(b"\0" * (1 << 20))
    sock = str(tmp_path / "m.sock")
    be = Backend([vireo, "vhost-user", "blk", "--socket", sock, "--image", str(img)], sock,
                 tmp_path / "be.log")
    try:
        feat = get_features(sock)
        fd = os.memfd_create("guest")
        os.ftruncate(fd, 4096)
        s = vu_connect(sock)
        msg = vu_msg(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, 0, 0))
        socket.send_fds(s, [msg], [fd])
        os.close(fd)
        try:
            assert s.recv(64) == b""
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
        assert be.alive(), be.output()
        assert get_features(sock) == feat
    finally:
        rc = be.stop()
    assert rc == 0 and "smaller than offset+size" in be.output(), be.output()


def test_cli_errors(vireo, tmp_path):
    r = subprocess.run([vireo, "vhost-user", "blk", "--socket", str(tmp_path / "s")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--image" in r.stderr
    r = subprocess.run([vireo, "vhost-user", "blk", "--socket", str(tmp_path / "s"),
                        "--image", str(tmp_path / "missing.img")], capture_output=True, text=True)
    assert r.returncode != 0 and "missing.img" in r.stderr
    r = subprocess.run([vireo, "vhost-user", "disk"], capture_output=True, text=True)
    assert r.returncode == 2 and "blk" in r.stderr
    r = subprocess.run([vireo, "vhost-user", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--socket" in r.stdout
    r = subprocess.run([vireo, "vhost-user", "net", "--socket", str(tmp_path / "s"),
                        "--image", "x"], capture_output=True, text=True)
    assert r.returncode == 2

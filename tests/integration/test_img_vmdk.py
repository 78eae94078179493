# SPDX-License-Identifier: Apache-2.0
"""VMDK interoperability with qemu-img: every subformat qemu writes reads
back identically; the subformats vireo writes pass qemu-img and read back."""
import os

import pytest

from conftest import run
from test_img_qcow2 import make_src, same_as_qemu, sh

READ_SUBFORMATS = ["monolithicSparse", "monolithicFlat", "streamOptimized",
                   "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"]
WRITE_SUBFORMATS = ["monolithicSparse", "monolithicFlat", "streamOptimized"]


@pytest.mark.parametrize("sub", READ_SUBFORMATS)
def test_reads_qemu_vmdk(vireo, tmp_path, sub):
    src, img = tmp_path / "src.raw", tmp_path / "q.vmdk"
    make_src(src)
    sh("qemu-img", "convert", "-O", "vmdk", "-o", f"subformat={sub}", src, img)
    same_as_qemu(vireo, img, tmp_path)
    sh(vireo, "img", "compare", src, img)


@pytest.mark.parametrize("sub", WRITE_SUBFORMATS)
def test_vireo_writes_vmdk(vireo, tmp_path, sub):
    src, img = tmp_path / "src.raw", tmp_path / "v.vmdk"
    make_src(src)
    sh(vireo, "img", "convert", "-O", "vmdk", "-o", f"subformat={sub}", src, img)
    sh("qemu-img", "compare", src, img)
    r = sh("qemu-img", "check", img, ok=False)
    assert r.returncode in (0, 63), r.stdout.decode() + r.stderr.decode()
    info = sh("qemu-img", "info", img).stdout.decode()
    assert sub in info


def test_writes_into_qemu_sparse(vireo, tmp_path):
    img = tmp_path / "w.vmdk"
    sh("qemu-img", "create", "-q", "-f", "vmdk", img, "16M")
    sh(vireo, "img", "bench", "-w", "-c", "500", "-d", "4", "-S", "1234567", "--pattern=5", img)
    assert sh("qemu-img", "check", img, ok=False).returncode == 0
    same_as_qemu(vireo, img, tmp_path)


def test_stream_is_read_only_once_written(vireo, tmp_path):
    src, img = tmp_path / "src.raw", tmp_path / "s.vmdk"
    make_src(src)
    sh("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", src, img)
    r = run([vireo, "img", "bench", "-w", "-c", "1", img])
    assert r.returncode != 0 and b"read-only" in r.stderr


@pytest.mark.parametrize("damage", ["magic-ok-bad-grain", "gd-past-eof", "descriptor-junk",
                                    "huge-extent", "truncated"])
def test_bad_vmdk(vireo, tmp_path, damage):
    src, img = tmp_path / "src.raw", tmp_path / "b.vmdk"
    make_src(src)
    sh("qemu-img", "convert", "-O", "vmdk", src, img)
    data = bytearray(open(img, "rb").read())
    if damage == "magic-ok-bad-grain":
        data[20:28] = (3).to_bytes(8, "little")
    elif damage == "gd-past-eof":
        data[56:64] = (1 << 40).to_bytes(8, "little")
    elif damage == "descriptor-junk":
        data[512:1024] = os.urandom(512)
    elif damage == "huge-extent":
        i = data.find(b"RW ")
        data[i:i + 12] = b"RW 99999999999999"[:12]
    elif damage == "truncated":
        data = data[:len(data) // 3]
    img.write_bytes(bytes(data))
    before = open(img, "rb").read()
    r = run([vireo, "img", "convert", "-f", "vmdk", "-O", "raw", img, tmp_path / "o.raw"],
            timeout=60)
    assert r.returncode >= 0 and b"Sanitizer" not in r.stderr
    if damage != "truncated":
        assert r.returncode != 0 and r.stderr
    r = run([vireo, "img", "bench", "-f", "vmdk", "-w", "-c", "10", img], timeout=60)
    assert r.returncode >= 0 and b"Sanitizer" not in r.stderr
    if damage != "truncated":
        assert open(img, "rb").read() == before


def test_check_vmdk(vireo, tmp_path):
    import struct
    src, img = tmp_path / "src.raw", tmp_path / "c.vmdk"
    make_src(src)
    sh("qemu-img", "convert", "-O", "vmdk", src, img)
    assert sh(vireo, "img", "check", img).returncode == 0
    with open(img, "r+b") as f:
        f.seek(56)
        gd = struct.unpack("<Q", f.read(8))[0]
        f.seek(gd * 512)
        gt = struct.unpack("<I", f.read(4))[0]
        f.seek(gt * 512)
        f.write(struct.pack("<I", 0x7fffff00))
    assert sh(vireo, "img", "check", img, ok=False).returncode == 2
    assert sh("qemu-img", "check", img, ok=False).returncode != 0

# SPDX-License-Identifier: Apache-2.0
"""VMDK interoperability with qemu-img: every subformat qemu writes reads
back identically; the subformats vireo writes pass qemu-img and read back."""
import os
import struct
import zlib

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


# ---- sizes that are not whole grains (issue 14) ----
# A grain is 64 KiB, a grain table maps 512 grains (32 MiB). qemu-img rounds
# the virtual size up to a sector and, in a stream, compresses only the part
# of the last grain inside the capacity: every size class below must read as
# qemu-img reads it, from qemu-img's images and from vireo's.
GRAIN = 64 << 10
GT_SPAN = 512 * GRAIN
SIZES = {
    "whole-grains": 2 * GRAIN,
    "grain-plus-byte": 2 * GRAIN + 1,
    "grain-minus-byte": 2 * GRAIN - 1,
    "grain-minus-sector": 2 * GRAIN - 512,
    "under-a-sector": 100,
    "under-a-grain": 3 * 512 + 7,
    "issue-1000000": 1_000_000,
    "whole-table": GT_SPAN,
    "table-plus-byte": GT_SPAN + 1,
    "inside-last-table": GT_SPAN + 3 * GRAIN + 4097,
    "table-minus-sector": 2 * GT_SPAN - 512,
    "text-6000000": 6_000_000,
}
SIZED_SUBFORMATS = ["monolithicSparse", "streamOptimized"]


def make_sized(path, size, text=False):
    """Sparse source of `size` bytes with data at the start, in the middle
    and up to its very last byte (so the last grain holds data); or, for
    text, compressible text throughout."""
    if text:
        line = b"vireo reads every grain qemu-img writes\n"
        path.write_bytes((line * (size // len(line) + 1))[:size])
        return
    with open(path, "wb") as f:
        f.truncate(size)
        f.write(os.urandom(min(size, 100000)))
        if size > 3 * GRAIN:
            f.seek(size // 2)
            f.write(b"\x5a" * min(70000, size // 4))
        f.seek(max(0, size - 5000))
        f.write(os.urandom(min(size, 5000)))


def padded(src):
    """What a reader must give for src: its bytes, zeros to a sector."""
    data = src.read_bytes()
    return data + bytes(-len(data) % 512)


def sized_src(tmp_path, name):
    src = tmp_path / "src.raw"
    make_sized(src, SIZES[name], text=name.startswith("text"))
    return src


@pytest.mark.parametrize("name", SIZES)
@pytest.mark.parametrize("sub", SIZED_SUBFORMATS)
def test_reads_qemu_vmdk_of_any_size(vireo, tmp_path, sub, name):
    src, img, out = sized_src(tmp_path, name), tmp_path / "q.vmdk", tmp_path / "v.raw"
    sh("qemu-img", "convert", "-O", "vmdk", "-o", f"subformat={sub}", src, img)
    same_as_qemu(vireo, img, tmp_path)
    sh(vireo, "img", "convert", "-O", "raw", img, out)
    assert out.read_bytes() == padded(src)


@pytest.mark.parametrize("name", SIZES)
@pytest.mark.parametrize("sub", SIZED_SUBFORMATS)
def test_vireo_writes_vmdk_of_any_size(vireo, tmp_path, sub, name):
    src, img, out = sized_src(tmp_path, name), tmp_path / "v.vmdk", tmp_path / "q.raw"
    sh(vireo, "img", "convert", "-O", "vmdk", "-o", f"subformat={sub}", src, img)
    r = sh("qemu-img", "check", img, ok=False)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert sub in sh("qemu-img", "info", img).stdout.decode()
    sh("qemu-img", "convert", "-O", "raw", img, out)
    assert out.read_bytes() == padded(src)
    same_as_qemu(vireo, img, tmp_path)


def stream_grains(data):
    """(file offset, lba, compressed size) of each grain marker of a stream,
    walked from the overhead to the end-of-stream marker."""
    off, grains = struct.unpack_from("<Q", data, 64)[0] * 512, []
    while off + 16 <= len(data):
        lba, size = struct.unpack_from("<QI", data, off)
        if size:
            grains.append((off, lba, size))
            off += (12 + size + 511) // 512 * 512
        elif struct.unpack_from("<I", data, off + 12)[0] == 0:
            break
        else:
            off += (1 + lba) * 512
    return grains


def put_grain(data, off, plain):
    """Replace the grain at off with plain, compressed, in its own slot."""
    old = struct.unpack_from("<I", data, off + 8)[0]
    z = zlib.compress(plain)
    assert 12 + len(z) <= (12 + old + 511) // 512 * 512
    struct.pack_into("<I", data, off + 8, len(z))
    data[off + 12:off + 12 + len(z)] = z


# A stream's last grain may decompress to anything from the part inside the
# capacity to a whole grain; any other grain must be whole; nothing may
# decompress to more than a grain.
@pytest.mark.parametrize("case", ["short-last", "empty-last", "short-middle", "long-last",
                                  "whole-last"])
def test_stream_grain_lengths(vireo, tmp_path, case):
    src, img, out = tmp_path / "src.raw", tmp_path / "s.vmdk", tmp_path / "o.raw"
    make_sized(src, 2 * GRAIN + 1024)
    sh("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", src, img)
    data = bytearray(img.read_bytes())
    grains = stream_grains(data)
    assert [g[1] for g in grains] == [0, 128, 256]
    last, tail = grains[-1][0], src.read_bytes()[2 * GRAIN:]
    if case == "short-last":
        put_grain(data, last, tail[:512])
    elif case == "empty-last":
        put_grain(data, last, b"")
    elif case == "short-middle":
        put_grain(data, grains[1][0], bytes(GRAIN - 512))
    elif case == "long-last":
        put_grain(data, last, tail + bytes(GRAIN))
    elif case == "whole-last":
        put_grain(data, last, tail + bytes(GRAIN - len(tail)))
    img.write_bytes(bytes(data))
    r = run([vireo, "img", "convert", "-O", "raw", img, out], timeout=60)
    assert b"Sanitizer" not in r.stderr
    if case == "whole-last":
        assert r.returncode == 0, r.stderr.decode()
        assert out.read_bytes() == padded(src)
    else:
        assert r.returncode == 1 and b"is corrupt" in r.stderr, r.stderr.decode()

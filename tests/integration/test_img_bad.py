# SPDX-License-Identifier: Apache-2.0
"""Hostile images: every verb fails cleanly (non-zero exit, a message, no
crash or hang) and never modifies the file."""
import hashlib
import os
import random
import struct

import pytest

from conftest import run
from test_img_qcow2 import qio, sh


def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def base_image(tmp_path, opts="cluster_size=65536"):
    img = tmp_path / "bad.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-o", opts, img, "4M")
    qio(img, "write -P 1 0 256k", "write -P 2 1M 64k")
    sh("qemu-img", "snapshot", "-c", "s", img)
    return img


def poke(path, off, fmt, value):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(struct.pack(fmt, value))


def peek(path, off, fmt):
    with open(path, "rb") as f:
        f.seek(off)
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]


def no_crash(r):
    err = r.stderr.decode(errors="replace")
    assert r.returncode >= 0, f"killed by signal {-r.returncode}: {err}"
    assert "Sanitizer" not in err and "runtime error" not in err, err


def verbs(vireo, img, tmp_path):
    """Run every reading and writing verb; return their results."""
    out = tmp_path / "out.raw"
    cmds = [["info", img], ["info", "--output=json", img], ["check", img],
            ["map", "--output=json", img], ["convert", "-O", "raw", img, out],
            ["snapshot", "-l", img], ["compare", img, img],
            ["bench", "-w", "-c", "100", "-S", "65536", img], ["resize", img, "+1M"],
            ["snapshot", "-c", "x", img], ["amend", "-o", "lazy_refcounts=on", img]]
    res = []
    for c in cmds:
        # -f qcow2: without it a broken magic would rightly probe as raw.
        args = [c[0], "-f", "qcow2"] + c[1:]
        r = run([vireo, "img"] + [str(a) for a in args], timeout=60)
        no_crash(r)
        res.append((c[0], r))
    return res


HEADER_CORRUPTIONS = [
    ("magic", 0, ">I", 0x12345678),
    ("version", 4, ">I", 99),
    ("cluster_bits small", 20, ">I", 8),
    ("cluster_bits big", 20, ">I", 31),
    ("size huge", 24, ">Q", 1 << 62),
    ("crypt", 32, ">I", 1),
    ("l1_size huge", 36, ">I", 0x7fffffff),
    ("l1_size small", 36, ">I", 0),
    ("l1 unaligned", 40, ">Q", 0x30001),
    ("l1 past eof", 40, ">Q", 1 << 40),
    ("l1 on header", 40, ">Q", 0),
    ("rt zero", 48, ">Q", 0),
    ("rt past eof", 48, ">Q", 1 << 40),
    ("rt clusters huge", 56, ">I", 0xffffffff),
    ("rt clusters zero", 56, ">I", 0),
    ("nb snapshots huge", 60, ">I", 0xffffffff),
    ("snapshots past eof", 64, ">Q", 1 << 40),
    ("incompat unknown", 72, ">Q", 1 << 40),
    ("refcount order", 96, ">I", 7),
    ("header length", 100, ">I", 7),
    ("header length big", 100, ">I", 1 << 20),
    ("backing offset", 8, ">Q", 0xfff0),
    ("backing size", 16, ">I", 5000),
]


@pytest.mark.parametrize("name,off,fmt,val", HEADER_CORRUPTIONS,
                         ids=[c[0] for c in HEADER_CORRUPTIONS])
def test_corrupt_header(vireo, tmp_path, name, off, fmt, val):
    img = base_image(tmp_path)
    if name.startswith("backing size"):
        poke(img, 8, ">Q", 0x1000)
    poke(img, off, fmt, val)
    before = sha(img)
    for verb, r in verbs(vireo, img, tmp_path):
        assert r.returncode != 0, f"{verb} accepted a corrupt header ({name})"
        assert r.stderr.strip(), f"{verb} failed without a message"
    assert sha(img) == before, "a corrupt image was modified"


def l1_offset(img):
    return peek(img, 40, ">Q")


def first_l2(img):
    return peek(img, l1_offset(img), ">Q") & 0x00fffffffffffe00


TABLE_CORRUPTIONS = ["l1 past eof", "l1 unaligned", "l2 past eof", "l2 unaligned",
                     "l2 reserved", "rt past eof", "rt unaligned", "compressed garbage",
                     "l2 overlaps header", "snapshot l1 past eof"]


@pytest.mark.parametrize("name", TABLE_CORRUPTIONS)
def test_corrupt_tables(vireo, tmp_path, name):
    img = base_image(tmp_path)
    l1 = l1_offset(img)
    l2 = first_l2(img)
    rt = peek(img, 48, ">Q")
    if name == "l1 past eof":
        poke(img, l1, ">Q", (1 << 63) | (1 << 40))
    elif name == "l1 unaligned":
        poke(img, l1, ">Q", (1 << 63) | (l2 + 512))
    elif name == "l2 past eof":
        poke(img, l2, ">Q", (1 << 63) | (1 << 40))
    elif name == "l2 unaligned":
        poke(img, l2, ">Q", (1 << 63) | (peek(img, l2, ">Q") & 0xffffffffff) + 512)
    elif name == "l2 reserved":
        poke(img, l2, ">Q", peek(img, l2, ">Q") | (1 << 5))
    elif name == "rt past eof":
        poke(img, rt, ">Q", 1 << 40)
    elif name == "rt unaligned":
        poke(img, rt, ">Q", 0x10100)
    elif name == "compressed garbage":
        poke(img, l2, ">Q", (1 << 62) | (5 << 54) | 0x10000)
    elif name == "l2 overlaps header":
        poke(img, l1, ">Q", 1 << 63)
        poke(img, l1, ">Q", (1 << 63) | 0)
        poke(img, l2, ">Q", (1 << 63) | 0)
    elif name == "snapshot l1 past eof":
        poke(img, peek(img, 64, ">Q"), ">Q", 1 << 40)
    before = sha(img)
    res = dict(verbs(vireo, img, tmp_path))
    # Reading all data must fail (or, for overlaps, at least be reported).
    if name not in ("l2 overlaps header",):
        assert res["convert"].returncode != 0 or res["check"].returncode != 0, name
    assert res["check"].returncode != 0, f"check found nothing wrong ({name})"
    if name.startswith("rt") or name.startswith("snapshot"):
        assert sha(img) == before


def test_truncated_and_garbage(vireo, tmp_path):
    img = base_image(tmp_path)
    data = open(img, "rb").read()
    rnd = random.Random(1)
    for n in [0, 4, 71, 104, 300, 65536, 65536 * 3 + 7, len(data) // 2]:
        p = tmp_path / f"t{n}.qcow2"
        p.write_bytes(data[:n])
        before = sha(p)
        for verb, r in verbs(vireo, p, tmp_path):
            pass
        assert sha(p) == before or n > 65536 * 3, f"truncated image ({n}) was modified"
    for i in range(20):
        p = tmp_path / f"g{i}.qcow2"
        junk = bytearray(os.urandom(rnd.randint(1, 200000)))
        junk[:4] = b"QFI\xfb"
        junk[4:8] = struct.pack(">I", rnd.choice([2, 3]))
        junk[20:24] = struct.pack(">I", rnd.choice([9, 12, 16]))
        p.write_bytes(bytes(junk))
        for verb, r in verbs(vireo, p, tmp_path)[:7]:
            pass


def test_mutated_headers_no_crash(vireo, tmp_path):
    img = base_image(tmp_path, "cluster_size=4096")
    data = open(img, "rb").read()
    rnd = random.Random(7)
    out = tmp_path / "o.raw"
    for i in range(60):
        m = bytearray(data)
        for _ in range(rnd.randint(1, 8)):
            pos = rnd.randrange(0, min(len(m), 3 * 4096))
            m[pos] = rnd.randrange(256)
        p = tmp_path / "m.qcow2"
        p.write_bytes(bytes(m))
        for c in (["convert", "-O", "raw", p, out], ["check", p], ["info", p]):
            no_crash(run([vireo, "img"] + [str(a) for a in c], timeout=60))

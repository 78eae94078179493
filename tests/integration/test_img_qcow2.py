# SPDX-License-Identifier: Apache-2.0
"""qcow2 interoperability with qemu-img/qemu-io: whatever qemu writes, vireo
reads byte for byte; whatever vireo writes, qemu-img checks clean and reads
back the same."""
import hashlib
import json
import os
import subprocess

import pytest

from conftest import run  # noqa: F401 (re-exported)


def sh(*args, ok=True, timeout=120):
    r = run([str(a) for a in args], timeout=timeout)
    if ok and r.returncode != 0:
        raise AssertionError(f"{args} failed ({r.returncode}): {r.stderr.decode()}"
                             f"{r.stdout.decode()}")
    return r


def qio(img, *cmds, fmt="qcow2"):
    args = ["qemu-io", "-f", fmt]
    for c in cmds:
        args += ["-c", c]
    sh(*args, img)


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def same_as_qemu(vireo, img, tmp_path, fmt=None):
    """vireo's raw conversion of img equals qemu-img's."""
    a, b = tmp_path / "vireo.raw", tmp_path / "qemu.raw"
    fa = ["-f", fmt] if fmt else []
    sh(vireo, "img", "convert", *fa, "-O", "raw", img, a)
    sh("qemu-img", "convert", *fa, "-O", "raw", img, b)
    assert sha(a) == sha(b), f"{img}: vireo reads different bytes than qemu-img"


def qemu_check_clean(img):
    r = sh("qemu-img", "check", "--output=json", img, ok=False)
    assert r.returncode == 0, f"qemu-img check {img}: {r.returncode} {r.stdout.decode()}" \
                              f"{r.stderr.decode()}"
    j = json.loads(r.stdout)
    assert j.get("corruptions", 0) == 0 and j.get("leaks", 0) == 0


def fill(img, size_k=1024):
    """A mix of patterns, zero writes and gaps, written by qemu-io."""
    qio(img, "write -P 0x11 0 64k", "write -P 0x22 100k 3k", "write -z 192k 128k",
        f"write -P 0x33 {size_k - 70}k 70k", "write -P 0x44 513 1000")


VARIANTS = [
    ("compat=0.10", "cluster_size=65536"),
    ("compat=1.1", "cluster_size=512"),
    ("compat=1.1", "cluster_size=65536"),
    ("compat=1.1", "cluster_size=2M"),
    ("compat=1.1", "cluster_size=4096,refcount_bits=1"),
    ("compat=1.1", "cluster_size=4096,refcount_bits=64"),
    ("compat=1.1", "cluster_size=65536,lazy_refcounts=on"),
    ("compat=1.1", "cluster_size=65536,extended_l2=on"),
]


@pytest.mark.parametrize("compat,opts", VARIANTS)
def test_reads_qemu_written(vireo, tmp_path, compat, opts):
    img = tmp_path / "q.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-o", f"{compat},{opts}", img, "4M")
    fill(img, 4096)
    same_as_qemu(vireo, img, tmp_path)


@pytest.mark.parametrize("ctype", ["zlib", "zstd"])
@pytest.mark.parametrize("cs", ["4096", "65536"])
def test_reads_compressed(vireo, tmp_path, ctype, cs):
    raw = tmp_path / "src.raw"
    with open(raw, "wb") as f:
        for i in range(64):
            f.write(bytes([i]) * 4096 + os.urandom(4096) + b"abc" * 1000 + bytes(4096 - 3000))
    img = tmp_path / "c.qcow2"
    sh("qemu-img", "convert", "-c", "-O", "qcow2", "-o",
       f"compression_type={ctype},cluster_size={cs}", raw, img)
    same_as_qemu(vireo, img, tmp_path)


def test_reads_backing_chain(vireo, tmp_path):
    base = tmp_path / "base.qcow2"
    mid = tmp_path / "mid.qcow2"
    top = tmp_path / "top.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", base, "2M")
    qio(base, "write -P 1 0 1M")
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", mid)
    qio(mid, "write -P 2 512k 512k", "write -z 0 64k")
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top)
    qio(top, "write -P 3 700k 10k")
    same_as_qemu(vireo, top, tmp_path)
    vj = json.loads(sh(vireo, "img", "map", "--output=json", top).stdout)
    qj = json.loads(sh("qemu-img", "map", "--output=json", top).stdout)
    assert [(e["start"], e["length"], e["depth"], e["zero"], e["data"]) for e in vj] == \
           [(e["start"], e["length"], e["depth"], e["zero"], e["data"]) for e in qj]


def test_backing_loop_refused(vireo, tmp_path):
    a, b = tmp_path / "a.qcow2", tmp_path / "b.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", a, "1M")
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", b)
    sh("qemu-img", "rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", a)
    r = sh(vireo, "img", "convert", "-O", "raw", b, tmp_path / "x.raw", ok=False)
    assert r.returncode != 0 and b"loop" in r.stderr


def test_reads_internal_snapshots(vireo, tmp_path):
    img = tmp_path / "s.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
    qio(img, "write -P 1 0 1M")
    sh("qemu-img", "snapshot", "-c", "one", img)
    qio(img, "write -P 2 0 64k")
    sh("qemu-img", "snapshot", "-c", "two", img)
    same_as_qemu(vireo, img, tmp_path)
    v = sh(vireo, "img", "snapshot", "-l", img).stdout.decode().splitlines()
    q = sh("qemu-img", "snapshot", "-l", img).stdout.decode().splitlines()
    assert [l.split()[:2] for l in v] == [l.split()[:2] for l in q]


def info_fields(j):
    keys = ["virtual-size", "filename", "cluster-size", "format", "dirty-flag",
            "backing-filename", "full-backing-filename", "backing-filename-format",
            "format-specific"]
    return {k: j.get(k) for k in keys}


@pytest.mark.parametrize("opts", ["compat=1.1", "compat=0.10", "compression_type=zstd",
                                  "lazy_refcounts=on,refcount_bits=8", "extended_l2=on"])
def test_info_json_agrees(vireo, tmp_path, opts):
    os.chdir(tmp_path)
    sh("qemu-img", "create", "-q", "-f", "qcow2", "b.qcow2", "1M")
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-o", opts, "-b", "b.qcow2", "-F", "qcow2",
       "a.qcow2", "3M")
    v = json.loads(sh(vireo, "img", "info", "--output=json", "a.qcow2").stdout)
    q = json.loads(sh("qemu-img", "info", "--output=json", "a.qcow2").stdout)
    assert info_fields(v) == info_fields(q)
    vc = json.loads(sh(vireo, "img", "info", "--backing-chain", "--output=json",
                       "a.qcow2").stdout)
    assert [e["filename"] for e in vc] == ["a.qcow2", "b.qcow2"]


# ---- images vireo writes ----

def make_src(path, size=3 << 20):
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(0)
        f.write(os.urandom(100000))
        f.seek(1 << 20)
        f.write(b"\x5a" * 70000)
        f.seek(size - 5000)
        f.write(os.urandom(5000))


@pytest.mark.parametrize("opts", ["compat=1.1", "compat=0.10", "cluster_size=512",
                                  "cluster_size=2M", "refcount_bits=1,cluster_size=4096",
                                  "refcount_bits=64", "lazy_refcounts=on",
                                  "preallocation=metadata", "preallocation=falloc"])
def test_vireo_convert_clean(vireo, tmp_path, opts):
    src, img = tmp_path / "src.raw", tmp_path / "v.qcow2"
    make_src(src)
    sh(vireo, "img", "convert", "-O", "qcow2", "-o", opts, src, img)
    qemu_check_clean(img)
    sh("qemu-img", "compare", src, img)
    assert sh(vireo, "img", "check", img, ok=False).returncode == 0


@pytest.mark.parametrize("ctype", ["zlib", "zstd"])
def test_vireo_compressed(vireo, tmp_path, ctype):
    src, img = tmp_path / "src.raw", tmp_path / "c.qcow2"
    make_src(src)
    sh(vireo, "img", "convert", "-c", "-O", "qcow2", "-o", f"compression_type={ctype}", src,
       img)
    qemu_check_clean(img)
    sh("qemu-img", "compare", src, img)
    q = json.loads(sh("qemu-img", "check", "--output=json", img).stdout)
    assert q.get("compressed-clusters", 0) > 0
    # Overwrite part of a compressed cluster: still clean.
    qio(img, "write -P 9 1000 10")
    sh(vireo, "img", "bench", "-w", "-c", "50", "-d", "4", "-S", "12345", img)
    qemu_check_clean(img)


def test_bench_writes_clean(vireo, tmp_path):
    img = tmp_path / "b.qcow2"
    sh(vireo, "img", "create", "-f", "qcow2", img, "8M")
    sh(vireo, "img", "bench", "-w", "-c", "2000", "-d", "16", "-s", "4096", "-S", "1234567",
       "--pattern=7", img)
    qemu_check_clean(img)
    same_as_qemu(vireo, img, tmp_path)
    sh(vireo, "img", "bench", "-c", "2000", "-d", "32", "-t", "none", img)


def test_vireo_snapshots(vireo, tmp_path):
    img = tmp_path / "s.qcow2"
    sh(vireo, "img", "create", "-f", "qcow2", img, "2M")
    qio(img, "write -P 1 0 2M")
    sh(vireo, "img", "snapshot", "-c", "first", img)
    qemu_check_clean(img)
    qio(img, "write -P 2 0 1M")
    sh(vireo, "img", "snapshot", "-c", "second", img)
    qemu_check_clean(img)
    v = sh(vireo, "img", "snapshot", "-l", img).stdout.decode().splitlines()
    q = sh("qemu-img", "snapshot", "-l", img).stdout.decode().splitlines()
    assert [l.split()[:2] for l in v] == [l.split()[:2] for l in q]
    sh(vireo, "img", "snapshot", "-a", "first", img)
    qemu_check_clean(img)
    qio(img, "read -P 1 0 2M")
    sh(vireo, "img", "snapshot", "-d", "second", img)
    qemu_check_clean(img)
    sh("qemu-img", "snapshot", "-a", "first", img)
    qio(img, "read -P 1 0 2M")
    sh(vireo, "img", "snapshot", "-d", "first", img)
    qemu_check_clean(img)


def test_commit_rebase_resize(vireo, tmp_path):
    os.chdir(tmp_path)
    sh(vireo, "img", "create", "-f", "qcow2", "base.qcow2", "2M")
    qio("base.qcow2", "write -P 1 0 2M")
    sh(vireo, "img", "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2")
    qio("top.qcow2", "write -P 2 64k 64k", "write -z 256k 64k")
    sh("qemu-img", "convert", "-O", "raw", "top.qcow2", "expect.raw")
    sh(vireo, "img", "commit", "top.qcow2")
    qemu_check_clean("base.qcow2")
    qemu_check_clean("top.qcow2")
    sh("qemu-img", "compare", "expect.raw", "base.qcow2")
    sh("qemu-img", "compare", "expect.raw", "top.qcow2")
    # Safe rebase onto nothing: top gets all the data.
    sh(vireo, "img", "rebase", "-b", "", "top.qcow2")
    qemu_check_clean("top.qcow2")
    sh("qemu-img", "compare", "expect.raw", "top.qcow2")
    assert "backing-filename" not in json.loads(
        sh("qemu-img", "info", "--output=json", "top.qcow2").stdout)
    sh(vireo, "img", "rebase", "-u", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2")
    assert json.loads(sh("qemu-img", "info", "--output=json", "top.qcow2").stdout)[
        "backing-filename"] == "base.qcow2"
    sh(vireo, "img", "resize", "top.qcow2", "+1G")
    qemu_check_clean("top.qcow2")
    assert json.loads(sh("qemu-img", "info", "--output=json", "top.qcow2").stdout)[
        "virtual-size"] == (2 << 20) + (1 << 30)
    sh(vireo, "img", "create", "-f", "raw", "r.raw", "4M")
    sh(vireo, "img", "resize", "--shrink", "r.raw", "1M")
    assert os.path.getsize("r.raw") == 1 << 20
    assert sh(vireo, "img", "resize", "r.raw", "512K", ok=False).returncode != 0


def test_amend(vireo, tmp_path):
    img = tmp_path / "a.qcow2"
    sh(vireo, "img", "create", "-f", "qcow2", "-o", "compat=0.10", img, "1M")
    qio(img, "write -P 1 0 64k")
    sh(vireo, "img", "amend", "-o", "compat=1.1,lazy_refcounts=on", img)
    j = json.loads(sh("qemu-img", "info", "--output=json", img).stdout)
    assert j["format-specific"]["data"]["compat"] == "1.1"
    assert j["format-specific"]["data"]["lazy-refcounts"] is True
    qemu_check_clean(img)
    qio(img, "read -P 1 0 64k")


def test_check_repairs_leaks(vireo, tmp_path):
    img = tmp_path / "l.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", img, "1M")
    qio(img, "write -P 1 0 1M")
    # Leak a cluster: bump the refcount of the last cluster past EOF area.
    sh(vireo, "img", "check", img)
    size = os.path.getsize(img)
    with open(img, "r+b") as f:
        f.truncate(size + 65536)
    # Mark the new cluster used in the refcount block via qemu's own view:
    r = sh(vireo, "img", "check", "--output=json", img, ok=False)
    assert r.returncode == 0
    assert json.loads(r.stdout)["image-end-offset"] == size


def test_compare_and_measure(vireo, tmp_path):
    a, b = tmp_path / "a.raw", tmp_path / "b.qcow2"
    make_src(a)
    sh(vireo, "img", "convert", "-O", "qcow2", a, b)
    assert sh(vireo, "img", "compare", a, b).returncode == 0
    qio(b, "write -P 3 0 1")
    assert sh(vireo, "img", "compare", a, b, ok=False).returncode == 1
    j = json.loads(sh(vireo, "img", "measure", "--output=json", "-O", "qcow2", "--size",
                      "1G").stdout)
    q = json.loads(sh("qemu-img", "measure", "--output=json", "-O", "qcow2", "--size",
                      "1G").stdout)
    assert abs(j["required"] - q["required"]) <= 4 * 65536


def test_help(vireo):
    assert b"convert" in sh(vireo, "img", "--help").stdout
    assert b"usage: vireo img convert" in sh(vireo, "img", "convert", "--help").stdout


def test_dirty_lazy_refcounts_repaired(vireo, tmp_path):
    img = tmp_path / "d.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", img, "16M")
    run(["qemu-io", "-c", "write -P 3 0 1M", "-c", "sigraise 9", str(img)])
    j = json.loads(sh(vireo, "img", "info", "--output=json", img).stdout)
    assert j["dirty-flag"] is True
    same_as_qemu(vireo, img, tmp_path)
    # Opening read-write repairs the refcounts and clears the flag.
    sh(vireo, "img", "bench", "-w", "-c", "1", "-o", "4M", img)
    qemu_check_clean(img)
    assert json.loads(sh("qemu-img", "info", "--output=json", img).stdout)["dirty-flag"] is False
    qio(img, "read -P 3 0 1M")


def test_convert_backing_and_existing(vireo, tmp_path):
    os.chdir(tmp_path)
    make_src("src.raw")
    sh("qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "3M")
    qio("base.qcow2", "write -P 0x5a 1M 70000")
    sh(vireo, "img", "convert", "-O", "qcow2", "-B", "base.qcow2", "src.raw", "over.qcow2")
    qemu_check_clean("over.qcow2")
    sh("qemu-img", "compare", "src.raw", "over.qcow2")
    j = json.loads(sh("qemu-img", "info", "--output=json", "over.qcow2").stdout)
    assert j["backing-filename"] == "base.qcow2"
    # -n: into an existing image, whose stale data must be overwritten.
    sh("qemu-img", "create", "-q", "-f", "qcow2", "exist.qcow2", "3M")
    qio("exist.qcow2", "write -P 7 0 3M")
    sh(vireo, "img", "convert", "-n", "-O", "qcow2", "src.raw", "exist.qcow2")
    sh("qemu-img", "compare", "src.raw", "exist.qcow2")
    qemu_check_clean("exist.qcow2")


def test_map_compressed_and_zero(vireo, tmp_path):
    img = tmp_path / "m.qcow2"
    src = tmp_path / "s.raw"
    with open(src, "wb") as f:
        f.write(b"abc" * 50000)
        f.truncate(1 << 20)
    sh("qemu-img", "convert", "-c", "-O", "qcow2", src, img)
    qio(img, "write -z 512k 128k", "write -P 1 768k 64k")
    vj = json.loads(sh(vireo, "img", "map", "--output=json", img).stdout)
    qj = json.loads(sh("qemu-img", "map", "--output=json", img).stdout)
    key = lambda e: (e["start"], e["length"], e["depth"], e["present"], e["zero"], e["data"],
                     e.get("offset"))
    assert [key(e) for e in vj] == [key(e) for e in qj]


def test_info_human_agrees(vireo, tmp_path):
    os.chdir(tmp_path)
    sh("qemu-img", "create", "-q", "-f", "qcow2", "b.qcow2", "1M")
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", "a.qcow2")
    v = sh(vireo, "img", "info", "a.qcow2").stdout.decode().splitlines()
    q = sh("qemu-img", "info", "a.qcow2").stdout.decode().splitlines()
    drop = lambda ls: [l for l in ls if not l.startswith("disk size")]
    assert drop(v) == drop(q)


def test_snapshot_info_json_agrees(vireo, tmp_path):
    img = tmp_path / "sj.qcow2"
    sh(vireo, "img", "create", "-f", "qcow2", img, "1M")
    sh(vireo, "img", "snapshot", "-c", "mine", img)
    sh("qemu-img", "snapshot", "-c", "theirs", img)
    v = json.loads(sh(vireo, "img", "info", "--output=json", img).stdout)["snapshots"]
    q = json.loads(sh("qemu-img", "info", "--output=json", img).stdout)["snapshots"]
    assert v == q
    assert sh(vireo, "img", "snapshot", "-l", img).stdout == \
        sh("qemu-img", "snapshot", "-l", img).stdout


def test_check_repairs_refcount_corruption(vireo, tmp_path):
    import struct
    img = tmp_path / "rc.qcow2"
    sh(vireo, "img", "create", "-f", "qcow2", img, "1M")
    qio(img, "write -P 4 0 256k")
    with open(img, "r+b") as f:
        f.seek(48)
        rt = struct.unpack(">Q", f.read(8))[0]
        f.seek(rt)
        rb = struct.unpack(">Q", f.read(8))[0]
        # Zero the refcount of the last data cluster: a real corruption.
        f.seek(0, 2)
        last = f.tell() // 65536 - 1
        f.seek(rb + 2 * last)
        f.write(b"\0\0")
    assert sh(vireo, "img", "check", img, ok=False).returncode == 2
    assert sh("qemu-img", "check", img, ok=False).returncode == 2
    assert sh(vireo, "img", "check", "-r", "leaks", img, ok=False).returncode == 2
    assert sh(vireo, "img", "check", "-r", "all", img, ok=False).returncode == 0
    qemu_check_clean(img)
    qio(img, "read -P 4 0 256k")


def test_backing_depth_limit(vireo, tmp_path):
    os.chdir(tmp_path)
    sh(vireo, "img", "create", "-f", "qcow2", "l0.qcow2", "1M")
    for i in range(1, 67):
        sh(vireo, "img", "create", "-u", "-f", "qcow2", "-b", f"l{i - 1}.qcow2", "-F", "qcow2",
           f"l{i}.qcow2", "1M")
    r = sh(vireo, "img", "convert", "-O", "raw", "l66.qcow2", "x.raw", ok=False)
    assert r.returncode != 0 and b"deeper than 64" in r.stderr
    sh(vireo, "img", "convert", "-O", "raw", "l60.qcow2", "x.raw")


def test_amend_downgrade_keeps_zero_clusters(vireo, tmp_path):
    img, raw = tmp_path / "am.qcow2", tmp_path / "am.raw"
    sh(vireo, "img", "create", "-f", "qcow2", img, "4M")
    qio(img, "write -P 1 0 1M", "write -z 64k 128k")
    sh("qemu-img", "convert", "-O", "raw", img, raw)
    sh(vireo, "img", "amend", "-o", "compat=0.10", img)
    assert json.loads(sh("qemu-img", "info", "--output=json", img).stdout)[
        "format-specific"]["data"]["compat"] == "0.10"
    qemu_check_clean(img)
    sh("qemu-img", "compare", raw, img)


@pytest.mark.parametrize("opts", ["cluster_size=4096,refcount_bits=64",
                                  "cluster_size=512,refcount_bits=64"])
def test_long_runs_with_small_refcount_blocks(vireo, tmp_path, opts):
    """3 MiB of data in one piece into an image whose refcount blocks cover
    few clusters (512 or 64): the contiguous allocations must still be
    found (they failed with 'cannot find free clusters', the file growing)."""
    src, img = tmp_path / "src.raw", tmp_path / "v.qcow2"
    src.write_bytes(os.urandom(3 << 20))
    sh(vireo, "img", "convert", "-O", "qcow2", "-o", opts, src, img)
    qemu_check_clean(img)
    sh("qemu-img", "compare", src, img)
    assert os.path.getsize(img) < 9 << 20       # no runaway growth (it reached 128 MiB)


@pytest.mark.parametrize("bits", [1, 2])
def test_compressed_with_narrow_refcounts(vireo, tmp_path, bits):
    """Compressed clusters share host clusters only while the refcount can
    count one more sharer: with 1- or 2-bit refcounts that is soon. The
    source's length is no multiple of 512: its last partial sector must
    come through (the image size is rounded up, as qemu-img does)."""
    src, img = tmp_path / "src.raw", tmp_path / "c.qcow2"
    src.write_bytes(b"vireo compresses this well " * 40000)
    sh(vireo, "img", "convert", "-c", "-O", "qcow2", "-o", f"refcount_bits={bits}", src, img)
    qemu_check_clean(img)
    sh("qemu-img", "compare", src, img)


@pytest.mark.parametrize("old", ["1M", "1000K"])
def test_grown_overlay_reads_zeros_past_the_old_end(vireo, tmp_path, old):
    """An overlay grown over a larger backing file shows zeros beyond its
    old size, not the backing file's bytes (as qemu-img resize does)."""
    base, ov, out = tmp_path / "base.raw", tmp_path / "ov.qcow2", tmp_path / "out.raw"
    base.write_bytes(b"\x55" * (2 << 20))
    sh(vireo, "img", "create", "-f", "qcow2", "-b", base, "-F", "raw", ov, old)
    sh(vireo, "img", "resize", ov, "3M")
    qemu_check_clean(ov)
    sh("qemu-img", "convert", "-O", "raw", ov, out)
    data = out.read_bytes()
    n = {"1M": 1 << 20, "1000K": 1000 << 10}[old]
    assert len(data) == 3 << 20
    assert data[:n] == b"\x55" * n, "the old area lost its backing data"
    assert data[n:] == bytes(len(data) - n), "backing data shows past the old end"

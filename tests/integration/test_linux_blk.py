# SPDX-License-Identifier: Apache-2.0
"""virtio-blk under Linux's own driver inside `vireo run`: ext4 across
reboots on qcow2, discard and write-zeroes reaching the image, read-only
disks, two disks at once, and raw and vmdk images. The guest reports
checksums on its console; the host checks the image with qemu-img, e2fsck
and debugfs, which read the formats independently of vireo."""
import hashlib
import json
import os
import re

import pytest

from conftest import run
from linux_vm import run_script

MiB = 1 << 20
ZERO_4M = hashlib.sha256(bytes(4 * MiB)).hexdigest()

# e2fsprogs' mke2fs (/sbin; busybox's /bin/mke2fs makes only ext2) wants
# /etc/mtab to tell whether the device is mounted.
PRELUDE = "ln -sf /proc/mounts /etc/mtab\n"


def img(vireo, *args):
    r = run([vireo, "img", *args], timeout=120)
    assert r.returncode == 0, f"vireo img {' '.join(args)}: {r.stderr.decode()}"
    return r.stdout.decode()


def qemu_img(*args, ok=True):
    r = run(["qemu-img", *args], timeout=120)
    if ok:
        assert r.returncode == 0, f"qemu-img {' '.join(args)}: {r.stdout.decode()}{r.stderr.decode()}"
    return r


def to_raw(image, fmt, out):
    """The image's contents as qemu-img reads them (not vireo)."""
    qemu_img("convert", "-f", fmt, "-O", "raw", str(image), str(out))
    return out


def sums(console, tag="SUM"):
    """{name: sha256} from the guest's `sha256sum` lines prefixed with tag."""
    return {m.group(2): m.group(1)
            for m in re.finditer(rf"^{tag} ([0-9a-f]{{64}})  (\S+)\r?$", console, re.M)}


def marker(console, name):
    m = re.search(rf"^{name} (.*?)\r?$", console, re.M)
    assert m, f"no {name} line on the console:\n{console[-3000:]}"
    return m.group(1).strip()


def boot(vireo, tmp_path, script, disks, name, timeout=300, **kw):
    args = []
    for d in disks:
        args += ["--disk", d]
    rc, out = run_script(vireo, tmp_path, PRELUDE + script, timeout=timeout, args=args,
                         name=name, **kw)
    assert rc == 0 and "LINUX-DONE" in out, f"{name}: vireo exited {rc}; console:\n{out[-3000:]}"
    assert "INSMOD-FAIL" not in out, out[-3000:]
    return out


def host_fs_check(raw, files):
    """e2fsck finds the file system clean, and debugfs reads back `files`
    ({name: sha256}) with the checksums the guest reported."""
    r = run(["e2fsck", "-fn", str(raw)], timeout=120)
    assert r.returncode == 0, f"e2fsck: {r.stdout.decode()}{r.stderr.decode()}"
    for name, sha in files.items():
        out = raw.parent / ("dump-" + name.replace("/", "_"))
        r = run(["debugfs", "-R", f"dump /{name} {out}", str(raw)], timeout=60)
        assert r.returncode == 0 and out.exists(), f"debugfs dump /{name}: {r.stderr.decode()}"
        assert hashlib.sha256(out.read_bytes()).hexdigest() == sha, f"/{name} differs on the host"


WRITE_FILES = """
/sbin/mke2fs -q -F -t ext4 /dev/vda && echo MKFS-OK
mount -t ext4 /dev/vda /mnt && echo MOUNT1-OK
for i in 1 2 3; do dd if=/dev/urandom of=/mnt/f$i bs=64k count=$((i * 24)) 2>/dev/null; done
mkdir /mnt/dir && echo "small file $(cat /proc/sys/kernel/random/uuid)" > /mnt/dir/small
(cd /mnt && sha256sum f1 f2 f3 dir/small) | sed 's/^/SUM /'
umount /mnt && echo UMOUNT1-OK
"""

READ_FILES = """
mount -t ext4 /dev/vda /mnt && echo MOUNT2-OK
(cd /mnt && sha256sum f1 f2 f3 dir/small) | sed 's/^/SUM /'
umount /mnt && echo UMOUNT2-OK
"""


def test_ext4_on_qcow2_survives_a_new_vireo(linux, tmp_path):
    disk = tmp_path / "disk.qcow2"
    img(linux, "create", "-f", "qcow2", str(disk), "256M")
    out1 = boot(linux, tmp_path, WRITE_FILES, [str(disk)], "write")
    for m in ("MKFS-OK", "MOUNT1-OK", "UMOUNT1-OK"):
        assert m in out1, f"{m} missing:\n{out1[-3000:]}"
    written = sums(out1)
    assert set(written) == {"f1", "f2", "f3", "dir/small"}, out1[-3000:]
    assert len(set(written.values())) == 4

    out2 = boot(linux, tmp_path, READ_FILES, [str(disk)], "read")
    for m in ("MOUNT2-OK", "UMOUNT2-OK"):
        assert m in out2, f"{m} missing:\n{out2[-3000:]}"
    assert sums(out2) == written, "files changed across the reboot"

    r = qemu_img("check", "-f", "qcow2", str(disk))
    assert "No errors were found" in r.stdout.decode(), r.stdout.decode()
    host_fs_check(to_raw(disk, "qcow2", tmp_path / "disk.raw"), written)


DISCARD = """
dd if=/dev/urandom of=/dev/vda bs=1M count=16 conv=fsync 2>/dev/null && echo FILLED
echo "DISCARD-MAX $(cat /sys/block/vda/queue/discard_max_bytes)"
echo "WZ-MAX $(cat /sys/block/vda/queue/write_zeroes_max_bytes)"
echo "BEFORE $(dd if=/dev/vda bs=1M count=4 2>/dev/null | sha256sum | cut -d' ' -f1)"
blkrange discard /dev/vda 0 4194304
blkrange zeroout /dev/vda 8388608 4194304
sync
echo 3 > /proc/sys/vm/drop_caches
for r in 0 4 8 12; do
  echo "RANGE $r $(dd if=/dev/vda bs=1M skip=$r count=4 2>/dev/null | sha256sum | cut -d' ' -f1)"
done
"""


def data_bytes(map_json, start, end):
    """Bytes of [start, end) that the image maps as data."""
    n = 0
    for e in map_json:
        lo, hi = max(e["start"], start), min(e["start"] + e["length"], end)
        if hi > lo and e["data"]:
            n += hi - lo
    return n


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_discard_and_write_zeroes_reach_the_image(linux, tmp_path, fmt):
    disk = tmp_path / f"disk.{fmt}"
    img(linux, "create", "-f", fmt, str(disk), "64M")
    out = boot(linux, tmp_path, DISCARD, [f"{disk},format={fmt}"], "discard")
    assert "FILLED" in out, out[-3000:]
    # the device offers both, so Linux sends them rather than writing zeroes
    assert int(marker(out, "DISCARD-MAX")) > 0, "the guest sees no discard support"
    assert int(marker(out, "WZ-MAX")) > 0, "the guest sees no write-zeroes support"
    assert "BLKRANGE discard ok" in out, out[-3000:]
    assert "BLKRANGE zeroout ok" in out, out[-3000:]
    ranges = {int(m.group(1)): m.group(2)
              for m in re.finditer(r"^RANGE (\d+) ([0-9a-f]{64})\r?$", out, re.M)}
    assert set(ranges) == {0, 4, 8, 12}, out[-3000:]
    assert marker(out, "BEFORE") != ZERO_4M
    assert ranges[8] == ZERO_4M, "the write-zeroes range does not read zero in the guest"
    assert ranges[4] != ZERO_4M and ranges[12] != ZERO_4M

    if fmt == "qcow2":
        r = qemu_img("check", "-f", "qcow2", str(disk))
        assert "No errors were found" in r.stdout.decode(), r.stdout.decode()
    m = json.loads(qemu_img("map", "-f", fmt, "--output=json", str(disk)).stdout)
    # the discarded range's allocation is gone from the image
    assert data_bytes(m, 0, 4 * MiB) == 0, f"discarded range still allocated: {m}"
    assert data_bytes(m, 4 * MiB, 8 * MiB) == 4 * MiB
    assert data_bytes(m, 12 * MiB, 16 * MiB) == 4 * MiB
    raw = to_raw(disk, fmt, tmp_path / "out.raw").read_bytes()
    assert raw[:4 * MiB] == bytes(4 * MiB), "the discarded range does not read zero"
    assert raw[8 * MiB:12 * MiB] == bytes(4 * MiB), "the write-zeroes range does not read zero"
    assert hashlib.sha256(raw[4 * MiB:8 * MiB]).hexdigest() == ranges[4]
    assert hashlib.sha256(raw[12 * MiB:16 * MiB]).hexdigest() == ranges[12]


# The same writes on vda (read-only) and vdb (writable): each must fail on
# vda and succeed on vdb, so a failure on vda is the read-only disk's doing.
READONLY = """
for d in vda vdb; do
  echo "RO $d $(cat /sys/block/$d/ro)"
  echo "READ1 $d $(dd if=/dev/$d bs=1M count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"
  dd if=/dev/zero of=/dev/$d bs=4k count=1 conv=fsync 2>/dev/null; echo "WRITE1 $d rc=$?"
  blockdev --setrw /dev/$d
  dd if=/dev/zero of=/dev/$d bs=4k count=1 conv=fsync 2>/dev/null; echo "WRITE2 $d rc=$?"
  blkrange discard /dev/$d 0 65536 >/dev/null; echo "DISCARD $d rc=$?"
  blkrange zeroout /dev/$d 0 65536 >/dev/null; echo "ZEROOUT $d rc=$?"
  /sbin/mke2fs -q -F /dev/$d 2>/dev/null; echo "MKFS $d rc=$?"
done
echo 3 > /proc/sys/vm/drop_caches
echo "READ2 vda $(dd if=/dev/vda bs=1M count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"
"""


def test_readonly_disk_refuses_writes(linux, tmp_path):
    src = tmp_path / "src.raw"
    content = os.urandom(MiB)
    with open(src, "wb") as f:
        f.write(content)
        f.truncate(16 * MiB)
    disk = tmp_path / "ro.qcow2"
    img(linux, "convert", "-f", "raw", "-O", "qcow2", str(src), str(disk))
    rw = tmp_path / "rw.raw"
    img(linux, "create", "-f", "raw", str(rw), "16M")
    before = hashlib.sha256(disk.read_bytes()).hexdigest()
    out = boot(linux, tmp_path, READONLY, [f"{disk},readonly=on", f"{rw},format=raw"], "ro")
    assert marker(out, "RO vda") == "1", "the guest does not see a read-only disk"
    assert marker(out, "RO vdb") == "0"
    want = hashlib.sha256(content).hexdigest()
    assert marker(out, "READ1 vda") == want, "the guest cannot read the read-only disk"
    for op in ("WRITE1", "WRITE2", "DISCARD", "ZEROOUT", "MKFS"):
        assert marker(out, f"{op} vdb") == "rc=0", f"{op} failed on a writable disk:\n{out[-3000:]}"
        assert marker(out, f"{op} vda") != "rc=0", f"{op} succeeded on a read-only disk:\n{out[-3000:]}"
    assert marker(out, "READ2 vda") == want
    assert hashlib.sha256(disk.read_bytes()).hexdigest() == before, "the image file changed"
    assert qemu_img("compare", "-f", "raw", "-F", "qcow2", str(src), str(disk)).returncode == 0
    assert run(["e2fsck", "-fn", str(rw)], timeout=60).returncode == 0, "vdb got no file system"


TWO_DISKS = """
ls /sys/block | tr '\\n' ' ' | sed 's/^/BLOCKS /'; echo
for d in vda vdb; do
  echo "SIZE $d $(cat /sys/block/$d/size)"
  echo "HEAD $d $(head -c 48 /dev/$d)"
  echo "written by the guest to $d" | dd of=/dev/$d bs=512 seek=2048 conv=fsync 2>/dev/null
  echo "WROTE $d rc=$?"
done
"""


def test_two_disks_each_with_its_own_content(linux, tmp_path):
    a_src, b = tmp_path / "a.raw", tmp_path / "b.raw"
    tags = {}
    for path, size, name in ((a_src, 32, "A"), (b, 48, "B")):
        tags[name] = f"vireo disk {name} {os.urandom(8).hex()}".ljust(48)
        with open(path, "wb") as f:
            f.write(tags[name].encode())
            f.truncate(size * MiB)
    a = tmp_path / "a.qcow2"
    img(linux, "convert", "-f", "raw", "-O", "qcow2", str(a_src), str(a))
    out = boot(linux, tmp_path, TWO_DISKS, [f"{a},format=qcow2", f"{b},format=raw"], "two")
    blocks = marker(out, "BLOCKS").split()
    assert "vda" in blocks and "vdb" in blocks and "vdc" not in blocks, blocks
    # --disk options become vda, vdb in order
    assert marker(out, "SIZE vda") == str(32 * MiB // 512)
    assert marker(out, "SIZE vdb") == str(48 * MiB // 512)
    assert marker(out, "HEAD vda") == tags["A"].strip()
    assert marker(out, "HEAD vdb") == tags["B"].strip()
    assert marker(out, "WROTE vda") == "rc=0" and marker(out, "WROTE vdb") == "rc=0"
    for path, fmt, dev, tag in ((a, "qcow2", "vda", "A"), (b, "raw", "vdb", "B")):
        data = to_raw(path, fmt, tmp_path / f"check-{dev}.raw").read_bytes()
        assert data[:48].decode() == tags[tag], f"{dev}'s first bytes changed"
        assert data[MiB:MiB + 64].startswith(f"written by the guest to {dev}\n".encode()), \
            f"{path.name} lacks what the guest wrote to {dev}"


ROUND_TRIP = """
/sbin/mke2fs -q -F -t ext4 /dev/vda && echo MKFS-OK
mount -t ext4 /dev/vda /mnt && echo MOUNT1-OK
dd if=/dev/urandom of=/mnt/data bs=64k count=80 2>/dev/null
seq 1 20000 > /mnt/numbers
(cd /mnt && sha256sum data numbers) | sed 's/^/SUM /'
umount /mnt && echo UMOUNT1-OK
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 /dev/vda /mnt && echo MOUNT2-OK
(cd /mnt && sha256sum data numbers) | sed 's/^/AGAIN /'
umount /mnt && echo UMOUNT2-OK
"""


@pytest.mark.parametrize("fmt", ["raw", "vmdk"])
def test_ext4_round_trip_on_raw_and_vmdk(linux, tmp_path, fmt):
    disk = tmp_path / f"disk.{fmt}"
    img(linux, "create", "-f", fmt, str(disk), "128M")
    out = boot(linux, tmp_path, ROUND_TRIP, [f"{disk},format={fmt}"], fmt)
    for m in ("MKFS-OK", "MOUNT1-OK", "UMOUNT1-OK", "MOUNT2-OK", "UMOUNT2-OK"):
        assert m in out, f"{m} missing:\n{out[-3000:]}"
    written = sums(out)
    assert set(written) == {"data", "numbers"}, out[-3000:]
    assert sums(out, "AGAIN") == written, "files read back differ after a remount"
    if fmt == "vmdk":
        r = qemu_img("check", "-f", "vmdk", str(disk))
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    raw = to_raw(disk, fmt, tmp_path / "out.raw")
    host_fs_check(raw, written)
    assert qemu_img("compare", "-f", fmt, "-F", "raw", str(disk), str(raw)).returncode == 0


OVERLAY_ZEROES = """
blkrange zeroout /dev/vda 0 4194304
blkrange discard /dev/vda 4194304 4194304
echo 3 > /proc/sys/vm/drop_caches
for r in 0 8; do
  echo "RANGE $r $(dd if=/dev/vda bs=1M skip=$r count=4 2>/dev/null | sha256sum | cut -d' ' -f1)"
done
"""


def test_write_zeroes_on_an_overlay_hide_the_backing_data(linux, tmp_path):
    """A clone's disk is a qcow2 overlay: zeroes written to it must read as
    zeroes, not as the backing file's data, which stays as it was."""
    backing = tmp_path / "backing.raw"
    data = os.urandom(12 * MiB)
    backing.write_bytes(data)
    overlay = tmp_path / "overlay.qcow2"
    img(linux, "create", "-f", "qcow2", "-b", str(backing), "-F", "raw", str(overlay))
    out = boot(linux, tmp_path, OVERLAY_ZEROES, [f"{overlay},format=qcow2"], "overlay")
    assert "BLKRANGE zeroout ok" in out and "BLKRANGE discard ok" in out, out[-3000:]
    ranges = {int(m.group(1)): m.group(2)
              for m in re.finditer(r"^RANGE (\d+) ([0-9a-f]{64})\r?$", out, re.M)}
    assert ranges.get(0) == ZERO_4M, "zeroes written over a backing file read as its data"
    assert ranges.get(8) == hashlib.sha256(data[8 * MiB:]).hexdigest(), "untouched range changed"
    assert backing.read_bytes() == data, "the backing file changed"
    r = qemu_img("check", "-f", "qcow2", str(overlay))
    assert "No errors were found" in r.stdout.decode(), r.stdout.decode()
    raw = to_raw(overlay, "qcow2", tmp_path / "out.raw").read_bytes()
    assert raw[:4 * MiB] == bytes(4 * MiB), "qemu-img reads the backing data under the zeroes"
    assert raw[8 * MiB:] == data[8 * MiB:]

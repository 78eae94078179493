# SPDX-License-Identifier: Apache-2.0
"""`vireo run` refuses bad input with a clear message and exit code 2, and
never crashes or hangs."""
import os
import struct

import pytest

from conftest import run

CONFIG = 2


def refuse(vireo, args, expect, code=CONFIG):
    r = run([vireo, "run"] + args, timeout=20, stdin=subprocess_devnull())
    err = r.stderr.decode()
    assert r.returncode == code, (r.returncode, err)
    assert expect in err, err
    assert "AddressSanitizer" not in err and "runtime error" not in err
    return err


def subprocess_devnull():
    import subprocess
    return subprocess.DEVNULL


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


def write(path, data):
    path.write_bytes(data)
    return str(path)


def test_no_kernel(vireo):
    refuse(vireo, [], "no kernel given")


def test_missing_kernel(vireo, tmp):
    refuse(vireo, ["--kernel", str(tmp / "nope")], "cannot open kernel")


def test_empty_kernel(vireo, tmp):
    refuse(vireo, ["--kernel", write(tmp / "empty", b"")], "file is empty")


def test_directory_as_kernel(vireo, tmp):
    refuse(vireo, ["--kernel", str(tmp)], "not a regular file")


def test_text_file(vireo, tmp):
    refuse(vireo, ["--kernel", write(tmp / "t", b"hello world\n" * 100)], "not a Linux bzImage")


def test_gzip_file(vireo, tmp):
    refuse(vireo, ["--kernel", write(tmp / "g", b"\x1f\x8b\x08\x00" + b"\0" * 4000)], "gzip")


def test_cpio_file(vireo, tmp):
    refuse(vireo, ["--kernel", write(tmp / "c", b"070701" + b"0" * 4000)], "cpio")


def test_elf_without_pvh_note(vireo):
    refuse(vireo, ["--kernel", "/bin/true"], "without a PVH entry note")


def bzimage_header(version=0x020f, xloadflags=1, setup_sects=4, size=0x4000, loadflags=1):
    img = bytearray(size)
    img[0x1f1] = setup_sects
    struct.pack_into("<H", img, 0x1fe, 0xAA55)
    img[0x200] = 0xeb
    img[0x201] = 0x66
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, version)
    img[0x211] = loadflags
    struct.pack_into("<I", img, 0x214, 0x100000)
    struct.pack_into("<H", img, 0x236, xloadflags)
    struct.pack_into("<I", img, 0x238, 2048)
    struct.pack_into("<I", img, 0x260, 0x10000)
    return bytes(img)


def test_truncated_bzimage(vireo, tmp):
    data = bzimage_header()[:0x700]
    refuse(vireo, ["--kernel", write(tmp / "bz", data)], "truncated")


def test_old_protocol(vireo, tmp):
    refuse(vireo, ["--kernel", write(tmp / "bz", bzimage_header(version=0x0206))], "too old")


def test_32bit_only_kernel(vireo, tmp):
    refuse(vireo, ["--kernel", write(tmp / "bz", bzimage_header(xloadflags=0))], "no 64-bit entry")


def test_missing_boot_flag(vireo, tmp):
    data = bytearray(bzimage_header())
    data[0x1fe:0x200] = b"\0\0"
    refuse(vireo, ["--kernel", write(tmp / "bz", bytes(data))], "0xAA55")


def test_huge_init_size(vireo, tmp):
    data = bytearray(bzimage_header())
    struct.pack_into("<I", data, 0x260, 0xF0000000)
    refuse(vireo, ["--kernel", write(tmp / "bz", bytes(data))], "more --memory")


def elf64(phdrs, notes=b"", size=0x2000):
    """A minimal x86-64 ELF with the given (type, offset, paddr, filesz, memsz) headers."""
    img = bytearray(size)
    img[0:4] = b"\x7fELF"
    img[4], img[5], img[6] = 2, 1, 1
    struct.pack_into("<HHIQQQIHHHHHH", img, 16, 2, 62, 1, 0x100000, 64, 0, 0, 64, 56,
                     len(phdrs), 64, 0, 0)
    for i, (t, off, paddr, filesz, memsz) in enumerate(phdrs):
        struct.pack_into("<IIQQQQQQ", img, 64 + 56 * i, t, 5, off, paddr, paddr, filesz, memsz, 8)
    img[0x400:0x400 + len(notes)] = notes
    return bytes(img)


PVH_NOTE = struct.pack("<III4sI", 4, 4, 18, b"Xen\0", 0x100000)


def test_pvh_segment_outside_ram(vireo, tmp):
    data = elf64([(4, 0x400, 0, len(PVH_NOTE), len(PVH_NOTE)),
                  (1, 0x1000, 0x7fffff000, 0x100, 0x100)], PVH_NOTE)
    refuse(vireo, ["--kernel", write(tmp / "e", data)], "does not fit guest RAM")


def test_pvh_segment_past_eof(vireo, tmp):
    data = elf64([(4, 0x400, 0, len(PVH_NOTE), len(PVH_NOTE)),
                  (1, 0x1000, 0x100000, 0x100000, 0x100000)], PVH_NOTE)
    refuse(vireo, ["--kernel", write(tmp / "e", data)], "truncated")


def test_pvh_bad_phnum(vireo, tmp):
    data = bytearray(elf64([(1, 0x1000, 0x100000, 0x10, 0x10)]))
    struct.pack_into("<H", data, 56, 0xffff)
    refuse(vireo, ["--kernel", write(tmp / "e", bytes(data))], "program headers malformed")


def test_pvh_note_with_huge_sizes(vireo, tmp):
    note = struct.pack("<III", 0xfffffff0, 0xfffffff0, 18) + b"Xen\0"
    data = elf64([(4, 0x400, 0, len(note), len(note)), (1, 0x1000, 0x100000, 0x10, 0x10)], note)
    refuse(vireo, ["--kernel", write(tmp / "e", data)], "without a PVH entry note")


def test_zero_cpus(vireo):
    refuse(vireo, ["--kernel", "/bin/true", "--cpus", "0"], "--cpus must be at least 1")


def test_too_many_cpus(vireo):
    refuse(vireo, ["--kernel", "/bin/true", "--cpus", "100000"], "more than this host supports")


@pytest.mark.parametrize("cpus", ["two", "-1", "", "1.5"])
def test_malformed_cpus(vireo, cpus):
    refuse(vireo, ["--kernel", "/bin/true", "--cpus", cpus], "invalid --cpus")


@pytest.mark.parametrize("mem", ["lots", "12Q", "-5M", "", "1.5G"])
def test_malformed_memory(vireo, mem):
    refuse(vireo, ["--kernel", "/bin/true", "--memory", mem], "--memory")


def test_tiny_memory(vireo):
    refuse(vireo, ["--kernel", "/bin/true", "--memory", "1M"], "at least 16 MiB")


def test_more_memory_than_host(vireo):
    refuse(vireo, ["--kernel", "/bin/true", "--memory", "64T"], "--overcommit")


def test_unknown_option(vireo):
    refuse(vireo, ["--kernel", "/bin/true", "--frobnicate"], "unknown option '--frobnicate'")


def test_missing_option_value(vireo):
    refuse(vireo, ["--kernel"], "needs a value")


def test_stray_argument(vireo):
    refuse(vireo, ["--kernel", "/bin/true", "extra"], "unexpected argument 'extra'")


def test_run_help(vireo):
    r = run([vireo, "run", "--help"])
    assert r.returncode == 0
    assert b"--kernel" in r.stdout and b"Ctrl-A x" in r.stdout


# --vsock: checked while the options are parsed, before any KVM work.
@pytest.mark.parametrize("opt,expect", [
    ("cid=2,uds=/tmp/v.sock", "cid=2: the guest CID must be a number from 3"),
    ("cid=0,uds=/tmp/v.sock", "cid=0: the guest CID must be a number from 3"),
    ("cid=4294967295,uds=/tmp/v.sock", "the guest CID must be a number from 3 to 4294967294"),
    ("cid=3x,uds=/tmp/v.sock", "cid=3x: the guest CID must be a number"),
    ("cid=-4,uds=/tmp/v.sock", "cid=-4: the guest CID must be a number"),
    ("cid=3", "--vsock needs uds=PATH"),
    ("uds=/tmp/v.sock", "--vsock needs cid=N"),
    ("cid=3,uds=", "uds= must be a path of 1 to 95 bytes"),
    ("cid=3,uds=/" + "x" * 100, "uds= must be a path of 1 to 95 bytes"),
    ("cid=3,uds=/tmp/v.sock,port=5", "--vsock: bad option 'port=5'"),
])
def test_bad_vsock(vireo, tmp, opt, expect):
    refuse(vireo, ["--kernel", str(tmp / "k"), "--vsock", opt], expect)


def test_two_vsock_devices(vireo, tmp):
    refuse(vireo, ["--kernel", str(tmp / "k"), "--vsock", "cid=3,uds=/tmp/a",
                   "--vsock", "cid=4,uds=/tmp/b"], "only one --vsock device")


@pytest.mark.parametrize("value", ["hvc", "", "Virtio", "serial,virtio"])
def test_bad_console(vireo, tmp, value):
    refuse(vireo, ["--kernel", str(tmp / "k"), "--console", value],
           f"--console {value}: expected serial or virtio")


# --net: queue pairs and taps handed in as file descriptors.
@pytest.mark.parametrize("opt,expect", [
    ("tap=t0,queues=0", "queues=0: expected 1 to 8 queue pairs"),
    ("tap=t0,queues=9", "queues=9: expected 1 to 8 queue pairs"),
    ("tap=t0,queues=two", "queues=two: expected 1 to 8 queue pairs"),
    ("mac=52:54:00:00:00:01", "--net needs either tap=NAME or fd=N"),
    ("tap=t0,fd=0", "--net needs either tap=NAME or fd=N"),
    ("fd=-1", "--net: bad option 'fd=-1'"),
    ("fd=1000", "--net fd=1000: not an open file descriptor"),
])
def test_bad_net(vireo, tmp, opt, expect):
    refuse(vireo, ["--kernel", str(tmp / "k"), "--net", opt], expect)


TUNSETIFF = 0x400454ca
IFF_TUN, IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0001, 0x0002, 0x1000, 0x4000


def open_tun(flags):
    import fcntl
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        pytest.skip("SKIPPED: /dev/net/tun is not accessible")
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        # an unnamed, non-persistent interface: gone when the fd closes
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"vireo-e%d", flags))
    except OSError as e:
        os.close(fd)
        pytest.skip(f"SKIPPED: cannot create a tun/tap here: {e}")
    return fd


@pytest.mark.parametrize("flags,expect", [
    (IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, "is a tun device"),
    (IFF_TAP | IFF_NO_PI, "was opened without IFF_VNET_HDR"),
])
def test_net_fd_not_a_usable_tap(vireo, tmp, flags, expect):
    fd = open_tun(flags)
    try:
        r = run([vireo, "run", "--kernel", str(tmp / "k"), "--net", f"fd={fd}"], timeout=20,
                pass_fds=[fd], stdin=subprocess_devnull())
    finally:
        os.close(fd)
    err = r.stderr.decode()
    assert r.returncode == CONFIG, err
    assert f"--net fd={fd}: fd {fd} " in err or f"(fd {fd})" in err, err
    assert expect in err, err


def test_net_fd_of_a_regular_file(vireo, tmp):
    with open(tmp / "f", "w") as f:
        fd = f.fileno()
        r = run([vireo, "run", "--kernel", str(tmp / "k"), "--net", f"fd={fd}"],
                timeout=20, pass_fds=[fd], stdin=subprocess_devnull())
    err = r.stderr.decode()
    assert r.returncode == CONFIG, err
    assert f"fd {fd} is not a tap device (TUNGETIFF" in err, err

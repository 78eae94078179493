# SPDX-License-Identifier: Apache-2.0
"""`vireo run` behaviour around the guest: exit codes for KVM errors, the
console escape, raw terminal mode and its restoration, signals, and refusals
that need a real kernel (initrd too large)."""
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from conftest import run


def pvh_elf(code):
    """A 32-bit PVH ELF whose entry runs `code` at 1 MiB."""
    note = struct.pack("<III4sI", 4, 4, 18, b"Xen\0", 0x100000)
    img = bytearray(0x2000)
    img[0:4] = b"\x7fELF"
    img[4], img[5], img[6] = 2, 1, 1
    struct.pack_into("<HHIQQQIHHHHHH", img, 16, 2, 62, 1, 0x100000, 64, 0, 0, 64, 56, 2, 64, 0, 0)
    struct.pack_into("<IIQQQQQQ", img, 64, 4, 4, 0x400, 0, 0, len(note), len(note), 4)
    struct.pack_into("<IIQQQQQQ", img, 120, 1, 5, 0x1000, 0x100000, 0x100000, len(code), len(code), 0x1000)
    img[0x400:0x400 + len(note)] = note
    img[0x1000:0x1000 + len(code)] = code
    return bytes(img)


# mov $0xd0000000, %eax ; jmp *%eax  -- fetch code from the MMIO hole
JUMP_TO_MMIO = bytes.fromhex("b8000000d0ffe0")


def test_kvm_emulation_error_exit_code(vireo, kvm, tmp_path):
    k = tmp_path / "mmio-jump.elf"
    k.write_bytes(pvh_elf(JUMP_TO_MMIO))
    r = run([vireo, "run", "--kernel", str(k)], stdin=subprocess.DEVNULL)
    err = r.stderr.decode()
    assert r.returncode == 6, err
    assert "KVM" in err and "rip=" in err and "cr0=" in err


def test_triple_fault_exit_code_and_registers(vireo, kvm, tmp_path):
    # lidt of a zero-limit IDT, then ud2
    code = bytes.fromhex("0f011d0c001000" "0f0b" "000000" "0000000000000000")
    k = tmp_path / "tf.elf"
    k.write_bytes(pvh_elf(code))
    r = run([vireo, "run", "--kernel", str(k)], stdin=subprocess.DEVNULL)
    assert r.returncode == 4, r.stderr.decode()
    assert b"triple fault" in r.stderr and b"rip=" in r.stderr


def test_ctrl_a_x_quits(vireo, kvm, guests):
    # The serial guest waits for a line that never comes; Ctrl-A x ends vireo.
    p = subprocess.Popen([vireo, "run", "--kernel", str(guests / "serial.elf"), "--debug-exit",
                          "--cmdline", "expect_input=never"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""
    deadline = time.time() + 20
    while b"READY" not in out and time.time() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r:
            out += os.read(p.stdout.fileno(), 4096)
    assert b"READY" in out
    p.stdin.write(b"\x01x")
    p.stdin.flush()
    assert p.wait(timeout=20) == 10


def test_sigterm_stops_vm(vireo, kvm, guests):
    p = subprocess.Popen([vireo, "run", "--kernel", str(guests / "serial.elf"),
                          "--cmdline", "expect_input=never"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 10


def test_raw_mode_and_restore_on_a_terminal(vireo, kvm, guests):
    """Under a pty, vireo puts the terminal in raw mode while the guest runs
    (no line buffering: the guest sees bytes without a newline being echoed
    back by the tty) and restores the original settings on exit."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    p = subprocess.Popen([vireo, "run", "--kernel", str(guests / "serial.elf"), "--debug-exit",
                          "--cmdline", "expect_input=abc"],
                         stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    out = b""
    deadline = time.time() + 20
    while b"READY" not in out and time.time() < deadline:
        r, _, _ = select.select([master], [], [], 1)
        if r:
            out += os.read(master, 4096)
    during = termios.tcgetattr(slave)
    assert not (during[3] & termios.ICANON), "terminal not in raw mode while running"
    assert not (during[3] & termios.ECHO)
    os.write(master, b"abc\r")
    rc = p.wait(timeout=20)
    while True:
        r, _, _ = select.select([master], [], [], 0.2)
        if not r:
            break
        out += os.read(master, 4096)
    assert rc == 0, (out, p.stderr.read())
    assert b"PASS serial" in out
    assert termios.tcgetattr(slave) == before, "terminal settings not restored"
    os.close(master)
    os.close(slave)


def test_initrd_larger_than_ram(vireo, kvm, guests, tmp_path):
    big = tmp_path / "big.img"
    with open(big, "wb") as f:
        f.truncate(200 << 20)  # sparse
    r = run([vireo, "run", "--kernel", str(guests / "demo.elf"), "--memory", "128M",
             "--initrd", str(big)], stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert b"larger than guest RAM" in r.stderr


def test_missing_initrd(vireo, kvm, guests, tmp_path):
    r = run([vireo, "run", "--kernel", str(guests / "demo.elf"), "--initrd",
             str(tmp_path / "none")], stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert b"cannot open initrd" in r.stderr


def test_cmdline_too_long_for_bzimage(vireo, kvm, guests):
    r = run([vireo, "run", "--kernel", str(guests / "demo.bzImage"), "--cmdline", "x" * 70000],
            stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert b"command line" in r.stderr


def test_unclaimed_ports_do_not_stop_guest(vireo, kvm, guests):
    # The demo guest pokes ACPI, RTC, serial; a run without --debug-exit still
    # powers off cleanly (port 0x501 unclaimed is ignored).
    r = run([vireo, "run", "--kernel", str(guests / "demo.bzImage")], stdin=subprocess.DEVNULL)
    assert r.returncode == 0
    assert b"PASS demo" in r.stdout


def test_overcommit_allows_more_than_host_memory(vireo, kvm, guests):
    host = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    want = f"{(host >> 30) + 8}G"
    r = run([vireo, "run", "--kernel", str(guests / "demo.elf"), "--memory", want],
            stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and b"--overcommit" in r.stderr
    r = run([vireo, "run", "--kernel", str(guests / "demo.elf"), "--memory", want, "--overcommit"],
            stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"PASS demo" in r.stdout

# SPDX-License-Identifier: Apache-2.0
"""The project's test guests (tests/guests/) under vireo and under QEMU.

Every guest exists twice, as NAME.bzImage (Linux boot protocol) and as
NAME.elf (PVH); both carry the same code, so both must behave alike.  A
guest reports "VIREO-GUEST: PASS <name>" or "VIREO-GUEST: FAIL <name>: why"
on COM1 and ends with ACPI power-off (vireo exit 0), a debug-exit write of 1
on failure (exit 3 with --debug-exit), or a triple fault (exit 4).

The QEMU runs prove the images valid with a reference loader: .elf through
QEMU's PVH loader on microvm, .bzImage through qboot's Linux loader on -M pc
(which runs the real-mode stub and enters through the 32-bit protocol).
vireo's 64-bit entry is exercised only by the vireo runs."""
import os
import re
import secrets
import shutil
import subprocess
import struct
import time

import pytest

from conftest import need_kvm, run

MEMORY = "128M"
LOW_TABLES = 0x60400   # bytes below 1 MiB that are not RAM (docs/platform.md)
FORMATS = ["bzImage", "elf"]
QEMU = shutil.which("qemu-system-x86_64")
QBOOT = "/usr/share/qemu/qboot.rom"


def mem_bytes(size):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)


def fnv1a32(data):
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def with_length(cmdline):
    """Append cmdline_len=N where N counts the whole result, itself included."""
    n = len(cmdline)
    while True:
        full = f"{cmdline} cmdline_len={n}"
        if len(full) == n:
            return full
        n = len(full)


def simple_cmdline(name, timer_hz):
    if name == "rtc":
        return f"expect_epoch={int(time.time())}"
    if name == "timer":
        return f"timer_hz={timer_hz}"
    return ""


def pass_line(name):
    return f"VIREO-GUEST: PASS {name}"


def image(guests, name, fmt):
    path = guests / f"{name}.{fmt}"
    if not path.exists():
        pytest.fail(f"guest image {path} missing: run 'make guests'")
    return str(path)


@pytest.fixture(scope="session")
def initrd(tmp_path_factory):
    """A random initrd whose size is not a multiple of the page size."""
    data = secrets.token_bytes(3 * 4096 + 123)
    path = tmp_path_factory.mktemp("initrd") / "initrd.bin"
    path.write_bytes(data)
    return str(path), len(data), fnv1a32(data)


@pytest.fixture(scope="session", params=["tcg", "kvm"])
def qemu(request):
    """QEMU's command prefix.  TCG emulates everything (-cpu max: 1 GiB
    pages on the 32-bit entries); KVM runs the guests on this host's nested
    KVM as vireo will (no 1 GiB pages there), so ring-0 trouble shows up
    here first."""
    if QEMU is None:
        pytest.skip("SKIPPED: qemu-system-x86_64 is not installed")
    if request.param == "tcg":
        return [QEMU, "-accel", "tcg", "-cpu", "max"]
    need_kvm()
    # -cpu host fails here (nested KVM refuses MSR 0x10a): name the features.
    return [QEMU, "-accel", "kvm", "-cpu", "qemu64,-pni"]


# ---------------------------------------------------------------- vireo


def vireo_run(vireo, img, cmdline="", cpus=1, memory=MEMORY, extra=(),
              debug_exit=True, input=None, timeout=60):
    args = [vireo, "run", "--kernel", img, "--memory", memory,
            "--cpus", str(cpus), "--cmdline", cmdline]
    if debug_exit:
        args.append("--debug-exit")
    args.extend(extra)
    r = run(args, timeout=timeout, input=input)
    out = r.stdout.decode(errors="replace")
    err = r.stderr.decode(errors="replace")
    return r.returncode, out, err


def assert_pass(name, rc, out, err, want_rc=0):
    assert pass_line(name) in out, f"no PASS line (rc {rc})\nstdout:\n{out}\nstderr:\n{err}"
    assert rc == want_rc, f"exit code {rc}, expected {want_rc}\nstdout:\n{out}\nstderr:\n{err}"


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["demo", "rtc", "timer"])
def test_vireo_simple(vireo, guests, kvm, name, fmt):
    cmdline = simple_cmdline(name, timer_hz=250)
    if name == "timer":
        cmdline += " tscdeadline"   # KVM's in-kernel LAPIC has one; vireo must say so
    rc, out, err = vireo_run(vireo, image(guests, name, fmt), cmdline)
    assert_pass(name, rc, out, err)


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
def test_vireo_stop(vireo, guests, kvm, fmt):
    rc, out, err = vireo_run(vireo, image(guests, "stop", fmt), debug_exit=False)
    assert rc == 0, f"stop guest: exit {rc}\n{out}\n{err}"


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("memory", [MEMORY, "3584M"])
def test_vireo_bootinfo(vireo, guests, kvm, initrd, fmt, memory):
    path, size, digest = initrd
    token = secrets.token_hex(8)
    cmdline = (f"token={token} expect_ram={mem_bytes(memory) - LOW_TABLES} platform=vireo "
               f"initrd_size={size} initrd_sum=0x{digest:08x} pad={'x' * 2000}")
    cmdline = with_length(cmdline)
    rc, out, err = vireo_run(vireo, image(guests, "bootinfo", fmt), cmdline, memory=memory, cpus=3,
                             extra=["--initrd", path])
    assert_pass("bootinfo", rc, out, err)
    assert f"TOKEN: {token}" in out
    assert "PLATFORM: matches docs/platform.md" in out
    assert ("BOOT: linux64" if fmt == "bzImage" else "BOOT: pvh") in out


def ecam_functions(out):
    """N from the ecam guest's "ECAM: N functions agree with conf1"."""
    m = re.search(r"^ECAM: (\d+) functions agree with conf1\s*$", out, re.M)
    assert m, f"no ECAM summary line\n{out}"
    return int(m.group(1))


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("with_disk", [False, True])
def test_vireo_ecam(vireo, guests, kvm, tmp_path, fmt, with_disk):
    """The guest finds the MCFG through the RSDP and XSDT and reads every
    function conf1 finds through ECAM too: host bridge, virtio-rng and (with
    a disk) virtio-blk, so exactly 2 or 3 functions must agree."""
    extra = ["--rng"]
    if with_disk:
        disk = tmp_path / "disk.raw"
        disk.write_bytes(b"")
        os.truncate(disk, 8 << 20)
        extra += ["--disk", f"{disk},format=raw"]
    want = 3 if with_disk else 2
    rc, out, err = vireo_run(vireo, image(guests, "ecam", fmt),
                             f"platform=vireo min_functions={want}", extra=extra)
    assert_pass("ecam", rc, out, err)
    assert "MCFG: 1 entries, segment 0 at 0xe0000000, buses 0-0" in out, out
    assert ecam_functions(out) == want, out
    assert "PCI: 00:00.0 1b36:0008 agrees" in out, out
    assert "1af4:1044 agrees" in out, out
    assert ("1af4:1042 agrees" in out) == with_disk, out


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("cpus", [1, 2, 4, 8])
def test_vireo_smp(vireo, guests, kvm, fmt, cpus):
    rc, out, err = vireo_run(vireo, image(guests, "smp", fmt), f"expect_cpus={cpus}", cpus=cpus)
    assert_pass("smp", rc, out, err)
    assert f"CPUS: {cpus}" in out


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("length", [8, 240])
def test_vireo_serial_input(vireo, guests, kvm, fmt, length):
    """240 bytes overrun a 16-byte FIFO many times over: vireo must hold
    input back until the guest reads it."""
    word = "vireo" + secrets.token_hex(length)[:length]
    rc, out, err = vireo_run(vireo, image(guests, "serial", fmt), f"expect_input={word}",
                             input=(word + "\n").encode())
    assert "READY" in out
    assert f"GOT: {word}" in out
    assert_pass("serial", rc, out, err)


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("via", ["kbd", "cf9", "acpi"])
def test_vireo_reset(vireo, guests, kvm, fmt, via):
    """Without --reboot a reset ends vireo with 0, before the guest's
    bounded wait runs out and it reports FAIL."""
    rc, out, err = vireo_run(vireo, image(guests, "reset", fmt), f"via={via}")
    assert "RESETTING" in out, out + err
    assert "FAIL" not in out, out
    assert rc == 0, f"exit {rc}\n{out}\n{err}"


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
def test_vireo_triplefault(vireo, guests, kvm, fmt):
    rc, out, err = vireo_run(vireo, image(guests, "triplefault", fmt))
    assert "TRIPLEFAULT" in out, out + err
    assert rc == 4, f"exit {rc}\n{out}\n{err}"


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
def test_vireo_poweroff(vireo, guests, kvm, fmt):
    rc, out, err = vireo_run(vireo, image(guests, "poweroff", fmt), debug_exit=False)
    assert "POWEROFF" in out, out + err
    assert rc == 0, f"exit {rc}\n{out}\n{err}"


FAILURES = [("call", "deliberate failure"), ("ud", "exception 6 "), ("pf", "exception 14 ")]


@pytest.mark.kvm
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("debug_exit,want", [(True, 3), (False, 4)])
@pytest.mark.parametrize("how,reason", FAILURES)
def test_vireo_fail_is_reported(vireo, guests, kvm, fmt, debug_exit, want, how, reason):
    """guest_fail() and ring-3 exceptions (through IDT, TSS and the ring-0
    handler) reach the exit code: 3 by debug exit, else 4 by triple fault."""
    rc, out, err = vireo_run(vireo, image(guests, "fail", fmt), f"how={how}",
                             debug_exit=debug_exit)
    assert f"VIREO-GUEST: FAIL fail: {reason}" in out, out + err
    assert rc == want, f"exit {rc}, expected {want}\n{out}\n{err}"


# ---------------------------------------------------------------- QEMU (TCG)


def qemu_run(qemu, img, fmt, cmdline="", cpus=1, initrd=None, input=None, timeout=60):
    """QEMU's isa-debug-exit makes a write of V exit with (V << 1) | 1, as
    vireo's --debug-exit does; -no-reboot turns a reset into exit 0."""
    common = ["-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
              "-device", "isa-debug-exit,iobase=0x501,iosize=1", "-m", MEMORY,
              "-smp", str(cpus), "-no-reboot", "-kernel", img, "-append", cmdline]
    if fmt == "elf":
        machine = ["-M", "microvm,x-option-roms=off,pit=off,pic=off,rtc=on"]
    else:
        machine = ["-M", "pc", "-bios", QBOOT]
    if initrd:
        common += ["-initrd", initrd]
    r = run(qemu + machine + common, timeout=timeout, input=input,
            stdin=None if input is not None else subprocess.DEVNULL)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def assert_qemu_pass(name, rc, out, err):
    # 0: ACPI power-off worked (the guest waits 200 ms for it before it
    # falls back to the debug exit, which would give 1).
    assert pass_line(name) in out, f"no PASS line (rc {rc})\n{out}\n{err}"
    assert rc == 0, f"exit {rc}\n{out}\n{err}"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["demo", "rtc", "timer"])
def test_qemu_simple(qemu, guests, name, fmt):
    # TCG drops periodic ticks when the host is busy: keep the rate low.
    cmdline = simple_cmdline(name, timer_hz=100)
    assert_qemu_pass(name, *qemu_run(qemu, image(guests, name, fmt), fmt, cmdline))


@pytest.mark.parametrize("fmt", FORMATS)
def test_qemu_stop(qemu, guests, fmt):
    rc, out, err = qemu_run(qemu, image(guests, "stop", fmt), fmt)
    assert rc in (0, 1), f"exit {rc}\n{out}\n{err}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_qemu_bootinfo(qemu, guests, initrd, fmt):
    path, size, digest = initrd
    token = secrets.token_hex(8)
    cmdline = f"token={token} initrd_size={size} initrd_sum=0x{digest:08x} pad={'y' * 1000}"
    if fmt == "elf":
        # QEMU's PVH memmap has the same shape as vireo's; qboot's Linux
        # loader leaves the e820 table to the real-mode kernel, so no RAM
        # check through the bzImage.
        cmdline += f" expect_ram={mem_bytes(MEMORY) - LOW_TABLES}"
    cmdline = with_length(cmdline)
    rc, out, err = qemu_run(qemu, image(guests, "bootinfo", fmt), fmt, cmdline, initrd=path)
    assert_qemu_pass("bootinfo", rc, out, err)
    assert f"TOKEN: {token}" in out
    assert ("BOOT: linux32" if fmt == "bzImage" else "BOOT: pvh") in out


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_qemu_smp(qemu, guests, fmt, cpus):
    # qboot's MP table carries an entry count of 0: accept that here only.
    rc, out, err = qemu_run(qemu, image(guests, "smp", fmt), fmt,
                            f"expect_cpus={cpus} mp_lenient", cpus=cpus)
    assert_qemu_pass("smp", rc, out, err)
    assert f"CPUS: {cpus}" in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_qemu_serial_input(qemu, guests, fmt):
    rc, out, err = qemu_run(qemu, image(guests, "serial", fmt), fmt, "expect_input=hello",
                            input=b"hello\n")
    assert "GOT: hello" in out
    assert_qemu_pass("serial", rc, out, err)


def test_qemu_reset(qemu, guests):
    """Only -M pc has an i8042 and port 0xcf9; QEMU exits 0 on reset with
    -no-reboot."""
    for via in ("kbd", "cf9"):
        rc, out, err = qemu_run(qemu, image(guests, "reset", "bzImage"), "bzImage", f"via={via}")
        assert "RESETTING" in out and "FAIL" not in out, out + err
        assert rc == 0, f"via={via}: exit {rc}\n{out}\n{err}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_qemu_triplefault(qemu, guests, fmt):
    rc, out, err = qemu_run(qemu, image(guests, "triplefault", fmt), fmt)
    assert "TRIPLEFAULT" in out and "PASS" not in out, out + err
    assert rc == 0, f"exit {rc}\n{out}\n{err}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_qemu_poweroff(qemu, guests, fmt):
    rc, out, err = qemu_run(qemu, image(guests, "poweroff", fmt), fmt)
    assert "POWEROFF" in out and "FAIL" not in out, out + err
    assert rc == 0, f"exit {rc}\n{out}\n{err}"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("how,reason", FAILURES)
def test_qemu_fail_is_reported(qemu, guests, fmt, how, reason):
    rc, out, err = qemu_run(qemu, image(guests, "fail", fmt), fmt, f"how={how}")
    assert f"VIREO-GUEST: FAIL fail: {reason}" in out, out + err
    assert rc == 3, f"exit {rc}\n{out}\n{err}"


def test_qemu_ecam(qemu, guests):
    """The ecam guest against QEMU's q35, whose MCFG and ECAM are the
    reference for the guest's own parsing and comparison; on -M pc (no
    MCFG) the guest must fail rather than pass with nothing compared."""
    common = ["-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
              "-device", "isa-debug-exit,iobase=0x501,iosize=1", "-m", MEMORY,
              "-no-reboot", "-bios", QBOOT, "-kernel", image(guests, "ecam", "bzImage"),
              "-append", "min_functions=2", "-device", "virtio-rng-pci"]
    r = run(qemu + ["-M", "q35"] + common, timeout=60, stdin=subprocess.DEVNULL)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    assert_qemu_pass("ecam", r.returncode, out, err)
    assert ecam_functions(out) >= 2 and "1af4:1005 agrees" in out, out
    r = run(qemu + ["-M", "pc"] + common, timeout=60, stdin=subprocess.DEVNULL)
    out = r.stdout.decode(errors="replace")
    assert "FAIL ecam: no MCFG table" in out and r.returncode == 3, out


def shim_run(qemu, guests, name, cmdline="", cpus=1, input=None):
    """A bzImage entered through the 64-bit boot protocol, as vireo does:
    QEMU boots boot64-shim.elf (PVH) with the bzImage as its initrd, and the
    shim sets up vireo's documented boot state."""
    args = qemu + ["-M", "microvm,x-option-roms=off,pit=off,pic=off,rtc=on", "-nodefaults",
            "-no-user-config", "-nographic", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0x501,iosize=1", "-m", MEMORY,
            "-smp", str(cpus), "-no-reboot", "-kernel", image(guests, "boot64-shim", "elf"),
            "-initrd", image(guests, name, "bzImage"), "-append", cmdline]
    r = run(args, timeout=60, input=input,
            stdin=None if input is not None else subprocess.DEVNULL)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


@pytest.mark.parametrize("name,cmdline,cpus", [
    ("demo", "", 1),
    ("rtc", "", 1),
    ("timer", "timer_hz=100", 1),
    ("smp", "expect_cpus=2 mp_lenient", 2),
    ("smp", "expect_cpus=4 mp_lenient", 4),
])
def test_qemu_boot64(qemu, guests, name, cmdline, cpus):
    assert_qemu_pass(name, *shim_run(qemu, guests, name, cmdline, cpus))


def test_qemu_boot64_bootinfo(qemu, guests):
    data = (guests / "bootinfo.bzImage").read_bytes()
    token = secrets.token_hex(8)
    cmdline = with_length(f"token={token} expect_ram={mem_bytes(MEMORY) - LOW_TABLES} "
                          f"initrd_size={len(data)} initrd_sum=0x{fnv1a32(data):08x}")
    rc, out, err = shim_run(qemu, guests, "bootinfo", cmdline)
    assert_qemu_pass("bootinfo", rc, out, err)
    assert "BOOT: linux64" in out and f"TOKEN: {token}" in out


def test_qemu_boot64_serial_and_fail(qemu, guests):
    rc, out, err = shim_run(qemu, guests, "serial", "expect_input=abc", input=b"abc\n")
    assert_qemu_pass("serial", rc, out, err)
    rc, out, err = shim_run(qemu, guests, "fail")
    assert "FAIL fail: deliberate failure" in out and rc == 3, out + err
    rc, out, err = shim_run(qemu, guests, "stop")
    assert rc in (0, 1), out + err


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("name", ["stop", "demo", "bootinfo", "smp", "timer", "serial", "rtc",
                                  "reset", "triplefault", "poweroff", "fail"])
def test_images_carry_the_same_code(guests, name):
    """The bzImage's protected-mode part is byte-for-byte the PVH ELF's
    loadable segment, and the setup header says what docs/platform.md needs."""
    bz = (guests / f"{name}.bzImage").read_bytes()
    elf = (guests / f"{name}.elf").read_bytes()
    assert bz[0x202:0x206] == b"HdrS"
    assert struct.unpack_from("<H", bz, 0x1FE)[0] == 0xAA55
    assert struct.unpack_from("<H", bz, 0x206)[0] >= 0x020C
    assert struct.unpack_from("<H", bz, 0x236)[0] & 1, "XLF_KERNEL_64 missing"
    setup = (bz[0x1F1] + 1) * 512
    phoff = struct.unpack_from("<Q", elf, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    loads = []
    for i in range(phnum):
        ptype, _, off, _, paddr, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", elf,
                                                                  phoff + i * phentsize)
        if ptype == 1:
            loads.append((paddr, elf[off:off + filesz]))
    assert len(loads) == 1 and loads[0][0] == 0x100000
    payload = loads[0][1]
    assert bz[setup:setup + len(payload)] == payload


def test_no_int_instructions(guests):
    """`int n` faults on the target hosts at any ring; the build refuses it,
    and this re-checks the shipped images."""
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("SKIPPED: objdump not installed")
    for elf in sorted(guests.glob("*.elf")):
        out = subprocess.run([objdump, "-d", str(elf)], capture_output=True, check=True).stdout
        func, bad = "", []
        for line in out.decode().splitlines():
            if line.endswith(">:"):
                func = line.split("<", 1)[1][:-2]
            elif "\tint " in line:
                bad.append(line)
            # int3 works from ring 3 only: ring0() is its one (ring-3) user.
            elif line.rstrip().endswith("\tint3") and func != "ring0":
                bad.append(f"{func}: {line}")
        assert not bad, f"{elf.name}: {bad[:3]}"


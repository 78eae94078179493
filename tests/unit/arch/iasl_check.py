# SPDX-License-Identifier: Apache-2.0
"""Feeds vireo's ACPI tables to ACPICA's iasl, an independent parser.

Usage: iasl_check.py ACPI_DUMP_EXE

For several machine shapes, acpi_dump writes every table reachable from the
RSDP (plus an SSDT exercising the whole AML builder); each must disassemble
with `iasl -d` without errors, the DSDT must hold the objects the platform
promises, and the disassembled DSDT and SSDT must compile back with 0 errors.
Exit 77 (meson's "skipped") when iasl is missing.
"""
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

# (vCPUs, ECAM base or None)
SHAPES = [(1, None), (2, None), (8, None), (255, None), (4, 0xE0000000)]
DSDT_MUST_HAVE = ["_S5_", "PNP0A08", "PNP0A03", "PNP0501", "PNP0B00", "PNP0303",
                  "ResourceTemplate", "WordBusNumber", "DWordIO", "DWordMemory"]
# The RSDP has no ACPI table header; iasl -d on a file refuses it, and the C
# unit tests check it instead.
NO_DISASSEMBLY = {"RSDP.dat"}


def has_errors(output):
    """True if iasl reports any error or warning other than a '0 Errors' or
    '0 Warnings' summary. ACPICA's AML parser repairs bad input with an
    'ACPI Warning' and still exits 0, so warnings count too."""
    cleaned = re.sub(r"\b0 (Errors?|Warnings?)\b", "", output)
    return re.search(r"error|warning|\bAE_", cleaned, re.IGNORECASE) is not None


def disassemble(dat, cwd):
    """Problems iasl -d finds in one table file, as a list of strings."""
    rc, out = run_iasl(["-d", dat.name], cwd)
    problems = []
    if rc != 0 or has_errors(out):
        problems.append(f"iasl -d {dat.name} (rc {rc}):\n{out}")
    dsl = dat.with_suffix(".dsl")
    if not dsl.exists():
        problems.append(f"iasl -d {dat.name} wrote no {dsl.name}:\n{out}")
        return problems
    text = dsl.read_text(errors="replace")
    for bad in ("Incorrect checksum", "Invalid", "**** "):
        if bad in text:
            line = next(l for l in text.splitlines() if bad in l)
            problems.append(f"{dsl.name}: {line.strip()}")
    return problems


def run_iasl(args, cwd):
    proc = subprocess.run(["iasl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def check_shape(dump_exe, ncpus, ecam, failures):
    label = f"ncpus={ncpus} ecam={'none' if ecam is None else hex(ecam)}"
    with tempfile.TemporaryDirectory(prefix="vireo-acpi-") as tmp:
        args = [dump_exe, tmp, str(ncpus)] + ([hex(ecam)] if ecam is not None else [])
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            failures.append(f"{label}: acpi_dump failed: {proc.stderr.strip()}")
            return
        tmpdir = pathlib.Path(tmp)
        expected = {"RSDP", "XSDT", "FACP", "FACS", "APIC", "DSDT", "SSDT"}
        if ecam is not None:
            expected.add("MCFG")
        found = {p.stem for p in tmpdir.glob("*.dat")}
        if found != expected:
            failures.append(f"{label}: tables {sorted(found)}, expected {sorted(expected)}")
        for dat in sorted(tmpdir.glob("*.dat")):
            if dat.name in NO_DISASSEMBLY:
                continue
            failures.extend(f"{label}: {p}" for p in disassemble(dat, tmp))
        check_dsdt(tmpdir, label, ncpus, ecam is not None, failures)
        check_apic(tmpdir, label, ncpus, failures)
        check_acpiexec(tmpdir, label, ecam is not None, failures)
        for dsl in ("DSDT.dsl", "SSDT.dsl"):
            rc, out = run_iasl([dsl], tmp)
            if rc != 0 or has_errors(out) or "0 Errors" not in out:
                failures.append(f"{label}: recompiling {dsl} (rc {rc}):\n{out}")
            else:
                summary = [l for l in out.splitlines() if "Errors" in l]
                print(f"{label}: {dsl}: {summary[-1].strip() if summary else out.strip()}")


def check_acpiexec(tmpdir, label, full, failures):
    """Loads the tables into ACPICA's interpreter (acpiexec, the OS-side code
    Linux also runs), evaluates \\_S5 and converts every device's _CRS; a
    descriptor that does not survive the round trip is reported as a
    '****' mismatch."""
    if shutil.which("acpiexec") is None:
        print(f"{label}: acpiexec not installed, interpreter check skipped")
        return
    devices = ["PCI0", "COM1", "RTC_", "KBD_", "MOU_"] + (["MRES"] if full else [])
    cmds = ["evaluate \\_S5"] + [f"resources \\_SB.{d}" for d in devices]
    proc = subprocess.run(["acpiexec", "-b", "; ".join(cmds), "DSDT.dat", "FACP.dat",
                           "APIC.dat"], cwd=tmpdir, capture_output=True, text=True,
                          timeout=60)
    out = proc.stdout + proc.stderr
    problems = [l for l in out.splitlines()
                if "****" in l or l.startswith(("ACPI Error", "ACPI Exception"))]
    if proc.returncode != 0 or problems:
        failures.append(f"{label}: acpiexec (rc {proc.returncode}): " + "\n".join(problems))
    if out.count("[Integer] = 0000000000000005") != 2:
        failures.append(f"{label}: acpiexec did not evaluate \\_S5 to {{5, 5, 0, 0}}")
    if out.count("Resource Conversion Comparison") != len(devices):
        failures.append(f"{label}: acpiexec converted fewer than {len(devices)} _CRS")


def check_dsdt(tmpdir, label, ncpus, full, failures):
    dsl = tmpdir / "DSDT.dsl"
    if not dsl.exists():
        failures.append(f"{label}: no DSDT.dsl")
        return
    text = dsl.read_text(errors="replace")
    for needle in DSDT_MUST_HAVE:
        if needle not in text:
            failures.append(f"{label}: DSDT.dsl lacks {needle}")
    if full:
        for needle in ("_PRT", "PNP0C02"):
            if needle not in text:
                failures.append(f"{label}: DSDT.dsl lacks {needle}")
    cpus = len(re.findall(r'Name \(_HID, "ACPI0007"', text))
    if cpus != ncpus:
        failures.append(f"{label}: DSDT has {cpus} processor devices, expected {ncpus}")


def check_apic(tmpdir, label, ncpus, failures):
    dsl = tmpdir / "APIC.dsl"
    if not dsl.exists():
        failures.append(f"{label}: no APIC.dsl")
        return
    text = dsl.read_text(errors="replace")
    lapics = text.count("[Processor Local APIC]")
    if lapics != ncpus:
        failures.append(f"{label}: MADT has {lapics} local APICs, expected {ncpus}")
    if text.count("[I/O APIC]") != 1:
        failures.append(f"{label}: MADT does not have exactly one I/O APIC")


def self_test(dump_exe, failures):
    """The checks above must catch broken tables, or passing proves nothing."""
    with tempfile.TemporaryDirectory(prefix="vireo-acpi-bad-") as tmp:
        tmpdir = pathlib.Path(tmp)
        subprocess.run([dump_exe, tmp, "2"], check=True, capture_output=True, timeout=60)
        dsdt = bytearray((tmpdir / "DSDT.dat").read_bytes())
        facp = bytearray((tmpdir / "FACP.dat").read_bytes())
        facp[9] ^= 1                                     # checksum off by one
        scope = dsdt.index(b"\\_SB_")
        dsdt[scope - 2] = 0xFF                           # Scope's PkgLength
        dsdt[9] = (dsdt[9] - sum(dsdt)) & 0xFF           # valid checksum again
        (tmpdir / "BADF.dat").write_bytes(facp)
        (tmpdir / "BADD.dat").write_bytes(dsdt)
        for name in ("BADF.dat", "BADD.dat"):
            if not disassemble(tmpdir / name, tmp):
                failures.append(f"self-test: a corrupted {name} passed the checks")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if shutil.which("iasl") is None:
        print("SKIPPED: iasl (Debian package acpica-tools) is not installed")
        return 77
    failures = []
    for ncpus, ecam in SHAPES:
        check_shape(sys.argv[1], ncpus, ecam, failures)
    self_test(sys.argv[1], failures)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

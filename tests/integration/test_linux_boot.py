# SPDX-License-Identifier: Apache-2.0
"""Debian's Linux booted by `vireo run`: CPUs, memory, the command line, and
every way the guest ends (ACPI power-off, reset, Ctrl-Alt-Del through the
API). The guest reports what it sees on its serial console; the test
compares that with what vireo was asked for."""
import re

import pytest

from linux_vm import LinuxVM, run_script
from vmapi import api

# What the kernel keeps for itself out of the guest's RAM, at most: its
# image, page tables and struct pages (measured: 218 of 256 MiB visible).
RESERVED_MIB = 64


@pytest.mark.parametrize("cpus,mib", [(1, 128), (2, 512), (4, 1024)])
def test_cpus_memory_cmdline(linux, tmp_path, cpus, mib):
    token = f"vireo.test={cpus}x{mib}"
    rc, out = run_script(linux, tmp_path, """
echo "NPROC=$(nproc)"
echo "ONLINE=$(cat /sys/devices/system/cpu/online)"
echo "MEMTOTAL=$(sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo)"
echo "CMDLINE=$(cat /proc/cmdline)"
""", cpus=cpus, memory=f"{mib}M", cmdline=token)
    assert rc == 0, out
    assert f"NPROC={cpus}\r\n" in out or f"NPROC={cpus}\n" in out, out
    want_online = "0" if cpus == 1 else f"0-{cpus - 1}"
    assert re.search(rf"ONLINE={want_online}\r?\n", out), out
    kib = int(re.search(r"MEMTOTAL=(\d+)", out).group(1))
    assert (mib - RESERVED_MIB) * 1024 <= kib <= mib * 1024, f"MemTotal {kib} kB of {mib} MiB"
    assert re.search(rf"CMDLINE=.*\b{re.escape(token)}\b", out), out


def test_acpi_poweroff_exits_0(linux, tmp_path):
    rc, out = run_script(linux, tmp_path, "echo ABOUT-TO-POWER-OFF")
    assert "ABOUT-TO-POWER-OFF" in out and "LINUX-DONE" in out, out
    assert "reboot: Power down" in out, out
    assert rc == 0, out


def test_reboot_exits_0(linux, tmp_path):
    # vireo does not reboot guests: a reset ends it with status 0 (vireo.1).
    rc, out = run_script(linux, tmp_path, "echo ABOUT-TO-REBOOT; reboot -f; sleep 60; echo STILL-HERE")
    assert "ABOUT-TO-REBOOT" in out, out
    assert "STILL-HERE" not in out, out
    assert "reboot: Restarting system" in out, out
    assert rc == 0, out


def test_ctrl_alt_del_through_api(linux, tmp_path):
    """SendCtrlAltDel presses the keys on the i8042; Linux's keyboard driver
    turns them into SIGINT for init (ctrl-alt-del = 0), whose handler powers
    off: the guest shuts down by itself."""
    sock = tmp_path / "api.sock"
    script = """
echo 0 > /proc/sys/kernel/ctrl-alt-del
trap 'echo GOT-CTRL-ALT-DEL; poweroff -f' INT
echo "KBD=$(grep -l 'AT Translated Set 2 keyboard' /sys/class/input/*/name | head -n1)"
echo WAITING-FOR-CAD
n=0; while [ $n -lt 600 ]; do sleep 1; n=$((n+1)); done
echo NO-CAD
"""
    with LinuxVM(linux, tmp_path, script, api_socket=sock) as vm:
        m = vm.expect(r"KBD=(\S*)\r?\n", timeout=180)
        assert m.group(1), f"no AT keyboard found by Linux:\n{vm.output()}"
        vm.expect("WAITING-FOR-CAD", timeout=60)
        status, body = api(str(sock), "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
        assert status == 204, body
        vm.expect("GOT-CTRL-ALT-DEL", timeout=120)
        assert vm.wait(120) == 0, vm.output()
        assert "NO-CAD" not in vm.output()

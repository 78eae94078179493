# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures for process-level tests: where the vireo binary and the
test guests are, and a helper to run vireo with a timeout."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; skipped in the ASan pass")
    config.addinivalue_line("markers", "kvm: needs /dev/kvm")
    config.addinivalue_line("markers", "linux: boots Debian's Linux inside vireo run (natively "
                            "where the host's KVM can, else inside scripts/lab)")


def pytest_collection_modifyitems(config, items):
    """A test that takes the kvm or linux fixture carries that mark, so
    scripts/check's -m selections send it where KVM is."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "linux" in names:
            item.add_marker(pytest.mark.linux)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "kvm" in names or params.get("qemu") == "kvm":
            item.add_marker(pytest.mark.kvm)


@pytest.fixture(scope="session")
def vireo():
    path = pathlib.Path(os.environ.get("VIREO", ROOT / "build" / "vireo"))
    if not path.exists():
        pytest.fail(f"vireo binary not found at {path}: run 'make' first")
    return str(path)


@pytest.fixture(scope="session")
def guests():
    path = pathlib.Path(os.environ.get("GUESTS", ROOT / "build" / "guests"))
    if not path.is_dir():
        pytest.fail(f"test guests not found in {path}: run 'make guests' first")
    return path


def need_kvm():
    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        return
    # scripts/check runs these tests where KVM is (natively or in the lab):
    # there a missing /dev/kvm is a failure, never a skip.
    if os.environ.get("VIREO_REQUIRE_KVM") == "1":
        pytest.fail("/dev/kvm is missing or not accessible, and VIREO_REQUIRE_KVM=1")
    pytest.skip("SKIPPED: /dev/kvm is missing or not accessible (scripts/check runs "
                "these tests inside scripts/lab)")


@pytest.fixture
def kvm():
    need_kvm()


@pytest.fixture
def linux(kvm, vireo):
    """For tests marked `linux`: the vireo binary, where KVM can boot Linux."""
    return vireo


def run(args, timeout=30, input=None, **kw):
    """Run a command, capturing output; a hang is a test failure."""
    return subprocess.run(args, capture_output=True, timeout=timeout,
                          input=input, **kw)


def tap_fd_launcher(tap):
    """Python code that opens (creating) tap `tap` as a caller of vireo
    would (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) and execs its arguments with
    "@FD@" replaced by the fd, which the program inherits."""
    return rf"""
import fcntl, os, struct, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"{tap}", 0x0002 | 0x1000 | 0x4000))
os.set_inheritable(fd, True)
args = [a.replace("@FD@", str(fd)) for a in sys.argv[1:]]
os.execv(args[0], args)
"""

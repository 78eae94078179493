# SPDX-License-Identifier: Apache-2.0
"""Linux guests inside `vireo run`: Debian's cloud kernel and a busybox
initramfs, for the tests marked `linux` (see scripts/check: they run
natively where the host's KVM boots Linux, otherwise inside scripts/lab).

The initramfs has two parts, concatenated as the kernel allows: a base
archive built once per kernel (busybox, mke2fs, the virtio modules, the
static tools in tests/integration/linux/) and a tiny archive per test
holding /test.sh, which the base's /init sources once the modules are in.
The guest reports through its serial console; tests never trust a boot."""
import hashlib
import os
import pathlib
import re
import signal
import subprocess
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LINUX = ROOT / "tests" / "integration" / "linux"
CACHE = pathlib.Path(os.environ.get("VIREO_CACHE") or
                     pathlib.Path(os.environ.get("XDG_CACHE_HOME") or
                                  pathlib.Path.home() / ".cache") / "vireo")

# Load order matters: build-initramfs.sh adds what each module depends on.
MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "virtio-rng",
           "vmw_vsock_virtio_transport"]
# Static programs for the guest's /bin, built from tests/integration/linux/.
TOOLS = ["vsock-test", "blkrange"]

BASE_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
for m in $(cat /lib/modules/order); do
  insmod /lib/modules/$m.ko 2>/dev/null || echo "INSMOD-FAIL $m"
done
ip link set lo up
echo LINUX-UP
[ -f /test.sh ] && . /test.sh
echo LINUX-DONE
poweroff -f
"""

# Linux's own messages stay off the console unless they are errors, so a
# test's markers are not split by a printk.
CMDLINE = "console=ttyS0 panic=-1 quiet loglevel=3"


def _kernel_dir():
    r = subprocess.run([str(LINUX / "fetch-kernel.sh"), str(CACHE / "linux")],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        pytest.fail(f"cannot fetch Debian's cloud kernel: {r.stderr.strip()}")
    return pathlib.Path(r.stdout.strip().splitlines()[-1])


def _build_tools(out):
    paths = []
    for t in TOOLS:
        exe = out / t
        src = LINUX / f"{t}.c"
        if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
            subprocess.run(["gcc", "-O2", "-static", "-o", str(exe), str(src)],
                           check=True, timeout=120)
        paths.append(str(exe))
    return paths


_base = {}


def kernel_and_base():
    """(vmlinuz, base initramfs): fetched and built once, cached by content."""
    if "k" in _base:
        return _base["k"]
    kdir = _kernel_dir()
    h = hashlib.sha256()
    for f in [LINUX / "build-initramfs.sh"] + [LINUX / f"{t}.c" for t in TOOLS]:
        h.update(f.read_bytes())
    h.update(BASE_INIT.encode() + " ".join(MODULES).encode())
    h.update(str(os.path.realpath(kdir / "vmlinuz")).encode())
    out = CACHE / "linux-tests"
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"base-{h.hexdigest()[:16]}.cpio.gz"
    if not base.exists():
        tools = _build_tools(out)
        init = out / "init"
        init.write_text(BASE_INIT)
        env = dict(os.environ, INITRAMFS_EXTRA=" ".join(tools))
        tmp = base.with_suffix(".new")
        r = subprocess.run([str(LINUX / "build-initramfs.sh"), str(kdir), str(init), str(tmp)]
                           + MODULES, capture_output=True, text=True, timeout=300, env=env)
        if r.returncode != 0:
            pytest.fail(f"initramfs build failed: {r.stderr.strip()}")
        tmp.rename(base)
    _base["k"] = (kdir / "vmlinuz", base)
    return _base["k"]


def _cpio_newc(files):
    """An uncompressed newc archive of {name: (mode, bytes)}."""
    out = bytearray()

    def entry(name, mode, data, ino):
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        out.extend(hdr.encode() + nb)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))
    for i, (name, (mode, data)) in enumerate(files.items(), start=1):
        entry(name, mode, data, i)
    entry("TRAILER!!!", 0, b"", 0)
    out.extend(b"\0" * (-len(out) % 512))
    return bytes(out)


def initrd(tmp_path, script, files=None):
    """The base initramfs plus /test.sh (and `files`: {path: bytes})."""
    _, base = kernel_and_base()
    extra = {"test.sh": (0o100755, script.encode())}
    for name, data in (files or {}).items():
        extra[name.lstrip("/")] = (0o100755, data)
    out = tmp_path / f"initrd-{hashlib.sha256(script.encode()).hexdigest()[:8]}.img"
    data = base.read_bytes()
    out.write_bytes(data + b"\0" * (-len(data) % 4) + _cpio_newc(extra))
    return out


class LinuxVM:
    """`vireo run` with the Linux guest: its console collected in the
    background, `expect` to wait for guest output, `send` to type."""

    def __init__(self, vireo, tmp_path, script="", cpus=1, memory="256M", args=(),
                 cmdline="", api_socket=None, name="vm", boot=True, files=None):
        self.tmp_path = tmp_path
        self.log_path = tmp_path / f"{name}.console"
        cmd = [vireo, "run"]
        if boot:
            kernel, _ = kernel_and_base()
            cmd += ["--kernel", str(kernel), "--initrd", str(initrd(tmp_path, script, files)),
                    "--cmdline", f"{CMDLINE} {cmdline}".strip(),
                    "--cpus", str(cpus), "--memory", memory]
        if api_socket:
            cmd += ["--api-socket", str(api_socket)]
        cmd += list(args)
        self.cmd = cmd
        self.buf = b""
        self.lock = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with open(self.log_path, "wb") as log:
            while True:
                chunk = self.proc.stdout.read1(65536)
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
                with self.lock:
                    self.buf += chunk
                    self.lock.notify_all()
        with self.lock:
            self.lock.notify_all()

    def output(self):
        with self.lock:
            return self.buf.decode(errors="replace")

    def expect(self, pattern, timeout=120, start=0):
        """Wait for `pattern` (a regex) in the console after byte `start`;
        returns the match. The VM ending first, or the timeout, fails."""
        rx = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                m = rx.search(self.buf, start)
                if m:
                    return m
                if self.proc.poll() is not None and not self.reader.is_alive():
                    pytest.fail(f"vireo exited ({self.proc.returncode}) before "
                                f"{pattern!r}; console:\n{self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {pattern!r} within {timeout} s; console:\n{self.tail()}")
                self.lock.wait(min(left, 1.0))

    def tail(self, n=4000):
        return self.buf[-n:].decode(errors="replace")

    def send(self, text):
        self.proc.stdin.write(text.encode() if isinstance(text, str) else text)
        self.proc.stdin.flush()

    def wait(self, timeout=120):
        """vireo's exit status; a VM still running then fails the test."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"vireo still running after {timeout} s; console:\n{self.tail()}")
        self.reader.join(10)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.reader.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def run_script(vireo, tmp_path, script, timeout=180, **kw):
    """Boot, run `script`, power off; returns (exit status, console text)."""
    with LinuxVM(vireo, tmp_path, script, **kw) as vm:
        rc = vm.wait(timeout)
        return rc, vm.output()

# SPDX-License-Identifier: Apache-2.0
"""`make demo` as a person meets it: scripts/demo on a pseudo-terminal. The
guest's shell prompt appears, typed commands answer (uname, /dev/vda, a
ping to the host side of the tap), Ctrl-A x ends vireo with status 10, and
the terminal's modes are as they were. Once as the host chooses (natively
where its KVM boots Linux, else in the lab) and once forced into the lab,
as on a host without /dev/kvm.

These tests start the lab themselves, so they run on the host, never
inside it (they take neither the kvm nor the linux fixture)."""
import fcntl
import os
import pty
import re
import select
import subprocess
import termios
import time

import pytest

from conftest import ROOT

PROMPT = rb"vireo-demo:[^\r\n]*# "


class Terminal:
    def __init__(self, args, env):
        self.master, slave = pty.openpty()
        termios.tcsetattr(slave, termios.TCSANOW, termios.tcgetattr(slave))
        self.modes = termios.tcgetattr(slave)
        self.slave = slave
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave,
                                     env=env, cwd=ROOT, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        self.buf = b""

    def expect(self, pattern, timeout):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {pattern!r} within {timeout} s; screen:\n"
                            f"{self.buf[-3000:].decode(errors='replace')}")
            r, _, _ = select.select([self.master], [], [], min(left, 1.0))
            if r:
                try:
                    self.buf += os.read(self.master, 65536)
                except OSError:
                    pytest.fail(f"terminal closed before {pattern!r}:\n"
                                f"{self.buf[-3000:].decode(errors='replace')}")

    def type(self, text):
        os.write(self.master, text.encode() if isinstance(text, str) else text)

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


def controlling_tty_env():
    env = dict(os.environ, TERM="xterm")
    env.pop("VIREO_DEMO", None)
    return env


def run_demo(env):
    if os.geteuid() != 0:
        pytest.fail("the demo needs root (KVM, a tap in a network namespace)")
    args = [str(ROOT / "scripts" / "demo")]
    t = Terminal(args, env)
    try:
        t.expect(rb"vireo demo: Linux \S+ on 2 vCPUs", 300)
        t.expect(PROMPT, 120)
        t.type("uname -a; echo SUM=$((40+2))\r")
        t.expect(rb"Linux vireo-demo \S+ #", 60)
        t.expect(rb"SUM=42", 60)
        t.expect(PROMPT, 60)
        t.type("ls -l /dev/vda && grep -c ^processor /proc/cpuinfo\r")
        t.expect(rb"brw[^\r\n]* /dev/vda\r*\n2\r*\n", 60)
        t.expect(PROMPT, 60)
        t.type("ping -c 2 10.0.2.2\r")
        t.expect(rb"2 packets transmitted, 2 packets received", 120)
        t.expect(PROMPT, 60)
        t.type(b"\x01x")
        rc = t.proc.wait(timeout=120)
        assert rc == 10, f"Ctrl-A x gave {rc}:\n{t.buf[-2000:].decode(errors='replace')}"
        assert termios.tcgetattr(t.slave) == t.modes, "the terminal's modes were not restored"
    finally:
        t.close()


@pytest.mark.slow
def test_demo_as_the_host_chooses():
    run_demo(controlling_tty_env())


@pytest.mark.slow
def test_demo_in_the_lab():
    run_demo(dict(controlling_tty_env(), VIREO_DEMO="lab"))

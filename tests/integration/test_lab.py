# SPDX-License-Identifier: Apache-2.0
"""scripts/lab itself: a command runs in a VM with a working /dev/kvm, sees
the host's files at their own paths, gives back its output and exit status,
writes to the host only through --share, and is stopped by the time limit.
Run on the host (they start the lab), once (marked slow: no vireo binary
is involved, so the ASan pass would prove nothing more)."""
import subprocess

import pytest

from conftest import ROOT

LAB = str(ROOT / "scripts" / "lab")


def lab(*args, timeout=300):
    return subprocess.run([LAB, "--quiet", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.mark.slow
def test_lab_runs_a_command_with_kvm(tmp_path):
    marker = tmp_path / "host-file"
    marker.write_text("seen from the lab\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    script = f"""
set -e
test -c /dev/kvm && echo KVM-OK
grep -qw svm /proc/cpuinfo && echo SVM-OK
echo "PWD=$PWD"
cat {marker}
echo "ENV=$LAB_TEST_VAR"
echo written > {shared}/out
echo scribble > {marker}
echo new > {tmp_path}/not-shared
exit 7
"""
    r = lab("--share", str(shared), "--", "sh", "-c", script)
    assert r.returncode == 7, (r.returncode, r.stdout, r.stderr)
    out = r.stdout
    assert "KVM-OK" in out and "SVM-OK" in out, out
    assert f"PWD={ROOT}" in out, out
    assert "seen from the lab" in out, out
    assert "ENV=passed through" in out, out
    # Written through the share; everything else stayed in the VM.
    assert (shared / "out").read_text() == "written\n"
    assert marker.read_text() == "seen from the lab\n"
    assert not (tmp_path / "not-shared").exists()


LAB_TEST_ENV = {"LAB_TEST_VAR": "passed through"}


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for k, v in LAB_TEST_ENV.items():
        monkeypatch.setenv(k, v)


@pytest.mark.slow
def test_lab_time_limit():
    r = lab("--timeout", "20", "--", "sleep", "300", timeout=120)
    assert r.returncode == 124, (r.returncode, r.stdout, r.stderr)
    assert "did not finish within 20 s" in r.stderr


def test_lab_refuses_bad_usage():
    r = lab("--", timeout=30)
    assert r.returncode == 125 and "no command given" in r.stderr, r.stderr
    r = lab("--timeout", "soon", "--", "true", timeout=30)
    assert r.returncode == 125 and "--timeout wants whole seconds" in r.stderr, r.stderr
    r = lab("--share", "/nonexistent/dir", "--", "true", timeout=30)
    assert r.returncode == 125 and "not a directory" in r.stderr, r.stderr


def descendants(pid):
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out.append(k)
        out.extend(descendants(k))
    return out


@pytest.mark.slow
def test_lab_stopped_by_a_signal_leaves_nothing_running():
    import os
    import signal
    import time
    p = subprocess.Popen([LAB, "--quiet", "--", "sleep", "300"], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    kids = []
    while time.monotonic() < deadline:
        kids = descendants(p.pid)
        names = [open(f"/proc/{k}/comm").read().strip() for k in kids if os.path.exists(f"/proc/{k}")]
        if any(n.startswith("qemu-system") for n in names):
            break
        time.sleep(0.5)
    assert kids, "the lab started no VM"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) != 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{k}") for k in kids):
        time.sleep(0.5)
    alive = [k for k in kids if os.path.exists(f"/proc/{k}")]
    assert not alive, f"left running after SIGTERM: {alive}"

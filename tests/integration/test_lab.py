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

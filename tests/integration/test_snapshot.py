# SPDX-License-Identifier: Apache-2.0
"""Pause, snapshot, restore in a new process, diff snapshots, clones, and
damaged snapshots, with the counter guest: it counts in ring 3 and checks a
memory pattern, so a restore that lost state shows as a wrong count or sum."""
import hashlib
import json
import os
import pathlib
import secrets
import shutil
import subprocess
import time

import pytest

from conftest import need_kvm, run
from vmapi import VM, api

EVERY = str(1 << 21)


def counter_vm(vireo, guests, sock, extra=()):
    return VM([vireo, "run", "--kernel", str(guests / "counter.elf"), "--memory", "256M",
               "--cmdline", f"pattern_mib=32 every={EVERY}", "--api-socket", str(sock), *extra],
              sock=str(sock))


def pause_and_snapshot(vm, sock, state, mem, kind="Full"):
    assert api(sock, "PATCH", "/vm", {"state": "Paused"})[0] == 204
    assert api(sock, "GET", "/")[1]["state"] == "Paused"
    vm.read_for(0.3)
    last = vm.counts()[-1]
    vm.read_for(0.5)
    assert vm.counts()[-1] == last, "the guest kept counting while paused"
    status, body = api(sock, "PUT", "/snapshot/create",
                       {"snapshot_type": kind, "snapshot_path": str(state), "mem_file_path": str(mem)})
    assert status == 204, body
    return last[0]


def snapshot_counter(vireo, guests, d, count=2, name="s"):
    """Boots the counter, lets it reach `count`, pauses, snapshots to
    d/name.state and d/name.mem, kills it; returns (last count, pattern)."""
    sock = d / f"{name}.sock"
    vm = counter_vm(vireo, guests, sock)
    try:
        vm.wait_count(count)
        pattern = vm.pattern()
        last = pause_and_snapshot(vm, str(sock), d / f"{name}.state", d / f"{name}.mem")
    finally:
        vm.kill()
    return last, pattern


def assert_continues(vm, last, pattern):
    vm.wait_count(last + 3)
    counts = vm.counts()
    # The next line is last+1; when the guest was paused in the middle of
    # printing it, its first half went to the old process and the first
    # whole line here is last+2. A restart would show 1.
    assert counts[0][0] in (last + 1, last + 2), f"restored at {counts[0][0]}, paused at {last}"
    assert all(sum_ == pattern for _, sum_ in counts), "memory pattern changed across restore"


@pytest.mark.kvm
def test_pause_snapshot_kill_restore(vireo, guests, kvm, tmp_path):
    last, pattern = snapshot_counter(vireo, guests, tmp_path, count=3)
    # the memory file is sparse: far less allocated than the guest's 256 MiB
    assert os.stat(tmp_path / "s.mem").st_blocks * 512 < (128 << 20)
    sock2 = tmp_path / "api2.sock"
    vm2 = VM([vireo, "run", "--api-socket", str(sock2)], sock=str(sock2))
    try:
        assert api(str(sock2), "GET", "/")[1]["state"] == "Not started"
        status, body = api(str(sock2), "PUT", "/snapshot/load", {
            "snapshot_path": str(tmp_path / "s.state"),
            "mem_backend": {"backend_type": "File", "backend_path": str(tmp_path / "s.mem")},
            "resume_vm": True})
        assert status == 204, body
        assert api(str(sock2), "GET", "/")[1]["state"] == "Running"
        assert_continues(vm2, last, pattern)
    finally:
        vm2.kill()


@pytest.mark.kvm
def test_restore_paused_then_resume(vireo, guests, kvm, tmp_path):
    last, pattern = snapshot_counter(vireo, guests, tmp_path)
    sock2 = tmp_path / "b.sock"
    vm2 = VM([vireo, "run", "--restore", str(tmp_path / "s.state"), "--restore-mem",
              str(tmp_path / "s.mem"), "--paused", "--api-socket", str(sock2)], sock=str(sock2))
    try:
        vm2.read_for(0.5)
        assert vm2.counts() == [], "a VM restored --paused ran"
        assert api(str(sock2), "GET", "/")[1]["state"] == "Paused"
        assert api(str(sock2), "PATCH", "/vm", {"state": "Resumed"})[0] == 204
        assert_continues(vm2, last, pattern)
    finally:
        vm2.kill()


@pytest.mark.kvm
def test_diff_snapshot(vireo, guests, kvm, tmp_path):
    sock = tmp_path / "a.sock"
    vm = counter_vm(vireo, guests, sock, ["--track-dirty-pages"])
    try:
        vm.wait_count(2)
        pattern = vm.pattern()
        pause_and_snapshot(vm, str(sock), tmp_path / "full.state", tmp_path / "full.mem")
        assert api(str(sock), "PATCH", "/vm", {"state": "Resumed"})[0] == 204
        vm.wait_count(vm.counts()[-1][0] + 4)
        shutil.copy(tmp_path / "full.mem", tmp_path / "diff.mem")
        last = pause_and_snapshot(vm, str(sock), tmp_path / "diff.state", tmp_path / "diff.mem",
                                  kind="Diff")
    finally:
        vm.kill()
    vm2 = VM([vireo, "run", "--restore", str(tmp_path / "diff.state"), "--restore-mem",
              str(tmp_path / "diff.mem")])
    try:
        assert_continues(vm2, last, pattern)
    finally:
        vm2.kill()


@pytest.mark.kvm
def test_diff_without_dirty_tracking_is_refused(vireo, guests, kvm, tmp_path):
    sock = tmp_path / "a.sock"
    vm = counter_vm(vireo, guests, sock)
    try:
        vm.wait_count(1)
        assert api(str(sock), "PATCH", "/vm", {"state": "Paused"})[0] == 204
        status, body = api(str(sock), "PUT", "/snapshot/create", {
            "snapshot_type": "Diff", "snapshot_path": str(tmp_path / "s"),
            "mem_file_path": str(tmp_path / "m")})
        assert status == 400 and "dirty" in body["fault_message"]
    finally:
        vm.kill()


@pytest.mark.kvm
def test_ten_clones_run_independently(vireo, guests, kvm, tmp_path):
    last, pattern = snapshot_counter(vireo, guests, tmp_path)
    clones = [VM([vireo, "run", "--restore", str(tmp_path / "s.state"), "--restore-mem",
                  str(tmp_path / "s.mem")]) for _ in range(10)]
    try:
        for c in clones:
            assert_continues(c, last, pattern)
        # one clone stopping leaves the others running
        clones[0].kill()
        for c in clones[1:]:
            n = c.counts()[-1][0]
            c.wait_count(n + 1)
            assert c.proc.poll() is None
    finally:
        for c in clones:
            c.kill()


DAMAGE = [
    ("flip", "checksum mismatch"),
    ("truncate", "truncated"),
    ("magic", "not a vireo snapshot"),
    ("version", "format version"),
    ("empty", "too short"),
]


def damage(state, how):
    """A state file's bytes, damaged one of the DAMAGE ways."""
    data = bytearray(state)
    if how == "flip":
        data[len(data) // 2] ^= 0x40
    elif how == "truncate":
        data = data[:len(data) - 100]
    elif how == "magic":
        data[0:8] = b"NOTASNAP"
    elif how == "version":
        data[8] = 99
    else:
        data = b""
    return bytes(data)


def damaged(tmp_path, data):
    p = tmp_path / "bad.state"
    p.write_bytes(data)
    return str(p)


@pytest.fixture(scope="module")
def good_snapshot(vireo, guests, tmp_path_factory):
    need_kvm()
    d = tmp_path_factory.mktemp("snap")
    snapshot_counter(vireo, guests, d, count=1)
    return d


@pytest.mark.kvm
@pytest.mark.parametrize("how,expect", DAMAGE)
def test_damaged_state_refused(vireo, good_snapshot, tmp_path, how, expect):
    data = damage((good_snapshot / "s.state").read_bytes(), how)
    r = run([vireo, "run", "--restore", damaged(tmp_path, data), "--restore-mem",
             str(good_snapshot / "s.mem")])
    assert r.returncode == 2, r.stderr
    assert expect.encode() in r.stderr
    # and through the API: 400 with the message
    sock = tmp_path / "x.sock"
    vm = VM([vireo, "run", "--api-socket", str(sock)], sock=str(sock))
    try:
        status, body = api(str(sock), "PUT", "/snapshot/load", {
            "snapshot_path": str(tmp_path / "bad.state"), "mem_file_path": str(good_snapshot / "s.mem")})
        assert status == 400 and expect in body["fault_message"]
        assert api(str(sock), "GET", "/")[1]["state"] == "Not started"
    finally:
        vm.kill()


@pytest.mark.kvm
def test_truncated_memory_file_refused(vireo, good_snapshot, tmp_path):
    mem = tmp_path / "short.mem"
    with open(good_snapshot / "s.mem", "rb") as f, open(mem, "wb") as g:
        g.write(f.read(1 << 20))
    r = run([vireo, "run", "--restore", str(good_snapshot / "s.state"), "--restore-mem", str(mem)])
    assert r.returncode == 2
    assert b"truncated" in r.stderr


@pytest.mark.kvm
def test_api_state_machine_errors(vireo, guests, kvm, tmp_path):
    sock = tmp_path / "a.sock"
    vm = VM([vireo, "run", "--api-socket", str(sock)], sock=str(sock))
    try:
        s = str(sock)
        assert api(s, "PATCH", "/vm", {"state": "Paused"})[0] == 400
        assert api(s, "PUT", "/actions", {"action_type": "InstanceStart"})[0] == 400  # no boot source
        st, body = api(s, "PUT", "/boot-source", {"kernel_image_path": str(tmp_path / "nope")})
        assert st == 400 and "nope" in body["fault_message"]
        assert api(s, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})[0] == 204
        assert api(s, "PUT", "/boot-source", {"kernel_image_path": str(guests / "counter.elf"),
                                               "boot_args": f"every={EVERY}"})[0] == 204
        assert api(s, "PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        vm.wait_count(1)
        assert api(s, "GET", "/machine-config")[1]["vcpu_count"] == 2
        # configuration after boot, and snapshots of a running VM, are refused
        assert api(s, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})[0] == 400
        st, body = api(s, "PUT", "/snapshot/create", {"snapshot_path": str(tmp_path / "x"),
                                                      "mem_file_path": str(tmp_path / "y")})
        assert st == 400 and "paused" in body["fault_message"]
        assert api(s, "PUT", "/actions", {"action_type": "InstanceStart"})[0] == 400
    finally:
        vm.kill()


def blkloop_snapshot(vireo, guests, d):
    """blkloop on a qcow2 disk, paused and snapshotted mid-I/O; returns
    (last count, disk path)."""
    disk = d / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    sock = d / "blk.sock"
    vm = VM([vireo, "run", "--kernel", str(guests / "blkloop.elf"), "--memory", "128M",
             "--disk", str(disk), "--cmdline", "every=32", "--api-socket", str(sock)], sock=str(sock))
    try:
        vm.wait_count(3)
        last = pause_and_snapshot(vm, str(sock), d / "blk.state", d / "blk.mem")
    finally:
        vm.kill()
    return last, disk


@pytest.mark.kvm
def test_snapshot_with_virtio_blk(vireo, guests, kvm, tmp_path):
    """Queue positions, MSI-X routes and the disk carry across: the restored
    guest keeps writing, reading back, and re-reading blocks written before
    the snapshot, with interrupts arriving."""
    last, disk = blkloop_snapshot(vireo, guests, tmp_path)
    vm = VM([vireo, "run", "--restore", str(tmp_path / "blk.state"), "--restore-mem",
             str(tmp_path / "blk.mem")])
    try:
        assert_continues(vm, last, "ok")
        assert b"FAIL" not in vm.buf
        assert vm.stop() == 10
    finally:
        vm.kill()
    r = subprocess.run(["qemu-img", "check", str(disk)], capture_output=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.kvm
def test_clones_get_their_own_disk_overlays(vireo, guests, kvm, tmp_path):
    last, disk = blkloop_snapshot(vireo, guests, tmp_path)
    before = hashlib.sha256(disk.read_bytes()).hexdigest()
    dirs = [tmp_path / f"clone{i}" for i in range(3)]
    clones = []
    try:
        for d in dirs:
            d.mkdir()
            clones.append(VM([vireo, "run", "--restore", str(tmp_path / "blk.state"),
                              "--restore-mem", str(tmp_path / "blk.mem"),
                              "--clone-overlays", str(d)]))
        for c in clones:
            assert_continues(c, last, "ok")
            assert b"FAIL" not in c.buf
        # A SIGKILLed writer may leak a cluster it was allocating (harmless,
        # and what check -r leaks is for); an orderly stop must leave none.
        for c in clones:
            assert c.stop() == 10
    finally:
        for c in clones:
            c.kill()
    assert hashlib.sha256(disk.read_bytes()).hexdigest() == before, "a clone wrote the shared disk"
    for d in dirs:
        overlays = list(d.glob("*.qcow2"))
        assert len(overlays) == 1
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(overlays[0])],
                                         capture_output=True, check=True).stdout)
        assert info["backing-filename"] == str(disk.resolve())
        r = subprocess.run(["qemu-img", "check", str(overlays[0])], capture_output=True)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.kvm
def test_clone_endpoint(vireo, guests, kvm, tmp_path):
    """PUT /vireo/clone: three restored VMMs from one running VM, each with
    its own API socket and console log; they and the source all count on."""
    sock = tmp_path / "src.sock"
    vm = counter_vm(vireo, guests, sock)
    pids = []
    try:
        vm.wait_count(2)
        pattern = vm.pattern()
        status, body = api(str(sock), "PUT", "/vireo/clone", {"count": 3, "dir": str(tmp_path / "c")})
        assert status == 200, body
        clones = body["clones"]
        assert len(clones) == 3
        pids = [c["pid"] for c in clones]
        vm.read_for(0.2)
        src_count = vm.counts()[-1][0]
        vm.wait_count(src_count + 2)  # the source goes on
        for c in clones:
            deadline = time.time() + 30
            while time.time() < deadline:
                text = open(c["console_log"], "rb").read().decode(errors="replace")
                counts = [l.split() for l in text[:text.rfind("\n") + 1].splitlines()
                          if l.startswith("COUNT ")]
                if len(counts) >= 3:
                    break
                time.sleep(0.2)
            assert len(counts) >= 3, text[-300:]
            assert all(l[3] == pattern for l in counts)
            assert int(counts[0][1]) >= 2
            assert api(c["api_socket"], "GET", "/")[1]["state"] == "Running"
        st, body = api(str(sock), "PUT", "/vireo/clone", {"count": 0, "dir": str(tmp_path / "d")})
        assert st == 400 and "count" in body["fault_message"]
        st, body = api(str(sock), "PUT", "/vireo/clone", {"count": 1, "dir": "relative"})
        assert st == 400
    finally:
        vm.kill()
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def read_until(proc, buf, want, timeout=30):
    """proc's stdout appended to buf until `want` is in it."""
    import select
    end = time.time() + timeout
    while want.encode() not in buf:
        left = end - time.time()
        assert left > 0, f"no {want!r}: {buf[-800:]!r}"
        r, _, _ = select.select([proc.stdout], [], [], left)
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"vireo ended before {want!r}: {buf[-800:]!r} {proc.stderr.read()!r}"
            buf += chunk
    return buf


def console_vsock_snapshot(vireo, guests, d, token):
    """virtio_console waiting for its input line, with a vsock device beside
    it, paused and snapshotted; the process is then killed."""
    sock, vs = d / "api.sock", d / "v.sock"
    vm = VM([vireo, "run", "--kernel", str(guests / "virtio_console.elf"), "--memory", "128M",
             "--cmdline", f"token={token} wait_s=300", "--console", "virtio", "--debug-exit",
             "--vsock", f"cid=42,uds={vs}", "--api-socket", str(sock)], sock=str(sock))
    try:
        vm.buf = read_until(vm.proc, vm.buf, "VCON: hello sent")
        assert f"HVC hello {token}".encode() in vm.buf
        assert vs.exists()
        assert api(str(sock), "PATCH", "/vm", {"state": "Paused"})[0] == 204
        status, body = api(str(sock), "PUT", "/snapshot/create",
                           {"snapshot_type": "Full", "snapshot_path": str(d / "c.state"),
                            "mem_file_path": str(d / "c.mem")})
        assert status == 204, body
    finally:
        vm.kill()


@pytest.mark.kvm
def test_snapshot_with_virtio_console_and_vsock(vireo, guests, kvm, tmp_path):
    """The device list keeps --console virtio and --vsock: the restored
    process re-creates both (its vsock socket at the new path given), and
    the guest, restored while waiting on hvc0's receive queue, gets the line
    typed into the new process and echoes it through hvc0."""
    token, word = secrets.token_hex(6), secrets.token_hex(8)
    console_vsock_snapshot(vireo, guests, tmp_path, token)
    new_vs = tmp_path / "new.sock"
    proc = subprocess.Popen([vireo, "run", "--restore", str(tmp_path / "c.state"),
                             "--restore-mem", str(tmp_path / "c.mem"),
                             "--vsock", f"uds={new_vs}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.time() + 10
        while not new_vs.exists():
            assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
            assert time.time() < end, "the restored vsock socket did not appear"
            time.sleep(0.02)
        proc.stdin.write(f"ping {word}\n".encode())
        proc.stdin.flush()
        out = read_until(proc, b"", f"HVC echo ping {word}\n")
        out = read_until(proc, out, "VIREO-GUEST: PASS virtio_console")
        proc.wait(timeout=30)
        assert proc.returncode == 0, (out, proc.stderr.read())
    finally:
        proc.kill()
        proc.wait()
    assert not new_vs.exists(), "the vsock socket outlived vireo"


@pytest.mark.kvm
def test_restore_vsock_options(vireo, guests, kvm, tmp_path):
    """A restored guest keeps its CID; a clone gets DIR/vsock.sock."""
    console_vsock_snapshot(vireo, guests, tmp_path, "t")
    state, mem = str(tmp_path / "c.state"), str(tmp_path / "c.mem")
    r = run([vireo, "run", "--restore", state, "--restore-mem", mem, "--vsock",
             f"cid=43,uds={tmp_path / 'x.sock'}"], timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert b"cid=43, but the snapshot's guest has CID 42" in r.stderr, r.stderr
    d = tmp_path / "clone"
    d.mkdir()
    clone = VM([vireo, "run", "--restore", state, "--restore-mem", mem, "--clone-overlays", str(d)])
    try:
        end = time.time() + 10
        while not (d / "vsock.sock").exists():
            assert clone.proc.poll() is None, clone.proc.stderr.read()
            assert time.time() < end, "the clone's vsock socket did not appear"
            time.sleep(0.02)
    finally:
        clone.kill()


@pytest.fixture(scope="module")
def crafted_state(vireo, tmp_path_factory):
    """A well-formed state file without KVM: the snapshot-state unit test
    writes the ones it builds (VIREO_SNAPSHOT_SEED_DIR)."""
    tool = pathlib.Path(vireo).parent / "tests" / "unit" / "test_snapshot_state"
    if not tool.exists():
        pytest.skip(f"SKIPPED: {tool} is not built")
    d = tmp_path_factory.mktemp("crafted")
    subprocess.run([str(tool)], env=dict(os.environ, VIREO_SNAPSHOT_SEED_DIR=str(d)),
                   check=True, capture_output=True)
    return (d / "state1").read_bytes()


@pytest.mark.parametrize("how,expect", DAMAGE)
def test_damaged_state_refused_before_kvm(vireo, crafted_state, tmp_path, how, expect):
    """A damaged state file is refused before anything is built, so the
    message names the damage even on a host without KVM."""
    data = damage(crafted_state, how)
    mem = tmp_path / "m.mem"
    mem.write_bytes(b"")
    r = run([vireo, "run", "--restore", damaged(tmp_path, data), "--restore-mem", str(mem)])
    assert r.returncode == 2, r.stderr
    assert expect.encode() in r.stderr, r.stderr
    assert b"AddressSanitizer" not in r.stderr and b"runtime error" not in r.stderr

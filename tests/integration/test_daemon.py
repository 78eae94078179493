# SPDX-License-Identifier: Apache-2.0
"""vireod (`vireo daemon`) and its client (`vireo vm ...`): definitions kept
in SQLite, VMs as `vireo run` processes of their own that outlive the daemon,
states that follow the processes' truth, and every bad input refused with a
message naming the field. VMs are the project's test guests, run natively."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import run
from vmapi import api


class Daemon:
    """A daemon on short private directories (Unix socket paths are short)."""

    def __init__(self, vireo, root=None):
        self.vireo = vireo
        self.root = root or tempfile.mkdtemp(prefix="vd", dir="/tmp")
        self.state = os.path.join(self.root, "s")
        self.rundir = os.path.join(self.root, "r")
        self.sock = os.path.join(self.rundir, "vireod.sock")
        self.ro = os.path.join(self.rundir, "vireod-ro.sock")
        self.proc = None

    def start(self, *extra):
        self.proc = subprocess.Popen([self.vireo, "daemon", "--state-dir", self.state,
                                      "--run-dir", self.rundir, *extra], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # A killed daemon leaves its socket files: wait for this one to answer.
        deadline = time.time() + 10
        while not (self.answers(self.sock) and self.answers(self.ro)):
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited: " + self.proc.stderr.read().decode())
            assert time.time() < deadline, "daemon sockets did not appear"
            time.sleep(0.01)
        return self

    def answers(self, sock):
        try:
            return api(sock, "GET", "/")[0] == 200
        except OSError:
            return False

    def vm(self, *args, timeout=60, check=True, connect=None):
        r = run([self.vireo, "vm", *args, "--connect", connect or self.sock], timeout=timeout)
        if check:
            assert r.returncode == 0, (args, r.stdout.decode(), r.stderr.decode())
        return r

    def info(self, name):
        return json.loads(self.vm("info", name, "--json").stdout)

    def states(self):
        return {v["name"]: v["state"] for v in api(self.sock, "GET", "/vms")[1]["vms"]}

    def define(self, tmp_path, **fields):
        path = tmp_path / f"{fields['name']}.json"
        path.write_text(json.dumps(fields))
        return self.vm("define", str(path))

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def vm_pids(d):
    return [v["pid"] for v in api(d.sock, "GET", "/vms")[1]["vms"] if "pid" in v]


@pytest.fixture
def daemon(vireo):
    d = Daemon(vireo).start()
    yield d
    pids = vm_pids(d) if d.proc.poll() is None else []
    d.stop()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(d.root, ignore_errors=True)


def counter(guests, name, **extra):
    return dict(name=name, memory=64, kernel=str(guests / "counter.bzImage"),
                cmdline="pattern_mib=1 every=2000000", **extra)


def wait_for(pred, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def console(d, name):
    path = os.path.join(d.rundir, "vms", name, "console.log")
    return open(path, "rb").read().decode(errors="replace") if os.path.exists(path) else ""


def alive(pid):
    """Running, and not a zombie (a VM whose daemon died is reparented to an
    init that may be slow to reap it)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def count_of(text):
    """The counter guest's last COUNT, from whole lines only: the log may be
    read while a line is half written."""
    counts = [int(m.group(1)) for m in re.finditer(r"^COUNT (\d+) SUM \w+\r?\n", text, re.M)]
    return counts[-1] if counts else 0


# --- the daemon itself -------------------------------------------------------

def test_second_daemon_on_the_same_state_dir_is_refused(vireo, daemon):
    r = run([vireo, "daemon", "--state-dir", daemon.state, "--run-dir", daemon.rundir + "2"])
    assert r.returncode == 1
    assert b"another vireo daemon" in r.stderr and daemon.state.encode() in r.stderr
    assert str(daemon.proc.pid).encode() in r.stderr
    # The first one is unharmed.
    assert api(daemon.sock, "GET", "/")[1]["app"] == "vireod"


def test_read_only_socket_serves_gets_and_refuses_writes(daemon, guests, tmp_path):
    daemon.define(tmp_path, **counter(guests, "ro1"))
    assert api(daemon.ro, "GET", "/vms")[0] == 200
    assert api(daemon.ro, "GET", "/vms/ro1")[1]["state"] == "shut off"
    for method, path in [("POST", "/vms"), ("POST", "/vms/ro1/start"), ("DELETE", "/vms/ro1"),
                         ("PUT", "/vms/ro1/autostart")]:
        status, body = api(daemon.ro, method, path, {"name": "x"})
        assert status == 403 and "read-only" in body["error"], (method, path)
    r = daemon.vm("undefine", "ro1", connect=daemon.ro, check=False)
    assert r.returncode == 1 and b"read-only" in r.stderr
    assert "ro1" in daemon.states()
    assert oct(os.stat(daemon.sock).st_mode & 0o777) == "0o600"


def test_store_is_sqlite_in_wal_mode_and_survives_a_restart(vireo, daemon, guests, tmp_path):
    import sqlite3
    daemon.define(tmp_path, **counter(guests, "keep"))
    uuid = daemon.info("keep")["uuid"]
    daemon.kill9()
    db = sqlite3.connect(os.path.join(daemon.state, "vireo.db"))
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    db.close()
    daemon.start()
    assert daemon.info("keep")["uuid"] == uuid


def test_client_reaches_the_daemon_through_vireo_connect(vireo, daemon):
    env = dict(os.environ, VIREO_CONNECT=daemon.sock)
    r = run([vireo, "vm", "list", "--all"], env=env)
    assert r.returncode == 0 and b"NAME" in r.stdout
    env["VIREO_CONNECT"] = daemon.root + "/nothing.sock"
    r = run([vireo, "vm", "list"], env=env)
    assert r.returncode == 3 and b"cannot talk to the daemon" in r.stderr
    assert run([vireo, "vm", "frobnicate", "x"]).returncode == 2
    assert run([vireo, "vm", "info"], env=env).returncode == 2


# --- definitions -------------------------------------------------------------

def test_define_list_info_dumpconfig_undefine(daemon, guests, tmp_path):
    r = daemon.define(tmp_path, **counter(guests, "web1", vcpus=2,
                                          disks=[{"path": "/tmp/d.qcow2", "format": "qcow2",
                                                  "readonly": True}],
                                          nets=[{"tap": "tap7", "mac": "52:54:00:00:00:07"}]))
    assert b"defined web1" in r.stdout
    info = daemon.info("web1")
    assert info["state"] == "shut off" and info["vcpus"] == 2 and info["memory"] == 64
    assert len(info["uuid"]) == 36 and info["uuid"][14] == "4"
    cfg = json.loads(daemon.vm("dumpconfig", "web1").stdout)
    assert cfg["uuid"] == info["uuid"] and cfg["console"] == "serial"
    assert cfg["disks"] == [{"path": "/tmp/d.qcow2", "format": "qcow2", "readonly": True}]
    assert cfg["nets"] == [{"tap": "tap7", "mac": "52:54:00:00:00:07"}]
    # The dumped definition defines the same VM again (under a new name and UUID).
    cfg.update(name="web2")
    del cfg["uuid"]
    daemon.define(tmp_path, **cfg)
    assert b"web1" not in daemon.vm("list").stdout
    out = daemon.vm("list", "--all").stdout.decode()
    assert "web1" in out and "web2" in out and "shut off" in out
    daemon.vm("undefine", "web1")
    r = daemon.vm("info", "web1", check=False)
    assert r.returncode == 1 and b"no VM named 'web1'" in r.stderr
    assert list(daemon.states()) == ["web2"]


K = "/k"
BAD = [
    ("{", "malformed JSON"),
    ('{"name": "a", "kernel": "/k"} x', "text after"),
    ("[]", "must be a JSON object"),
    ('"name"', "must be a JSON object"),
    ("", "malformed JSON"),
    ({"kernel": K}, "name: required"),
    ({"name": "a"}, "kernel: required"),
    ({"name": "../etc", "kernel": K}, "name: must be"),
    ({"name": "a" * 65, "kernel": K}, "name: "),
    ({"name": 7, "kernel": K}, "name: must be a string"),
    ({"name": "a", "kernel": "k"}, "kernel: must be an absolute path"),
    ({"name": "a", "kernel": "/k,format=qcow2"}, "kernel: must not contain ','"),
    ({"name": "a", "kernel": "/k" + "x" * 2000}, "kernel: longer than"),
    ({"name": "a", "kernel": K, "memory": 0}, "memory: must be between"),
    ({"name": "a", "kernel": K, "memory": -5}, "memory: must be between"),
    ({"name": "a", "kernel": K, "memory": "lots"}, "memory: "),
    ({"name": "a", "kernel": K, "memory": 1.5}, "memory: must be"),
    ({"name": "a", "kernel": K, "vcpus": "2"}, "vcpus: must be an integer"),
    ({"name": "a", "kernel": K, "vcpus": 0}, "vcpus: must be between 1 and 64"),
    ({"name": "a", "kernel": K, "vcpus": 10**30}, "vcpus: must be"),
    ({"name": "a", "kernel": K, "initrd": "rel"}, "initrd: must be an absolute path"),
    ({"name": "a", "kernel": K, "cmdline": "a\nb"}, "cmdline: must not contain control"),
    ({"name": "a", "kernel": K, "console": "vga"}, "console: must be serial or virtio"),
    ({"name": "a", "kernel": K, "uuid": "nope"}, "uuid: must be"),
    ({"name": "a", "kernel": K, "colour": "red"}, "colour: unknown field"),
    ({"name": "a", "kernel": K, "disks": {}}, "disks: must be an array"),
    ({"name": "a", "kernel": K, "disks": [{"path": "/d", "format": "vhd"}]},
     "disks[0].format: must be raw, qcow2 or vmdk"),
    ({"name": "a", "kernel": K, "disks": [{"path": "/d"}, {"format": "raw"}]},
     "disks[1].path: required"),
    ({"name": "a", "kernel": K, "disks": [{"path": "/d", "readonly": "yes"}]},
     "disks[0].readonly: must be true or false"),
    ({"name": "a", "kernel": K, "disks": [{"path": "/d", "size": 1}]},
     "disks[0].size: unknown field"),
    ({"name": "a", "kernel": K, "disks": [{"path": "/d"}] * 17}, "disks: at most 16"),
    ({"name": "a", "kernel": K, "nets": [{"tap": "t0", "mac": "52:54:00:00:00"}]},
     "nets[0].mac: must be"),
    ({"name": "a", "kernel": K, "nets": [{"mac": "52:54:00:00:00:01"}]}, "nets[0].tap: required"),
    ({"name": "a", "kernel": K, "nets": [{"tap": "a-very-long-tap-name"}]}, "nets[0].tap: "),
    ({"name": "a", "kernel": K, "nets": ["tap0"]}, "nets[0]: must be an object"),
]


@pytest.mark.parametrize("body,needle", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_definition_is_refused_naming_the_field(daemon, tmp_path, body, needle):
    path = tmp_path / "bad.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    r = daemon.vm("define", str(path), check=False)
    assert r.returncode == 1, r.stdout
    assert needle in r.stderr.decode(), r.stderr
    assert daemon.states() == {}


def test_hostile_bodies_over_http(daemon):
    status, body = api(daemon.sock, "POST", "/vms", b'{"name": "a\x00b", "kernel": "/k"}')
    assert status == 400
    assert api(daemon.sock, "POST", "/vms", "x" * 70000)[0] == 413
    assert api(daemon.sock, "GET", "/vms/..%2f..")[0] == 404
    assert api(daemon.sock, "GET", "/vms/" + "a" * 300)[0] == 404
    assert api(daemon.sock, "GET", "/nowhere")[0] == 404
    assert api(daemon.sock, "DELETE", "/vms")[0] == 405
    assert api(daemon.sock, "GET", "/vms/nobody")[0] == 404
    assert api(daemon.sock, "PUT", "/vms/nobody/autostart", {"autostart": True})[0] == 404
    assert daemon.states() == {}


def test_duplicate_names_and_uuids_are_refused(daemon, guests, tmp_path):
    u = "0b6a1c1e-0000-4000-8000-000000000001"
    daemon.define(tmp_path, **counter(guests, "one", uuid=u))
    r = daemon.vm("define", str(tmp_path / "one.json"), check=False)
    assert r.returncode == 1 and b"name: a VM named 'one' is already defined" in r.stderr
    (tmp_path / "two.json").write_text(json.dumps(counter(guests, "two", uuid=u)))
    r = daemon.vm("define", str(tmp_path / "two.json"), check=False)
    assert r.returncode == 1 and u.encode() in r.stderr and b"uuid:" in r.stderr
    assert daemon.states() == {"one": "shut off"}


# --- lifecycle (test guests under KVM) ---------------------------------------

def test_define_start_console_suspend_resume_destroy_undefine(daemon, guests, kvm, tmp_path):
    daemon.define(tmp_path, **counter(guests, "c1"))
    daemon.vm("start", "c1")
    info = daemon.info("c1")
    assert info["state"] == "running" and info["pid"] > 0
    assert "c1" in daemon.vm("list").stdout.decode()
    wait_for(lambda: count_of(console(daemon, "c1")) >= 2, what="the guest's COUNT lines")
    assert console(daemon, "c1").startswith("PATTERN ")
    r = daemon.vm("start", "c1", check=False)
    assert r.returncode == 1 and b"already running" in r.stderr
    r = daemon.vm("undefine", "c1", check=False)
    assert r.returncode == 1 and b"destroy it first" in r.stderr

    daemon.vm("suspend", "c1")
    assert daemon.info("c1")["state"] == "paused"
    time.sleep(0.3)
    n = count_of(console(daemon, "c1"))
    time.sleep(1)
    assert count_of(console(daemon, "c1")) == n, "a paused guest went on counting"
    daemon.vm("resume", "c1")
    assert daemon.info("c1")["state"] == "running"
    wait_for(lambda: count_of(console(daemon, "c1")) > n, what="counting after resume")

    pid = daemon.info("c1")["pid"]
    daemon.vm("destroy", "c1")
    assert not alive(pid), "destroy left the process"
    info = daemon.info("c1")
    assert info["state"] == "shut off" and "pid" not in info
    r = daemon.vm("destroy", "c1", check=False)
    assert r.returncode == 1 and b"not running" in r.stderr
    assert api(daemon.sock, "POST", "/vms/c1/suspend")[0] == 409
    daemon.vm("undefine", "c1")
    assert daemon.states() == {}


def test_a_guest_that_powers_off_is_shut_off_and_console_shows_it(daemon, guests, kvm, tmp_path):
    daemon.define(tmp_path, name="p1", memory=32, kernel=str(guests / "poweroff.bzImage"))
    daemon.vm("start", "p1")
    wait_for(lambda: daemon.info("p1")["state"] == "shut off", what="power-off")
    info = daemon.info("p1")
    assert info["exit_status"] == 0 and info["exit"] == "exited with status 0"
    r = daemon.vm("console", "p1", timeout=20)
    assert "POWEROFF" in r.stdout.decode()
    # Started again, it runs again.
    daemon.vm("start", "p1")
    wait_for(lambda: console(daemon, "p1").count("POWEROFF") == 2, what="second boot")


def test_console_follows_a_running_vm(vireo, daemon, guests, kvm, tmp_path):
    daemon.define(tmp_path, **counter(guests, "f1"))
    daemon.vm("start", "f1")
    p = subprocess.Popen([vireo, "vm", "console", "f1", "--connect", daemon.sock],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        lines = [p.stdout.readline() for _ in range(4)]
        assert lines[0].startswith(b"PATTERN") and lines[3].startswith(b"COUNT 3 ")
        daemon.vm("destroy", "f1")
        p.stdout.read()
        assert p.wait(timeout=10) == 0, "console did not end with its VM"
    finally:
        p.kill()


def test_vm_killed_is_reported_crashed_with_signal_and_console(daemon, guests, kvm, tmp_path):
    daemon.define(tmp_path, **counter(guests, "k1"))
    daemon.vm("start", "k1")
    wait_for(lambda: count_of(console(daemon, "k1")) >= 1, what="COUNT")
    os.kill(daemon.info("k1")["pid"], signal.SIGKILL)
    wait_for(lambda: daemon.info("k1")["state"] == "crashed", what="crashed")
    info = daemon.info("k1")
    assert info["exit"] == "killed by signal 9" and info["exit_status"] is None
    # The tail is the console log's last 10 lines.
    assert "COUNT" in info["console_tail"]
    assert info["console_tail"] == "".join(console(daemon, "k1").splitlines(True)[-10:])
    out = daemon.vm("info", "k1").stdout.decode()
    assert "crashed" in out and "killed by signal 9" in out and "last console output" in out
    assert "k1" not in daemon.vm("list").stdout.decode()
    # A crashed VM starts again.
    daemon.vm("start", "k1")
    assert daemon.info("k1")["state"] == "running"


def test_vm_outlives_kill9_of_the_daemon_and_is_found_again(daemon, guests, kvm, tmp_path):
    daemon.define(tmp_path, **counter(guests, "s1"))
    daemon.define(tmp_path, **counter(guests, "s2"))
    daemon.vm("start", "s1")
    daemon.vm("start", "s2")
    daemon.vm("suspend", "s2")
    pid1, pid2 = daemon.info("s1")["pid"], daemon.info("s2")["pid"]
    daemon.kill9()
    n = count_of(console(daemon, "s1"))
    wait_for(lambda: count_of(console(daemon, "s1")) > n + 1, what="counting without a daemon")
    os.kill(pid2, signal.SIGKILL)  # dies while no daemon watches
    time.sleep(0.2)
    daemon.start()
    info = daemon.info("s1")
    assert info["state"] == "running" and info["pid"] == pid1
    info = daemon.info("s2")
    assert info["state"] == "crashed" and info["exit_status"] is None
    assert info["exit"].startswith("unknown")
    # The new daemon drives the VM it did not start.
    daemon.vm("suspend", "s1")
    assert daemon.info("s1")["state"] == "paused"
    daemon.vm("resume", "s1")
    daemon.vm("destroy", "s1")
    assert daemon.info("s1")["state"] == "shut off"
    assert not alive(pid1)


def test_a_recycled_pid_is_not_taken_for_the_vm(daemon, guests, kvm, tmp_path):
    import sqlite3
    daemon.define(tmp_path, **counter(guests, "r1"))
    daemon.kill9()
    # The store says r1 runs as this test's own pid, with another start time.
    db = sqlite3.connect(os.path.join(daemon.state, "vireo.db"))
    db.execute("UPDATE vms SET pid = ?, start_time = 1, state = 'running' WHERE name = 'r1'",
               (os.getpid(),))
    db.commit()
    db.close()
    daemon.start()
    info = daemon.info("r1")
    assert info["state"] == "crashed" and "pid" not in info


def test_shutdown_waits_for_the_guest_then_says_it_did_not_stop(daemon, guests, kvm, tmp_path):
    # The test guests ignore Ctrl-Alt-Del (Linux's answer to it, a power-off,
    # is for the lab's Linux guests): the keys go in, the client waits for
    # its --timeout and says the VM is still up; destroy then ends it.
    daemon.define(tmp_path, **counter(guests, "h1"))
    daemon.vm("start", "h1")
    t0 = time.time()
    r = daemon.vm("shutdown", "h1", "--timeout", "2", check=False)
    assert r.returncode == 1 and b"did not stop within 2 s" in r.stderr
    assert time.time() - t0 >= 2
    assert daemon.info("h1")["state"] == "running"
    # An ignored shutdown does not turn a later death into a clean stop.
    os.kill(daemon.info("h1")["pid"], signal.SIGKILL)
    wait_for(lambda: daemon.info("h1")["state"] == "crashed", what="crashed")
    r = daemon.vm("shutdown", "h1", check=False)
    assert r.returncode == 1 and b"not running" in r.stderr


def test_fifty_vms_defined_several_running(daemon, guests, kvm, tmp_path):
    for i in range(50):
        status, _ = api(daemon.sock, "POST", "/vms", counter(guests, f"vm{i:02d}"))
        assert status == 201
    running = [f"vm{i:02d}" for i in (3, 17, 29, 41)]
    for name in running:
        daemon.vm("start", name)
    states = daemon.states()
    assert len(states) == 50
    assert {n for n, s in states.items() if s == "running"} == set(running)
    listed = daemon.vm("list").stdout.decode().splitlines()[1:]
    assert sorted(l.split()[0] for l in listed) == running
    assert len(daemon.vm("list", "--all").stdout.decode().splitlines()) == 51
    for name in running:
        wait_for(lambda: count_of(console(daemon, name)) >= 1, what=f"{name} counting")
    for name in running:
        daemon.vm("destroy", name)
    assert set(daemon.states().values()) == {"shut off"}


def test_autostart_starts_a_vm_when_the_daemon_starts(daemon, guests, kvm, tmp_path):
    daemon.define(tmp_path, **counter(guests, "a1"))
    daemon.define(tmp_path, **counter(guests, "a2"))
    daemon.vm("autostart", "a1", "on")
    assert daemon.info("a1")["autostart"] is True
    r = daemon.vm("autostart", "a1", "maybe", check=False)
    assert r.returncode == 2
    daemon.stop()
    daemon.start()
    assert daemon.states() == {"a1": "running", "a2": "shut off"}
    daemon.vm("autostart", "a1", "off")
    daemon.vm("destroy", "a1")


def test_a_vm_that_cannot_start_is_reported(daemon, guests, kvm, tmp_path):
    daemon.define(tmp_path, name="nok", kernel=str(tmp_path / "missing"))
    r = daemon.vm("start", "nok", check=False)
    assert r.returncode == 1 and b"kernel: " in r.stderr and b"No such file" in r.stderr
    assert daemon.info("nok")["state"] == "shut off"
    (tmp_path / "junk").write_bytes(b"not a kernel" * 100)
    daemon.define(tmp_path, name="junk", kernel=str(tmp_path / "junk"))
    r = daemon.vm("start", "junk", check=False)
    assert r.returncode == 1 and b"ended at once (exit status 2)" in r.stderr
    info = daemon.info("junk")
    assert info["state"] == "crashed" and info["exit_status"] == 2
    assert "vireo run" in info["console_tail"]


def test_two_clients_starting_one_vm_are_serialised(daemon, guests, kvm, tmp_path):
    import threading
    daemon.define(tmp_path, **counter(guests, "race"))
    results = []

    def start():
        results.append(api(daemon.sock, "POST", "/vms/race/start"))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses == [204, 409, 409, 409], results
    assert all("already running" in b["error"] for s, b in results if s == 409)
    assert len([v for v in vm_pids(daemon)]) == 1
    daemon.vm("destroy", "race")


def test_console_log_is_capped_and_rotated(daemon, guests, kvm, tmp_path):
    daemon.stop()
    daemon.start("--console-max", "256")
    daemon.define(tmp_path, name="chatty", memory=32, kernel=str(guests / "demo.bzImage"),
                  cmdline="x" * 200)
    daemon.vm("start", "chatty")
    wait_for(lambda: daemon.info("chatty")["state"] == "shut off", what="power-off")
    log = os.path.join(daemon.rundir, "vms", "chatty", "console.log")
    assert 0 < os.path.getsize(log) <= 256
    assert os.path.getsize(log + ".1") == 256
    # Nothing lost at the seam: the newest bytes are the old file's tail + the log.
    tail = open(log + ".1", "rb").read() + open(log, "rb").read()
    assert len(tail) > 256 and b"PASS demo" in tail
    r = run([daemon.vireo, "daemon", "--console-max", "12", "--state-dir", daemon.root + "/x"])
    assert r.returncode == 2 and b"--console-max" in r.stderr


def test_stats_of_a_running_vm(daemon, guests, kvm, tmp_path):
    daemon.define(tmp_path, **counter(guests, "st1"))
    r = daemon.vm("stats", "st1", check=False)
    assert r.returncode == 1 and b"not running" in r.stderr
    daemon.vm("start", "st1")
    time.sleep(0.5)
    st = json.loads(daemon.vm("stats", "st1").stdout)
    assert st["pid"] == daemon.info("st1")["pid"]
    assert st["guest_memory_bytes"] == 64 << 20
    assert st["uptime_ms"] > 0 and st["vcpu_exits"] > 0
    assert st["cpu_time_ms"] >= 0 and st["rss_bytes"] > 1 << 20
    wait_for(lambda: json.loads(daemon.vm("stats", "st1").stdout)["cpu_time_ms"] > 0,
             what="CPU time")
    daemon.vm("destroy", "st1")

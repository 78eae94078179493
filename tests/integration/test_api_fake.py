# SPDX-License-Identifier: Apache-2.0
"""The control API over a real Unix socket, served by api_fake_server (the
real HTTP server and routes over the fake VMM of tests/unit/api), driven by
plain Python HTTP and by the vireo client verbs. Tests against `vireo run
--api-socket` join these once the VMM serves the API."""
import http.client
import json
import os
import pathlib
import socket
import subprocess
import time

import pytest

from conftest import run


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket: only the connect step differs."""

    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


@pytest.fixture(scope="session")
def fake_server_bin(vireo):
    path = pathlib.Path(vireo).parent / "tests" / "unit" / "api" / "api_fake_server"
    if not path.exists():
        pytest.fail(f"api_fake_server not found at {path}: build the tree that holds {vireo}")
    return str(path)


@pytest.fixture
def api(fake_server_bin, tmp_path):
    """A running api_fake_server; yields its socket path."""
    sock = tmp_path / "api.sock"
    proc = subprocess.Popen([fake_server_bin, str(sock)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        yield str(sock)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        assert not sock.exists(), "the server must remove its socket"


def request(sock, method, path, body=None, raw=None, headers=None):
    """One request on a fresh connection; returns (status, headers, json or None)."""
    conn = UnixHTTPConnection(sock)
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    hdrs = {"Accept": "application/json"}
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    text = resp.read()
    conn.close()
    parsed = json.loads(text) if text else None
    return resp.status, resp, parsed


def ok(sock, method, path, body):
    status, _, parsed = request(sock, method, path, body)
    assert status == 204, parsed
    assert parsed is None


def fault(sock, method, path, body, status, needle, raw=None):
    got, resp, parsed = request(sock, method, path, body, raw=raw)
    assert got == status, parsed
    assert resp.getheader("Content-Type") == "application/json"
    assert list(parsed) == ["fault_message"]
    assert needle in parsed["fault_message"], parsed
    return resp


def test_firecracker_boot_sequence(api):
    """The order of calls a Firecracker client makes to boot a microVM."""
    status, resp, info = request(api, "GET", "/")
    assert status == 200 and resp.getheader("Content-Type") == "application/json"
    assert info == {"id": "fake-vm", "state": "Not started", "vmm_version": "0.1.0",
                    "app_name": "vireo"}
    ok(api, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256,
                                       "smt": False, "track_dirty_pages": True})
    ok(api, "PUT", "/boot-source", {"kernel_image_path": "/vmlinux",
                                    "boot_args": "console=ttyS0 reboot=k panic=1"})
    ok(api, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/rootfs.ext4",
                                      "is_root_device": True, "is_read_only": False})
    ok(api, "PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                                "guest_mac": "AA:FC:00:00:00:01"})
    ok(api, "PUT", "/vsock", {"vsock_id": "vsock0", "guest_cid": 3, "uds_path": "/v.sock"})
    ok(api, "PUT", "/actions", {"action_type": "InstanceStart"})
    assert request(api, "GET", "/")[2]["state"] == "Running"
    status, _, cfg = request(api, "GET", "/vm/config")
    assert status == 200
    assert cfg["machine-config"]["vcpu_count"] == 2
    assert cfg["machine-config"]["track_dirty_pages"] is True
    assert cfg["boot-source"]["kernel_image_path"] == "/vmlinux"
    assert [d["drive_id"] for d in cfg["drives"]] == ["rootfs"]
    status, _, stats = request(api, "GET", "/vireo/stats")
    assert status == 200 and set(stats) == {"uptime_ms", "vcpu_exits", "guest_memory_bytes"}


def test_pause_snapshot_resume(api, tmp_path):
    ok(api, "PUT", "/boot-source", {"kernel_image_path": "/k"})
    ok(api, "PUT", "/actions", {"action_type": "InstanceStart"})
    fault(api, "PUT", "/snapshot/create", {"snapshot_path": "/s", "mem_file_path": "/m"},
          400, "needs a paused instance")
    ok(api, "PATCH", "/vm", {"state": "Paused"})
    assert request(api, "GET", "/")[2]["state"] == "Paused"
    ok(api, "PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": "/s",
                                        "mem_file_path": "/m"})
    ok(api, "PATCH", "/vm", {"state": "Resumed"})
    assert request(api, "GET", "/")[2]["state"] == "Running"
    fault(api, "PUT", "/boot-source", {"kernel_image_path": "/k"}, 400,
          "not allowed after the instance started")


def test_snapshot_load_on_fresh_instance(api):
    ok(api, "PUT", "/snapshot/load", {"snapshot_path": "/s", "resume_vm": True,
                                      "mem_backend": {"backend_type": "File",
                                                      "backend_path": "/m"}})
    assert request(api, "GET", "/")[2]["state"] == "Running"


def test_errors_have_firecracker_shape(api):
    fault(api, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 1, "bogus": 1},
          400, "unknown field 'bogus'")
    fault(api, "PUT", "/machine-config", {"vcpu_count": "1", "mem_size_mib": 1}, 400,
          "'vcpu_count' must be an integer")
    fault(api, "PUT", "/drives/a", {"drive_id": "b", "path_on_host": "/p",
                                    "is_root_device": False}, 400, "does not match")
    fault(api, "PUT", "/boot-source", None, 400, "invalid JSON", raw="{nope")
    fault(api, "PUT", "/boot-source", None, 400, "the body is empty", raw="")
    fault(api, "GET", "/no/such/thing", None, 404, "invalid request path")
    resp = fault(api, "DELETE", "/machine-config", None, 405, "not allowed")
    assert resp.getheader("Allow") == "GET, PUT, PATCH"
    fault(api, "PUT", "/logger", {"log_path": "/l"}, 400, "not supported by vireo")
    fault(api, "PUT", "/vireo/clone", {}, 400, "not supported by this VMM")


def test_query_string_and_trailing_slash(api):
    assert request(api, "GET", "/machine-config/")[0] == 200
    assert request(api, "GET", "/machine-config?x=1")[0] == 200


def test_body_limits(api):
    big = json.dumps({"kernel_image_path": "/" + "a" * (70 * 1024)})
    fault(api, "PUT", "/boot-source", None, 413, "too large", raw=big)
    # a path that is long but within the limit and the buffer is refused by
    # the field check, not the size check
    fault(api, "PUT", "/boot-source", {"kernel_image_path": "/" + "a" * 5000}, 400,
          "'kernel_image_path' is too long")
    # the server survives and still answers
    assert request(api, "GET", "/")[0] == 200


def test_keep_alive_connection(api):
    conn = UnixHTTPConnection(api)
    for _ in range(5):
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200
        json.loads(resp.read())
    conn.request("PUT", "/machine-config", body='{"vcpu_count": 2, "mem_size_mib": 64}',
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 204 and resp.read() == b""
    conn.close()


def test_garbage_and_half_requests_do_not_kill_the_server(api):
    for junk in [b"\x00\x01\x02\xff" * 100, b"GET / HTTP/9.9\r\n\r\n",
                 b"PUT /vm HTTP/1.1\r\nContent-Length: 5\r\n\r\n{",
                 b"GET " + b"/a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"GET / HTTP/1.1\r\n" + b"X-Junk: " + b"y" * 100000 + b"\r\n\r\n"]:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(api)
        try:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            s.recv(4096)
        except OSError:
            pass  # the server may cut off a peer that sends nonsense
        s.close()
    assert request(api, "GET", "/")[0] == 200


def test_concurrent_clients(api):
    socks = []
    for _ in range(8):  # idle connections must not block others
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(api)
        socks.append(s)
    start = time.monotonic()
    assert request(api, "GET", "/")[0] == 200
    assert time.monotonic() - start < 5
    for s in socks:
        s.close()


def test_socket_is_private(api):
    assert os.stat(api).st_mode & 0o777 == 0o600


# --- the vireo client verbs against the same server ---

def verb(vireo, *args):
    return run([vireo, *args], timeout=30)


def test_client_info(vireo, api):
    r = verb(vireo, "info", "--api-socket", api)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "state:       Not started" in out and "app_name:    vireo" in out
    r = verb(vireo, "info", "--api-socket", api, "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["state"] == "Not started"


def test_client_pause_resume_snapshot_restore(vireo, api, tmp_path):
    r = verb(vireo, "pause", "--api-socket", api)
    assert r.returncode == 1
    assert b"pausing needs a running instance (HTTP 400)" in r.stderr
    ok(api, "PUT", "/boot-source", {"kernel_image_path": "/k"})
    ok(api, "PUT", "/actions", {"action_type": "InstanceStart"})
    assert verb(vireo, "pause", "-S", api).returncode == 0
    assert json.loads(verb(vireo, "info", "-S", api, "--json").stdout)["state"] == "Paused"
    r = verb(vireo, "snapshot", "-S", api, "--snapshot", str(tmp_path / "s"),
             "--mem", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    r = verb(vireo, "snapshot", "-S", api, "-s", "/s", "-m", "/m", "--diff")
    assert r.returncode == 1 and b"track_dirty_pages" in r.stderr
    assert verb(vireo, "resume", "-S", api).returncode == 0
    assert json.loads(verb(vireo, "info", "-S", api, "--json").stdout)["state"] == "Running"
    r = verb(vireo, "restore", "-S", api, "-s", "/s", "-m", "/m", "--json")
    assert r.returncode == 1
    assert "fresh instance" in json.loads(r.stdout)["fault_message"]


def test_client_restore_fresh(vireo, api):
    r = verb(vireo, "restore", "-S", api, "--snapshot", "/s", "--mem", "/m", "--resume")
    assert r.returncode == 0, r.stderr
    assert json.loads(verb(vireo, "info", "-S", api, "--json").stdout)["state"] == "Running"


def test_client_errors(vireo, tmp_path):
    missing = str(tmp_path / "none.sock")
    r = verb(vireo, "pause", "--api-socket", missing)
    assert r.returncode == 3 and b"no API socket at" in r.stderr
    r = verb(vireo, "info", "--api-socket", str(tmp_path))
    assert r.returncode == 3 and b"is not a socket" in r.stderr
    # a socket file nobody listens on
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(tmp_path / "dead.sock"))
    s.close()
    r = verb(vireo, "info", "--api-socket", str(tmp_path / "dead.sock"))
    assert r.returncode == 3 and b"cannot talk to" in r.stderr
    for args in (["pause"], ["pause", "-S", missing, "--diff"], ["snapshot", "-S", missing],
                 ["restore", "-S", missing, "-s", "x"], ["info", "-S", missing, "extra"],
                 ["resume", "--api-socket"]):
        r = verb(vireo, *args)
        assert r.returncode == 2, args
        assert b"--help" in r.stderr


@pytest.mark.parametrize("name", ["pause", "resume", "info", "snapshot", "restore"])
def test_client_help(vireo, name):
    r = verb(vireo, name, "--help")
    assert r.returncode == 0
    assert f"usage: vireo {name} --api-socket PATH".encode() in r.stdout
    assert verb(vireo, "help", name).stdout == r.stdout

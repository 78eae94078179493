# SPDX-License-Identifier: Apache-2.0
"""The control API against the real VMM (`vireo run --api-socket`): a VM
configured and booted only through the API, the VMM's refusals passed on as
400s, the client verbs, and GET /vm/config fed back through --config. The
snapshot flows are in test_snapshot.py."""
import json
import os
import secrets
import shutil
import subprocess
import sys

import pytest

from conftest import run, tap_fd_launcher
from vmapi import VM, api

EVERY = str(1 << 21)


def unconfigured_vm(vireo, sock):
    return VM([vireo, "run", "--api-socket", str(sock)], sock=str(sock))


def fault(sock, method, path, body, needle):
    status, parsed = api(sock, method, path, body)
    assert status == 400, parsed
    assert list(parsed) == ["fault_message"] and needle in parsed["fault_message"], parsed


@pytest.mark.kvm
def test_configure_and_boot_through_the_api(vireo, guests, kvm, tmp_path):
    sock = str(tmp_path / "api.sock")
    vm = unconfigured_vm(vireo, sock)
    try:
        status, info = api(sock, "GET", "/")
        assert status == 200
        assert set(info) == {"id", "state", "vmm_version", "app_name"}
        assert info["state"] == "Not started" and info["app_name"] == "vireo"
        status, mc = api(sock, "GET", "/machine-config")
        assert status == 200 and mc["vcpu_count"] >= 1 and mc["mem_size_mib"] > 0

        # refusals: by the API layer, then by the VMM's state machine
        fault(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64, "x": 1},
              "unknown field 'x'")
        fault(sock, "PUT", "/machine-config", {"vcpu_count": "1", "mem_size_mib": 64},
              "must be an integer")
        fault(sock, "PUT", "/actions", {"action_type": "InstanceStart"}, "boot")
        assert api(sock, "GET", "/machine-config")[1] == mc

        assert api(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})[0] == 204
        assert api(sock, "PUT", "/boot-source", {
            "kernel_image_path": str(guests / "counter.elf"),
            "boot_args": f"pattern_mib=4 every={EVERY}"})[0] == 204
        status, cfg = api(sock, "GET", "/vm/config")
        assert status == 200
        assert cfg["machine-config"]["mem_size_mib"] == 64
        assert cfg["boot-source"]["kernel_image_path"] == str(guests / "counter.elf")

        assert api(sock, "PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        vm.wait_count(2)
        assert api(sock, "GET", "/")[1]["state"] == "Running"
        fault(sock, "PUT", "/actions", {"action_type": "InstanceStart"}, "")
        fault(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64}, "")
        fault(sock, "PUT", "/boot-source", {"kernel_image_path": "/k"}, "")

        status, stats = api(sock, "GET", "/vireo/stats")
        assert status == 200
        assert stats["guest_memory_bytes"] == 64 << 20 and stats["vcpu_exits"] > 0

        # the client verbs on the same VM
        r = run([vireo, "pause", "--api-socket", sock])
        assert r.returncode == 0, r.stderr
        r = run([vireo, "info", "--api-socket", sock, "--json"])
        assert json.loads(r.stdout)["state"] == "Paused"
        r = run([vireo, "restore", "--api-socket", sock, "-s", "/no/state", "-m", "/no/mem"])
        assert r.returncode == 1 and b"(HTTP 400)" in r.stderr, r.stderr
        r = run([vireo, "resume", "--api-socket", sock])
        assert r.returncode == 0, r.stderr
        r = run([vireo, "info", "--api-socket", sock])
        assert r.returncode == 0 and b"state:       Running" in r.stdout
    finally:
        vm.kill()


@pytest.mark.kvm
def test_vm_config_boots_again_through_config_file(vireo, guests, kvm, tmp_path):
    sock = str(tmp_path / "a.sock")
    vm = unconfigured_vm(vireo, sock)
    try:
        assert api(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 48})[0] == 204
        assert api(sock, "PUT", "/boot-source", {
            "kernel_image_path": str(guests / "counter.elf"),
            "boot_args": f"pattern_mib=4 every={EVERY}"})[0] == 204
        status, cfg = api(sock, "GET", "/vm/config")
        assert status == 200
    finally:
        vm.kill()
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(cfg))
    sock2 = str(tmp_path / "b.sock")
    vm2 = VM([vireo, "run", "--config", str(path), "--api-socket", sock2], sock=sock2)
    try:
        vm2.wait_count(2)
        assert api(sock2, "GET", "/")[1]["state"] == "Running"
        assert api(sock2, "GET", "/vm/config")[1] == cfg
    finally:
        vm2.kill()


def test_bad_config_file_is_refused(vireo, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "smt": "no"}}')
    r = run([vireo, "run", "--config", str(path)])
    assert r.returncode == 2, r.stderr
    assert b"'smt' must be a boolean" in r.stderr and str(path).encode() in r.stderr
    path.write_text('{"boot-source": {"kernel_image_path": "/k"}, "loggers": null}')
    r = run([vireo, "run", "--config", str(path)])
    assert r.returncode == 2 and b"unknown field 'loggers'" in r.stderr


def test_drives_and_interfaces_are_configured_through_the_api(vireo, tmp_path):
    """PUT /drives, /network-interfaces and /vsock before boot (no KVM needed): the
    root drive comes first whatever order the drives were put in, a PUT to
    an existing id replaces it, and what cannot work is refused with 400."""
    sock = str(tmp_path / "api.sock")
    disks = []
    for i in range(9):
        d = tmp_path / f"d{i}.raw"
        d.write_bytes(bytes(4096))
        disks.append(str(d))
    vm = unconfigured_vm(vireo, sock)

    def drive(i, root=False, ro=False, path=None):
        return {"drive_id": f"d{i}", "path_on_host": path or disks[i], "is_root_device": root,
                "is_read_only": ro}
    try:
        assert api(sock, "PUT", "/drives/d0", drive(0, ro=True))[0] == 204
        assert api(sock, "PUT", "/drives/d1", drive(1, root=True))[0] == 204
        fault(sock, "PUT", "/drives/d2", drive(2, root=True), "d1 is already the root device")
        fault(sock, "PUT", "/drives/d2", drive(2, path="/no/such/disk"), "/no/such/disk")
        fault(sock, "PUT", "/drives/d2", drive(2) | {"drive_id": "d3"}, "")
        fault(sock, "PUT", "/drives/" + "x" * 21, drive(2) | {"drive_id": "x" * 21}, "drive_id")
        # replacing d1 (no longer root) then making d0 the root
        assert api(sock, "PUT", "/drives/d1", drive(1))[0] == 204
        assert api(sock, "PUT", "/drives/d0", drive(0, root=True, ro=True))[0] == 204
        for i in range(2, 8):
            assert api(sock, "PUT", f"/drives/d{i}", drive(i))[0] == 204
        fault(sock, "PUT", "/drives/d8", drive(8), "at most 8 drives")

        fault(sock, "PUT", "/network-interfaces/eth0",
              {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "01:00:5e:00:00:01"},
              "unicast")
        fault(sock, "PUT", "/network-interfaces/eth0",
              {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "52:54:00:12:34"},
              "guest_mac")
        fault(sock, "PUT", "/network-interfaces/eth0",
              {"iface_id": "eth0", "host_dev_name": "a-tap-name-too-long"}, "tap name")
        assert api(sock, "PUT", "/network-interfaces/eth0",
                   {"iface_id": "eth0", "host_dev_name": "tap0",
                    "guest_mac": "52:54:00:12:34:56"})[0] == 204
        fault(sock, "PUT", "/network-interfaces/eth1",
              {"iface_id": "eth1", "host_dev_name": "tap0"}, "tap tap0 is already used by interface eth0")

        fault(sock, "PUT", "/vsock", {"guest_cid": 2, "uds_path": str(tmp_path / "v.sock")},
              "guest_cid 2")
        fault(sock, "PUT", "/vsock", {"guest_cid": 3, "uds_path": "/" + "v" * 95}, "uds_path")
        fault(sock, "PUT", "/vsock", {"guest_cid": 3}, "uds_path")
        assert api(sock, "PUT", "/vsock", {"guest_cid": 3, "uds_path": "/tmp/x.sock"})[0] == 204
        # a second PUT replaces the device
        assert api(sock, "PUT", "/vsock", {"vsock_id": "v", "guest_cid": 42,
                                           "uds_path": str(tmp_path / "v.sock")})[0] == 204
        assert api(sock, "PUT", "/boot-source", {"kernel_image_path": disks[8],
                                                 "boot_args": "console=ttyS0"})[0] == 204
        status, cfg = api(sock, "GET", "/vm/config")
        assert status == 200
        assert [(d["drive_id"], d["is_root_device"], d["is_read_only"]) for d in cfg["drives"]] == \
            [("d0", True, True)] + [(f"d{i}", False, False) for i in range(1, 8)], cfg["drives"]
        assert [d["path_on_host"] for d in cfg["drives"]] == disks[:8]
        assert cfg["network-interfaces"] == [
            {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "52:54:00:12:34:56"}]
        assert cfg["vsock"] == {"guest_cid": 42, "uds_path": str(tmp_path / "v.sock")}
        assert "entropy" not in cfg
        fault(sock, "PUT", "/entropy", {"rate_limiter": {"ops": {"size": 1, "refill_time": 10}}},
              "'rate_limiter' is not supported by vireo")
        assert api(sock, "PUT", "/entropy", {})[0] == 204
        assert api(sock, "GET", "/vm/config")[1]["entropy"] == {}
        # the arguments as the client gave them (root= is added at boot)
        assert cfg["boot-source"]["boot_args"] == "console=ttyS0"
    finally:
        vm.kill()


def test_devices_on_the_command_line_keep_their_place(vireo, tmp_path):
    """A --disk from the command line is the first disk: the API may add
    drives after it but not a second root device."""
    sock = str(tmp_path / "api.sock")
    d0, d1 = tmp_path / "cli.raw", tmp_path / "api.raw"
    for d in (d0, d1):
        d.write_bytes(bytes(4096))
    vm = VM([vireo, "run", "--api-socket", sock, "--disk", f"{d0},format=raw",
             "--net", "tap=vt0,mac=52:54:00:00:00:01", "--rng"], sock=sock)
    try:
        fault(sock, "PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(d1),
                                               "is_root_device": True, "is_read_only": False},
              "cannot be the root device")
        assert api(sock, "PUT", "/drives/data", {"drive_id": "data", "path_on_host": str(d1),
                                                  "is_root_device": False,
                                                  "is_read_only": False})[0] == 204
        status, cfg = api(sock, "GET", "/vm/config")
        assert [d["path_on_host"] for d in cfg["drives"]] == [str(d0), str(d1)], cfg
        assert cfg["drives"][1]["drive_id"] == "data"
        assert cfg["network-interfaces"] == [
            {"iface_id": "net0", "host_dev_name": "vt0", "guest_mac": "52:54:00:00:00:01"}]
        assert "vsock" not in cfg
        assert cfg["entropy"] == {}
    finally:
        vm.kill()




def test_vm_config_names_a_tap_fd(vireo, tmp_path):
    """--net fd=N: GET /vm/config gives the tap's interface name, so the
    config it returns opens the same tap again."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("SKIPPED: a tap in a network namespace needs root and iproute2")
    ns = f"vireo-t-{os.getpid()}-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    sock = str(tmp_path / "api.sock")
    try:
        vm = VM(["ip", "netns", "exec", ns, sys.executable, "-c", tap_fd_launcher("vtfd0"), vireo, "run",
                 "--api-socket", sock, "--net", "fd=@FD@,mac=52:54:00:00:00:07"], sock=sock)
        try:
            status, cfg = api(sock, "GET", "/vm/config")
            assert status == 200, cfg
            assert cfg["network-interfaces"] == [
                {"iface_id": "net0", "host_dev_name": "vtfd0", "guest_mac": "52:54:00:00:00:07"}]
        finally:
            vm.kill()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Snapshot benchmark, vireo against QEMU in one run, alternating, medians.

For 256 MiB, 1 GiB and 4 GiB guests with ~80% of memory touched (the
counter guest fills a pattern; 2.9 GiB of the 4 GiB guest, all of low RAM): pause -> snapshot complete, and restore ->
running. vireo: PATCH /vm Paused + PUT /snapshot/create (Full), then a new
process and PUT /snapshot/load with resume_vm. QEMU (microvm, same guest):
QMP stop + migrate to a file ("exec:cat > f"), then a new process with
-incoming "exec:cat f" and cont. Restore is timed from process start to
running for both, and for vireo also as the API call alone. Then clones per
second: N restores of one vireo snapshot started at once.

usage: bench/snapshot.py [--runs N] [--sizes 256,1024,4096] [--clones N]
"""
import argparse
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from vmapi import VM, api, wait_socket  # noqa: E402

EVERY = 1 << 21
QEMU = ["qemu-system-x86_64", "-M", "microvm,x-option-roms=off,pit=off,pic=off,rtc=off",
        "-nodefaults", "-no-user-config", "-display", "none", "-enable-kvm", "-smp", "1",
        "-serial", "stdio"]


def cmdline(mib):
    # 80% of memory, but within low RAM: the pattern starts at 32 MiB and
    # must end below the PCI hole at 3 GiB (stores there are MMIO exits)
    return f"pattern_mib={min(mib * 8 // 10, 2900)} every={EVERY}"


class QMP:
    def __init__(self, path, proc):
        wait_socket(path, proc, 30)
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                return r


def fresh(*paths):
    """Sockets of killed runs stay behind; a new run must not find them."""
    for p in paths:
        if os.path.exists(p):
            os.unlink(p)


def vireo_once(vireo, guests, mib, d):
    sock, state, mem = f"{d}/v.sock", f"{d}/v.state", f"{d}/v.mem"
    fresh(sock, f"{d}/v2.sock")
    vm = VM([vireo, "run", "--kernel", f"{guests}/counter.elf", "--memory", f"{mib}M",
             "--cmdline", cmdline(mib), "--api-socket", sock], sock=sock)
    try:
        vm.wait_count(1, timeout=300)
        t0 = time.perf_counter()
        assert api(sock, "PATCH", "/vm", {"state": "Paused"})[0] == 204
        st, body = api(sock, "PUT", "/snapshot/create", {"snapshot_type": "Full",
                                                         "snapshot_path": state, "mem_file_path": mem})
        snap = time.perf_counter() - t0
        assert st == 204, body
    finally:
        vm.kill()
    sock2 = f"{d}/v2.sock"
    t0 = time.perf_counter()
    vm2 = VM([vireo, "run", "--api-socket", sock2], sock=sock2)
    try:
        t1 = time.perf_counter()
        st, body = api(sock2, "PUT", "/snapshot/load", {"snapshot_path": state, "mem_backend": {
            "backend_type": "File", "backend_path": mem}, "resume_vm": True})
        t2 = time.perf_counter()
        assert st == 204, body
    finally:
        vm2.kill()
    os.unlink(mem)
    return {"snapshot_ms": snap * 1e3, "restore_api_ms": (t2 - t1) * 1e3, "restore_ms": (t2 - t0) * 1e3}


def qemu_once(guests, mib, d):
    qmp, img = f"{d}/q.qmp", f"{d}/q.mig"
    fresh(qmp)
    args = QEMU + ["-m", f"{mib}M", "-kernel", f"{guests}/counter.elf", "-append", cmdline(mib)]
    vm = VM(args + ["-qmp", f"unix:{qmp},server=on,wait=off"])
    try:
        vm.wait_count(1, timeout=300)
        q = QMP(qmp, vm.proc)
        t0 = time.perf_counter()
        q.cmd("stop")
        q.cmd("migrate", uri=f"exec:cat > {img}")
        while q.cmd("query-migrate")["return"].get("status") not in ("completed", "failed"):
            time.sleep(0.002)
        snap = time.perf_counter() - t0
    finally:
        vm.kill()
    os.unlink(qmp)
    t0 = time.perf_counter()
    vm2 = VM(args + ["-qmp", f"unix:{qmp},server=on,wait=off", "-incoming", f"exec:cat {img}"])
    try:
        q = QMP(qmp, vm2.proc)
        while q.cmd("query-migrate")["return"].get("status") != "completed":
            time.sleep(0.002)
        q.cmd("cont")
        while q.cmd("query-status")["return"]["status"] != "running":
            time.sleep(0.001)
        restore = time.perf_counter() - t0
    finally:
        vm2.kill()
    os.unlink(img)
    return {"snapshot_ms": snap * 1e3, "restore_ms": restore * 1e3}


def clones_per_second(vireo, guests, n, d):
    """N restores of one snapshot started together; done when every clone has
    printed a count after the one it was paused at (so its guest runs)."""
    sock, state, mem = f"{d}/c.sock", f"{d}/c.state", f"{d}/c.mem"
    fresh(sock)
    vm = VM([vireo, "run", "--kernel", f"{guests}/counter.elf", "--memory", "256M",
             "--cmdline", f"pattern_mib=4 every={EVERY}", "--api-socket", sock], sock=sock)
    try:
        vm.wait_count(1, timeout=60)
        api(sock, "PATCH", "/vm", {"state": "Paused"})
        api(sock, "PUT", "/snapshot/create", {"snapshot_path": state, "mem_file_path": mem})
        vm.read_for(0.2)
        last = vm.counts()[-1][0]
    finally:
        vm.kill()
    t0 = time.perf_counter()
    clones = [VM([vireo, "run", "--restore", state, "--restore-mem", mem]) for _ in range(n)]
    try:
        pending = set(range(n))
        while pending and time.perf_counter() - t0 < 60:
            fds = {clones[i].proc.stdout.fileno(): i for i in pending}
            ready, _, _ = select.select(list(fds), [], [], 1)
            for fd in ready:
                c = clones[fds[fd]]
                c.buf += os.read(fd, 65536)
                if c.counts() and c.counts()[-1][0] > last:
                    pending.discard(fds[fd])
        elapsed = time.perf_counter() - t0
        assert not pending, f"{len(pending)} clones did not run"
    finally:
        for c in clones:
            c.kill()
    return n / elapsed


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="256,1024,4096")
    ap.add_argument("--clones", type=int, default=10)
    ap.add_argument("--vireo", default=os.path.join(ROOT, "build", "vireo"))
    ap.add_argument("--guests", default=os.path.join(ROOT, "build", "guests"))
    a = ap.parse_args()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIPPED: /dev/kvm not accessible")
        return 0
    print(f"snapshot/restore, counter guest with 80% of memory touched, median of {a.runs}")
    print(f"{'guest':>7} {'vireo snap':>11} {'qemu snap':>10} {'ratio':>6}   "
          f"{'vireo restore':>13} {'(API call)':>10} {'qemu restore':>12} {'ratio':>6}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR", "/var/tmp")) as d:
        for mib in (int(x) for x in a.sizes.split(",")):
            v, q = [], []
            for _ in range(a.runs):
                v.append(vireo_once(a.vireo, a.guests, mib, d))
                q.append(qemu_once(a.guests, mib, d))
            vs, qs = median(v, "snapshot_ms"), median(q, "snapshot_ms")
            vr, qr = median(v, "restore_ms"), median(q, "restore_ms")
            print(f"{mib:>5}M {vs:>9.1f}ms {qs:>8.1f}ms {qs / vs:>5.2f}x   {vr:>11.1f}ms "
                  f"{median(v, 'restore_api_ms'):>8.2f}ms {qr:>10.1f}ms {qr / vr:>5.2f}x")
        print(f"\nclones: {clones_per_second(a.vireo, a.guests, a.clones, d):.1f} clones/s "
              f"({a.clones} restores of one 256 MiB snapshot started together, until each runs)")
    print("(ratio = QEMU time / vireo time: above 1 means vireo is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

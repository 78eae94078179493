# SPDX-License-Identifier: Apache-2.0
"""Kill a writer at random moments: the image must never be corrupt (leaks
are allowed and repaired by check -r), and every write acknowledged before a
flush must read back."""
import json
import os
import random
import signal
import subprocess
import time

import pytest

from test_img_qcow2 import sh


def offsets(start, step, size, bufsize, n):
    off = start
    for _ in range(n):
        yield off
        off += step
        if off + bufsize > size:
            off %= size
        if off + bufsize > size:
            off = 0


@pytest.mark.parametrize("seed", range(6))
def test_kill_during_writes(vireo, tmp_path, seed):
    rnd = random.Random(seed)
    img = tmp_path / "c.qcow2"
    size = 256 << 20
    cs = rnd.choice([512, 4096, 65536])
    sh(vireo, "img", "create", "-f", "qcow2", "-o", f"cluster_size={cs}", img, str(size))
    step = rnd.choice([4096 * 1234567 % size, 12345 * 512, 65536 * 3 + 4096])
    bufsize = rnd.choice([4096, 65536])
    count = 200000
    p = subprocess.Popen([vireo, "img", "bench", "-w", "-c", str(count), "-d",
                          str(rnd.choice([1, 8, 32])), "-s", str(bufsize), "-S", str(step),
                          "--pattern=171", "--flush-interval=" + str(rnd.choice([7, 50, 300])),
                          "--log-flushes", str(img)], stdout=subprocess.PIPE)
    time.sleep(rnd.uniform(0.1, 0.8))
    p.send_signal(signal.SIGKILL)
    out, _ = p.communicate(timeout=30)
    durable = 0
    for line in out.decode().splitlines():
        if line.startswith("flushed "):
            durable = int(line.split()[1])
    q = sh("qemu-img", "check", "--output=json", img, ok=False)
    assert q.returncode in (0, 3), q.stdout.decode() + q.stderr.decode()
    assert json.loads(q.stdout).get("corruptions", 0) == 0
    print(f"durable={durable} leaks={json.loads(q.stdout).get('leaks', 0)}")
    v = sh(vireo, "img", "check", img, ok=False)
    assert v.returncode in (0, 3), v.stdout.decode() + v.stderr.decode()
    raw = tmp_path / "out.raw"
    sh("qemu-img", "convert", "-O", "raw", img, raw)
    with open(raw, "rb") as f:
        for off in offsets(0, step, size, bufsize, durable):
            f.seek(off)
            assert f.read(bufsize) == b"\xab" * bufsize, f"lost write at {off}"
    sh(vireo, "img", "check", "-r", "all", img, ok=False)
    assert sh(vireo, "img", "check", img, ok=False).returncode == 0
    q = sh("qemu-img", "check", img, ok=False)
    assert q.returncode == 0, q.stdout.decode()

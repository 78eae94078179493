#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Boot benchmark: process start to exit of a guest that only asks to stop,
vireo against QEMU (microvm, and pc with qboot), side by side, alternating,
median of N runs. Reports CPU time (user+sys), wall time and peak RSS, and
peak RSS with 128 MiB vs 4 GiB of guest RAM configured.

usage: bench/boot.py [--runs N] [--vireo PATH] [--guests DIR]
"""
import argparse
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU = "qemu-system-x86_64"
QEMU_COMMON = ["-nodefaults", "-no-user-config", "-display", "none", "-serial", "null",
               "-enable-kvm", "-smp", "1",
               "-device", "isa-debug-exit,iobase=0x501,iosize=1"]


def configs(vireo, guests, mem):
    return {
        "vireo": ([vireo, "run", "--kernel", f"{guests}/stop.bzImage", "--memory", mem], {0}),
        "qemu-microvm": ([QEMU, "-M", "microvm,x-option-roms=off,pit=off,pic=off,rtc=off",
                          "-m", mem, "-kernel", f"{guests}/stop.elf"] + QEMU_COMMON, {0, 1}),
        "qemu-pc-qboot": ([QEMU, "-M", "pc", "-bios", "/usr/share/qemu/qboot.rom",
                           "-m", mem, "-kernel", f"{guests}/stop.bzImage"] + QEMU_COMMON, {0, 1}),
    }


MEASURE = "/tmp/vireo-bench-measure"


def build_measure():
    subprocess.run(["gcc", "-O2", "-static", "-o", MEASURE,
                    os.path.join(ROOT, "bench", "measure.c")], check=True)


def measure(cmd, ok_codes):
    r = subprocess.run([MEASURE] + cmd, stdin=subprocess.DEVNULL, capture_output=True)
    wall, cpu, rss, code = r.stdout.split()
    if int(code) not in ok_codes:
        raise RuntimeError(f"{cmd[0]} exited {code.decode()}: {r.stderr.decode().strip()[:500]}")
    return {"cpu_ms": float(cpu), "wall_ms": float(wall), "rss_mib": int(rss) / 1024}


def run_alternating(cfgs, runs):
    samples = {name: [] for name in cfgs}
    for _ in range(runs):
        for name, (cmd, ok) in cfgs.items():
            samples[name].append(measure(cmd, ok))
    return {name: {k: statistics.median(s[k] for s in lst) for k in lst[0]}
            for name, lst in samples.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--vireo", default=os.path.join(ROOT, "build", "vireo"))
    ap.add_argument("--guests", default=os.path.join(ROOT, "build", "guests"))
    a = ap.parse_args()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIPPED: /dev/kvm not accessible")
        return 0

    build_measure()
    print(f"boot to exit, stop guest, 1 vCPU, median of {a.runs} alternating runs")
    res = run_alternating(configs(a.vireo, a.guests, "128M"), a.runs)
    base = res["qemu-microvm"]
    print(f"{'128 MiB':16} {'CPU ms':>9} {'wall ms':>9} {'peak RSS MiB':>13}   ratio to qemu-microvm (CPU, wall, RSS)")
    for name, m in res.items():
        print(f"{name:16} {m['cpu_ms']:9.2f} {m['wall_ms']:9.2f} {m['rss_mib']:13.2f}   "
              f"{m['cpu_ms'] / base['cpu_ms']:.3f}x {m['wall_ms'] / base['wall_ms']:.3f}x "
              f"{m['rss_mib'] / base['rss_mib']:.3f}x")

    print("\npeak RSS by configured memory (MiB)")
    big = run_alternating({k: v for k, v in configs(a.vireo, a.guests, "4G").items()
                           if k != "qemu-pc-qboot"}, a.runs)
    for name in big:
        print(f"{name:16} 128M: {res[name]['rss_mib']:7.2f}   4G: {big[name]['rss_mib']:7.2f}   "
              f"wall 4G: {big[name]['wall_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

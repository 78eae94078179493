# SPDX-License-Identifier: Apache-2.0
"""vireo's vhost-user virtio-rng, read by Linux's virtio-rng driver through
/dev/hwrng in a QEMU TCG guest: the bytes differ between reads and do not
compress (gzip keeps them within a few percent of their size)."""
from test_vhost_user_lib import Backend, build_initramfs, qemu_boot

INIT = r"""
echo "CURRENT $(cat /sys/class/misc/hw_random/rng_current)"
dd if=/dev/hwrng of=/tmp/a bs=4096 count=64 2>/dev/null
dd if=/dev/hwrng of=/tmp/b bs=4096 count=64 2>/dev/null
echo "SIZE $(wc -c < /tmp/a)"
echo "GZ $(gzip -c /tmp/a | wc -c)"
md5sum /tmp/a /tmp/b | sed 's/^/MD5 /'
echo DONE
"""


def test_linux_reads_hwrng(vireo, tmp_path):
    kernel, initrd = build_initramfs(tmp_path, INIT, ["virtio_pci", "virtio-rng"])
    sock = str(tmp_path / "rng.sock")
    be = Backend([vireo, "vhost-user", "rng", "--socket", sock, "-v"], sock,
                 tmp_path / "backend.log")
    try:
        out = qemu_boot(kernel, initrd, ["-chardev", f"socket,id=r0,path={sock}",
                                         "-device", "vhost-user-rng-pci,chardev=r0"])
    finally:
        rc = be.stop()
    assert "CURRENT virtio_rng" in out, out + be.output()
    assert "SIZE 262144" in out, out
    gz = int(out.split("GZ ")[1].split()[0])
    assert gz > 262144 * 0.99, out
    sums = [l.split()[1] for l in out.splitlines() if l.startswith("MD5 ")]
    assert len(sums) == 2 and sums[0] != sums[1], out
    assert rc == 0, be.output()

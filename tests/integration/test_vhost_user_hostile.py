# SPDX-License-Identifier: Apache-2.0
"""A front end that misbehaves within the vhost-user protocol, played by
this file against `vireo vhost-user rng`: the back end must keep its fds,
its protocol state and its responsiveness (SIGTERM included), and a device
that failed must come back when the front end restarts its rings. No guest
runs: the rings live in a memfd this file maps and fills."""
import array
import mmap
import os
import socket
import struct
import time

import pytest

from test_vhost_user_lib import Backend

MEM = 1 << 20
UADDR = 0x7F0000000000                 # the front end's address of guest memory
NUM = 8                                # ring size
DESC, AVAIL, USED = 0x0, 0x1000, 0x2000

GET_FEATURES, SET_FEATURES, SET_MEM_TABLE = 1, 2, 5
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE = 8, 9, 10, 11
SET_VRING_KICK, SET_VRING_CALL = 12, 13
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, RESET_DEVICE = 15, 16, 34
NEED_REPLY = 8
NOFD = 1 << 8
F_VERSION_1 = 1 << 32
PF_REPLY_ACK, PF_RESET_DEVICE = 1 << 3, 1 << 13


class FrontEnd:
    def __init__(self, sock):
        # The back end's socket file appears only once it listens: a
        # refused connect here is a bug (core/unix_sock.c), not a race.
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(sock)

    def send(self, req, payload=b"", fds=(), flags=1):
        hdr = struct.pack("<III", req, flags, len(payload))
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        self.s.sendmsg([hdr + payload], anc)

    def recv(self):
        req, flags, size = struct.unpack("<III", self.s.recv(12, socket.MSG_WAITALL))
        return req, self.s.recv(size, socket.MSG_WAITALL) if size else b""

    def u64(self, req):
        self.send(req)
        r, payload = self.recv()
        assert r == req and len(payload) == 8
        return struct.unpack("<Q", payload)[0]

    def ring(self, call_fd, keep=None):
        """Guest memory and ring 0 set up (not started: no kick yet); with
        a list as `keep`, the memory's fd is appended to it, not closed."""
        mfd = os.memfd_create("guest")
        os.ftruncate(mfd, MEM)
        m = mmap.mmap(mfd, MEM)
        self.send(SET_FEATURES, struct.pack("<Q", F_VERSION_1))
        self.send(SET_MEM_TABLE, struct.pack("<II", 1, 0) +
                  struct.pack("<QQQQ", 0, MEM, UADDR, 0), fds=[mfd])
        if keep is None:
            os.close(mfd)
        else:
            keep.append(mfd)
        self.send(SET_VRING_NUM, struct.pack("<II", 0, NUM))
        self.send(SET_VRING_BASE, struct.pack("<II", 0, 0))
        self.send(SET_VRING_ADDR, struct.pack("<IIQQQQ", 0, 0, UADDR + DESC, UADDR + USED,
                                              UADDR + AVAIL, 0))
        self.send(SET_VRING_CALL, struct.pack("<Q", 0), fds=[call_fd])
        return m

    def start(self):
        kick = os.eventfd(0, os.EFD_NONBLOCK)
        self.send(SET_VRING_KICK, struct.pack("<Q", 0), fds=[kick])
        return kick

    def close(self):
        self.s.close()


def offer(m, head, length=64):
    """Descriptor `head`: a device-writable buffer, made available."""
    struct.pack_into("<QIHH", m, DESC + 16 * head, 0x10000 + head * 0x100, length, 2, 0)
    idx = struct.unpack_from("<H", m, AVAIL + 2)[0]
    struct.pack_into("<H", m, AVAIL + 4 + 2 * (idx % NUM), head)
    struct.pack_into("<H", m, AVAIL + 2, (idx + 1) & 0xFFFF)


def used_idx(m):
    return struct.unpack_from("<H", m, USED + 2)[0]


def wait_used(m, want, timeout=5):
    end = time.monotonic() + timeout
    while used_idx(m) != want and time.monotonic() < end:
        time.sleep(0.01)
    return used_idx(m)


@pytest.fixture
def rng(vireo, tmp_path):
    sock = str(tmp_path / "rng.sock")
    be = Backend([vireo, "vhost-user", "rng", "--socket", sock, "-v", "-v"], sock,
                 tmp_path / "backend.log")
    yield be, sock
    be.stop()


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def stops_on_sigterm(be):
    be.proc.terminate()
    try:
        be.proc.wait(timeout=5)
    except Exception:
        be.proc.kill()
        be.proc.wait()
        return False
    return True


def test_fds_sent_with_nofd_are_closed(rng):
    """SET_VRING_CALL says "no fd" yet carries one, fifty times: the back
    end must not keep them (it ran out of fds before)."""
    be, sock = rng
    fe = FrontEnd(sock)
    fe.u64(GET_FEATURES)
    before = open_fds(be.proc.pid)
    for _ in range(50):
        fd = os.eventfd(0)
        fe.send(SET_VRING_CALL, struct.pack("<Q", NOFD), fds=[fd])
        os.close(fd)
    fe.u64(GET_FEATURES)                    # every message above was handled
    assert open_fds(be.proc.pid) <= before + 2, be.output()
    fe.close()


def test_reset_device_keeps_the_protocol_features(rng):
    """Protocol features are negotiated once per connection: after
    RESET_DEVICE a NEED_REPLY message must still be acknowledged."""
    be, sock = rng
    fe = FrontEnd(sock)
    offered = fe.u64(GET_PROTOCOL_FEATURES)
    assert offered & PF_REPLY_ACK
    fe.send(SET_PROTOCOL_FEATURES, struct.pack("<Q", offered & (PF_REPLY_ACK | PF_RESET_DEVICE)))
    for _ in range(2):
        fe.send(SET_FEATURES, struct.pack("<Q", F_VERSION_1), flags=1 | NEED_REPLY)
        req, payload = fe.recv()
        assert req == SET_FEATURES and struct.unpack("<Q", payload)[0] == 0
        fe.send(RESET_DEVICE)
    fe.close()
    assert be.alive(), be.output()


def test_a_full_call_eventfd_does_not_hang_the_back_end(rng):
    """The front end hands over a blocking eventfd whose counter is at its
    maximum: signalling it must not block the back end, which still answers
    GET_VRING_BASE and stops on SIGTERM."""
    be, sock = rng
    fe = FrontEnd(sock)
    fe.u64(GET_FEATURES)
    call = os.eventfd(0)
    os.eventfd_write(call, 0xFFFFFFFFFFFFFFFE)
    m = fe.ring(call)
    offer(m, 0)
    fe.start()
    assert wait_used(m, 1) == 1, be.output()
    fe.send(GET_VRING_BASE, struct.pack("<II", 0, 0))
    req, payload = fe.recv()
    assert req == GET_VRING_BASE and struct.unpack("<II", payload) == (0, 1)
    assert stops_on_sigterm(be), "SIGTERM did not stop the back end"


def test_a_ring_restarted_after_a_failure_works_again(rng):
    """A malformed ring puts the device in needs-reset; when the front end
    stops the ring and starts it again on good descriptors (what QEMU does
    after the guest driver reset the device), requests are served again."""
    be, sock = rng
    fe = FrontEnd(sock)
    fe.u64(GET_FEATURES)
    call = os.eventfd(0, os.EFD_NONBLOCK)
    m = fe.ring(call)
    struct.pack_into("<H", m, AVAIL + 4, 200)      # a head outside the ring
    struct.pack_into("<H", m, AVAIL + 2, 1)
    fe.start()
    deadline = time.monotonic() + 5
    while "needs reset" not in be.output() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "needs reset" in be.output(), be.output()
    fe.send(GET_VRING_BASE, struct.pack("<II", 0, 0))
    fe.recv()
    m[0:0x3000] = bytes(0x3000)
    fe.send(SET_VRING_BASE, struct.pack("<II", 0, 0))
    offer(m, 0)
    kick = fe.start()
    os.eventfd_write(kick, 1)
    assert wait_used(m, 1) == 1, be.output()
    assert m[0x10000:0x10040] != bytes(64)         # random bytes arrived
    fe.close()


def test_a_front_end_stopping_mid_message_is_dropped(rng):
    """Four bytes of a header and then silence: the back end gives up on
    that front end within seconds, then serves the next one."""
    be, sock = rng
    fe = FrontEnd(sock)
    fe.s.sendall(b"\x01\x00\x00\x00")
    t0 = time.monotonic()
    assert fe.s.recv(64) == b""                    # the back end hung up
    assert time.monotonic() - t0 < 9
    fe.close()
    fe = FrontEnd(sock)
    assert fe.u64(GET_FEATURES) & F_VERSION_1
    fe.close()
    assert stops_on_sigterm(be), "SIGTERM did not stop the back end"


def test_guest_memory_truncated_under_the_back_end(rng):
    """The front end truncates its (unsealed) memory file after handing it
    over: the back end's next touch of guest memory would be SIGBUS. It
    must survive, drop that front end and serve the next one."""
    be, sock = rng
    fe = FrontEnd(sock)
    fe.u64(GET_FEATURES)
    keep = []
    m = fe.ring(os.eventfd(0, os.EFD_NONBLOCK), keep=keep)
    offer(m, 0)
    m.close()                                      # ours would fault too
    fe.u64(GET_FEATURES)                           # the memory table is mapped
    os.ftruncate(keep[0], 0)
    fe.start()
    try:                                           # dropped (hung up or reset)
        assert fe.s.recv(64) == b"", be.output()
    except ConnectionResetError:
        pass
    fe.close()
    os.close(keep[0])
    assert be.alive(), be.output()
    assert "guest memory shrank" in be.output(), be.output()
    fe = FrontEnd(sock)
    assert fe.u64(GET_FEATURES) & F_VERSION_1
    fe.close()
    assert stops_on_sigterm(be), "SIGTERM did not stop the back end"

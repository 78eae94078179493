# SPDX-License-Identifier: Apache-2.0
"""Helpers for tests that drive `vireo run --api-socket`: an HTTP client over
a Unix socket, and a running VM whose serial output is collected."""
import http.client
import json
import os
import select
import socket
import subprocess
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def api(sock, method, path, body=None):
    c = UnixHTTPConnection(sock)
    data = json.dumps(body) if isinstance(body, (dict, list)) else body
    c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    r = c.getresponse()
    raw = r.read()
    c.close()
    return r.status, (json.loads(raw) if raw else None)


def wait_socket(path, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            raise AssertionError(f"vireo exited {proc.returncode}: {proc.stderr.read().decode()}")
        time.sleep(0.01)
    raise AssertionError("API socket did not appear")


class VM:
    """A vireo process with its serial output gathered line by line."""

    def __init__(self, args, sock=None):
        self.sock = sock
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.buf = b""
        if sock:
            wait_socket(sock, self.proc)

    def read_for(self, seconds):
        end = time.time() + seconds
        while True:
            left = end - time.time()
            if left <= 0:
                break
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                break
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                break
            self.buf += chunk
        return self.buf

    def counts(self):
        """(count, sum) of every complete COUNT line; a line still being
        written (no newline yet) is not one."""
        out = []
        text = self.buf.decode(errors="replace")
        for line in text[:text.rfind("\n") + 1].splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "COUNT" and parts[2] == "SUM":
                out.append((int(parts[1]), parts[3]))
        return out

    def wait_count(self, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            c = self.counts()
            if c and c[-1][0] >= n:
                return c[-1]
            self.read_for(0.2)
        raise AssertionError(f"count {n} not reached: {self.buf[-500:]!r}")

    def pattern(self):
        for line in self.buf.decode(errors="replace").splitlines():
            if line.startswith("PATTERN "):
                return line.split()[1]
        return None

    def stop(self, timeout=20):
        """SIGTERM, as an operator would: vireo quits (exit 10) after closing
        its disks, so their metadata is complete."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

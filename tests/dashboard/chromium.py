"""Debian's `chromium` for the dashboard tests, installed when missing (apt-get, as root).

`make test` runs this before pytest, and the browser fixture calls ``ensure`` again, so the
browser test fails with this message rather than skipping when chromium cannot be had. Browser
downloaders (`playwright install`) are not used: Playwright drives this binary instead.

    python -m tests.dashboard.chromium    # install if missing; exit 0 either way, saying why
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Flags for a sandboxed, offline, throwaway browser: no GPU, no QUIC, no first-run pages, no
# background traffic (updates, sync, component downloads). Each launch adds a fresh
# --user-data-dir (Playwright's persistent context) so no profile state is shared.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


class ChromiumMissing(Exception):
    pass


def find() -> str | None:
    for path in (shutil.which("chromium"), *CANDIDATES):
        if path and os.access(path, os.X_OK):
            return path
    return None


def ensure() -> str:
    """The chromium executable, installing Debian's package first if it is missing."""
    found = find()
    if found:
        return found
    if not shutil.which("apt-get"):
        raise ChromiumMissing("Debian's chromium is not installed and there is no apt-get here to install it; "
                              "install a chromium at /usr/bin/chromium to run the dashboard tests")
    if os.geteuid() != 0:
        raise ChromiumMissing("Debian's chromium is not installed, and installing it needs root: "
                              "run `sudo apt-get install -y chromium` (or `make test` as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
            raise ChromiumMissing(f"`{' '.join(command)}` failed ({done.returncode}):\n" + "\n".join(tail))
    found = find()
    if not found:
        raise ChromiumMissing("apt-get installed chromium, but no chromium executable was found afterwards")
    return found


if __name__ == "__main__":
    try:
        print(f"chromium: {ensure()}")
    except ChromiumMissing as exc:
        # Not fatal here: the rest of the suite runs, and the browser test fails with this.
        print(f"chromium: not available: {exc}", file=sys.stderr)

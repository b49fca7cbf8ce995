"""The TypeScript test app (tests/ts/app/app.js) on the npm `inngest` SDK, one package directory
per major (tests/ts/v3, tests/ts/v4), each pinned by its package-lock.json.

`ensure_installed` runs `npm ci` into a package directory only when its node_modules does not
match the lockfile (a hash stamp inside node_modules says what was installed), so a clean clone
pays for the install once and later sessions pay nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import SdkApp, free_port, wait_for
from tests.ts.nodejs import MIN_MAJOR, NodeTools, find

TS_DIR = Path(__file__).parent
APP_JS = TS_DIR / "app" / "app.js"
MAJORS = (3, 4)
APP_ID = "ts-app"
STAMP = ".stepline-installed"
NPM_CI_TIMEOUT_S = 600


def package_dir(major: int) -> Path:
    return TS_DIR / f"v{major}"


def _tools() -> NodeTools:
    tools = find()
    if tools is None:
        raise RuntimeError(
            f"Node {MIN_MAJOR}+ with npm is missing: the TypeScript SDK tests need it "
            "(`python -m tests.ts.nodejs`, which `make test` runs, installs it)"
        )
    return tools


def _env(tools: NodeTools) -> dict[str, str]:
    return {**os.environ, "PATH": tools.bin_dir + os.pathsep + os.environ.get("PATH", "")}


def _lock_digest(pkg: Path) -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update(name.encode() + b"\0" + (pkg / name).read_bytes() + b"\0")
    return digest.hexdigest()


def ensure_installed(major: int) -> Path:
    """The package directory for ``major`` with its node_modules matching the lockfile."""
    pkg = package_dir(major)
    stamp = pkg / "node_modules" / STAMP
    want = _lock_digest(pkg)
    if stamp.is_file() and stamp.read_text().strip() == want:
        return pkg
    # Two test sessions on one checkout must not run `npm ci` into the same directory at once.
    lock_name = f"stepline-npm-{hashlib.sha256(str(pkg).encode()).hexdigest()[:16]}.lock"
    with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text().strip() == want:
            return pkg
        print(f"npm ci in {pkg.relative_to(TS_DIR.parent.parent)} (its lockfile changed, or nothing is installed yet)")
        started = time.monotonic()
        # --ignore-scripts: the SDK needs no install scripts (one dependency's postinstall only
        # prints); skipping them keeps the install fast and free of side effects.
        tools = _tools()
        proc = subprocess.run(
            [*tools.npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=pkg,
            env=_env(tools),
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"npm ci in {pkg} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        stamp.write_text(want + "\n")
        print(f"npm ci in {pkg.relative_to(TS_DIR.parent.parent)}: {time.monotonic() - started:.1f}s")
    return pkg


def ensure_all_installed() -> dict[int, Path]:
    """Every major's package directory, installed side by side."""
    _tools()
    with ThreadPoolExecutor(len(MAJORS)) as pool:
        return dict(zip(MAJORS, pool.map(ensure_installed, MAJORS)))


_early_install_tried = False
_early_install_error: BaseException | None = None


def install_before_tests(session: pytest.Session) -> None:
    """For a ``pytest_collection_finish`` hook: install once collection is done, when a collected
    test needs the packages. A clean clone's install takes about a minute, which must not count
    against the per-test timeout of whichever test happens to set the fixture up first.
    A failure is kept and raised by the ``ts_packages`` fixture, as a test error."""
    global _early_install_tried, _early_install_error
    if _early_install_tried or session.config.option.collectonly:
        return
    if not any("ts_packages" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    _early_install_tried = True  # tests/ts and tests/e2e each have this hook; one attempt is enough
    try:
        ensure_all_installed()
    except Exception as err:  # noqa: BLE001 - reported by the fixture, where pytest shows it well
        _early_install_error = err


@pytest.fixture(scope="session")
def ts_packages() -> dict[int, Path]:
    """`npm ci` into tests/ts/v3 and tests/ts/v4, unless already installed from the same lockfile."""
    if _early_install_error is not None:
        raise _early_install_error
    return ensure_all_installed()


class TsApp(SdkApp):
    """The TypeScript app in a Node process. Without ``stepline_url`` the mode comes from
    ``extra_env`` alone (signed cloud mode); with it, ``INNGEST_DEV=<url>``, which TS reads as
    dev mode with that origin."""

    def __init__(
        self,
        major: int,
        stepline_url: str | None = None,
        port: int | None = None,
        extra_env: dict | None = None,
        log_dir: Path | None = None,
    ) -> None:
        pkg = ensure_installed(major)
        self.major = major
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        # Only what the test sets decides the SDK's mode, keys and origins.
        env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
        if stepline_url:
            env["INNGEST_DEV"] = stepline_url
        env.update(extra_env or {})
        log_dir = log_dir or Path(tempfile.mkdtemp(prefix="ts-app-"))
        self.log_path = log_dir / f"ts-app-v{major}-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [_tools().node, str(APP_JS), "--port", str(self.port), "--sdk-dir", str(pkg)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(self._up, what=f"the TS v{major} app to listen")
        except AssertionError as err:
            self.stop()
            raise AssertionError(f"{err}\n{self.log_tail()}") from None

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the TS app exited with {self.proc.returncode}\n{self.log_tail()}")
        return super()._up()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        super().stop()
        self._log.close()

"""`stepline start` as an operator runs it: the installed command in its own process, its keys
from flags, a keys file or the environment, its state in a SQLite file that the test opens too
(read side by side, as WAL allows) to check what was stored."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from stepline.engine.clock import SystemClock
from stepline.engine.ports import Backend
from stepline.local import open_local_backend
from tests.e2e.conftest import free_port

STARTED_LINE = "stepline start: listening on "


def stepline_command() -> list[str]:
    """The console script pip installed next to this Python, as a user runs it."""
    script = Path(sys.executable).parent / "stepline"
    return [str(script)] if script.exists() else [shutil.which("stepline") or "stepline"]


def clean_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any STEPLINE_ setting (so only what a test gives counts)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    return {**env, **(extra or {})}


def run_start(args: list[str], env: dict[str, str], timeout_s: float = 30.0) -> subprocess.CompletedProcess:
    """`stepline start` expected to exit by itself (a refusal)."""
    return subprocess.run([*stepline_command(), "start", *args], env=clean_environ(env), capture_output=True,
                          text=True, timeout=timeout_s)


class StartedStepline:
    def __init__(self, db: Path, args: list[str] | None = None, env: dict[str, str] | None = None,
                 port: int | None = None, timeout_s: float = 30.0) -> None:
        self.port = port or free_port()
        self.db = db
        self.lines: list[str] = []
        self._backend: Backend | None = None
        command = [*stepline_command(), "start", "--port", str(self.port), "--db", str(db), *(args or [])]
        self.proc = subprocess.Popen(command, env=clean_environ(env), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout_s
        while not any(line.startswith(STARTED_LINE) for line in list(self.lines)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("stepline start did not come up:\n" + "\n".join(self.lines))
            time.sleep(0.05)
        # The lines printed after "listening" belong to the start-up report too.
        time.sleep(0.1)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store(self):
        """The server's store, read through a second connection to its file."""
        if self._backend is None:
            self._backend = open_local_backend(str(self.db), SystemClock())
        return self._backend.store

    def stop(self) -> int:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        return self.proc.returncode

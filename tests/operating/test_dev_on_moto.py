"""`stepline dev --backend moto` run as a user runs it: it serves when moto is installed (the
``moto`` extra), and without moto it says in one line which extra to install."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

from stepline.dev.runtime import MOTO_EXTRA
from tests.e2e.conftest import free_port, http

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}


def test_dev_on_moto_accepts_an_event_and_lists_it(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stepline.cli", "dev", "--backend", "moto", "--port", str(port),
         "--db", str(tmp_path / "dev.db")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening" in first and "backend moto" in first, first + (proc.stderr.read() if proc.poll() else "")
        code, body = http("POST", f"http://127.0.0.1:{port}/e/dev", {"name": "dev/moto.checked", "data": {"n": 1}})
        assert code == 200 and len(body["ids"]) == 1, body
        code, listed = http("GET", f"http://127.0.0.1:{port}/v1/events?limit=5")
        assert code == 200 and [e["name"] for e in listed["data"]] == ["dev/moto.checked"], listed
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_dev_on_moto_without_moto_names_the_extra_to_install(tmp_path):
    # A None entry in sys.modules makes `import moto` fail as it does where moto is not installed.
    probe = (
        "import sys; sys.modules['moto'] = None; from stepline.cli import main; "
        f"sys.exit(main(['dev', '--backend', 'moto', '--port', '0', '--db', {str(tmp_path / 'dev.db')!r}]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=_env())
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.splitlines() == [
        "stepline dev: --backend moto needs moto, which is not installed: pip install 'stepline[moto]'"
    ]
    # The extra the message names exists and brings moto.
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("moto[") for dep in extras[MOTO_EXTRA])

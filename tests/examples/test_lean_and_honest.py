"""The examples as a newcomer meets them: `make dev` installs what running them needs and not the
test suite's packages, and the examples pass their own `stepline check` with nothing to warn
about (the runtime logs each failed check as a warning at every sync of `make dev`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from stepline.check import Status
from stepline.check.module import inspect_module
from stepline.check.registry import run_checks

ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY = ("pytest", "playwright", "moto", "aws-cdk-lib", "cdk-nag", "hypothesis", "ruff", "mypy")


@pytest.mark.parametrize("target", ["examples.app", "examples/hello_app.py"])
def test_the_examples_pass_their_own_check_without_a_warning(target, monkeypatch):
    monkeypatch.chdir(ROOT)
    reports = run_checks(inspect_module(target))
    failed = [(r.id, f.message) for r in reports for f in r.failures]
    assert failed == []
    assert all(r.status in (Status.PASSED, Status.NOT_APPLICABLE) for r in reports)


def test_hello_app_says_what_it_is_and_keeps_off_make_devs_port():
    source = (ROOT / "examples" / "hello_app.py").read_text()
    assert "`make dev` does not start it" in source
    app_port = re.search(r"PORT=(\d+)", (ROOT / "Makefile").read_text())
    assert app_port and app_port.group(1) == "8289"
    assert 'os.environ.get("PORT", "3000")' in source


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_dev_installs_what_running_needs_not_the_test_extra(tmp_path):
    planned = subprocess.run(
        ["make", "-n", "-B", "dev", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert planned.returncode == 0, planned.stderr
    installs = [line for line in planned.stdout.splitlines() if "pip install" in line and "-e" in line]
    assert installs == [f"{tmp_path / 'venv'}/bin/pip install --quiet -e '.[server,examples]'"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert not [req for req in extras["examples"] if req.split("[")[0].split(">")[0].split("=")[0] in TEST_ONLY]
    assert any(req.startswith("flask") for req in extras["examples"])

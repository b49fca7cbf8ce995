"""The package installs and imports as ``stepline`` from the ``runtime/`` directory."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_under_runtime_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"stepline": "runtime"}
    on_disk = sorted(
        ".".join(("stepline", *init.parent.relative_to(REPO / "runtime").parts))
        for init in (REPO / "runtime").rglob("__init__.py")
    )
    assert sorted(config["packages"]) == on_disk


def test_the_package_imports_as_stepline_and_runtime_is_gone():
    import stepline

    assert Path(stepline.__file__).resolve().parent == REPO / "runtime"
    from stepline import Client, Context, EventData, lambda_handler, serve_flask  # noqa: F401

    # Run from elsewhere so the repository's own directory is not on the path.
    probe = "import importlib.util; print(importlib.util.find_spec('runtime') is None)"
    out = subprocess.run([sys.executable, "-c", probe], cwd="/", capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    assert importlib.util.find_spec("stepline.testing") is not None

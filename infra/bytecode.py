"""Bytecode for the Lambda's Python, compiled at build time.

A Lambda's code and layers are read-only, so Python cannot write the ``__pycache__`` it compiles
on import: without shipped bytecode every cold start compiles every module it imports again.
Bytecode is specific to the interpreter's minor version, so it is compiled by an interpreter of
the Lambda's version: the one ``STEPLINE_LAMBDA_PYTHON`` names, else ``python3.14`` on PATH, else
one uv manages (``uv python install 3.14`` puts one there; uv comes with the test extra). When none
is found the bundle ships sources only and the synth warns (``infra.app``): each cold start then
compiles what it imports (docs/deploy.md, "limits and ceilings on AWS"). No interpreter of another
version can stand in: bytecode's format and opcodes change with every minor version.

``unchecked-hash`` pycs are used as they are, whatever the files' timestamps (an asset's zip does
not keep them): the sources never change under a deployed function.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

INTERPRETER_ENV = "STEPLINE_LAMBDA_PYTHON"


def bytecode_interpreter(python_version: str) -> str | None:
    """An interpreter of ``python_version`` (``"3.14"``) to compile with, or None."""
    named = os.environ.get(INTERPRETER_ENV)
    candidates = [named] if named else [f"python{python_version}", _uv_managed(python_version)]
    for candidate in candidates:
        path = shutil.which(candidate) if candidate else None
        if path is not None and _version_of(path) == python_version:
            return path
    return None


@functools.lru_cache(maxsize=8)
def _uv_managed(python_version: str) -> str | None:
    """The interpreter of ``python_version`` uv knows of (installed by ``uv python install``),
    without downloading anything; None without uv or without one."""
    uv = shutil.which("uv") or shutil.which("uv", path=os.path.dirname(sys.executable))
    if uv is None:
        return None
    found = subprocess.run(
        [uv, "python", "find", "--no-project", "--offline", python_version], capture_output=True, text=True
    )
    if found.returncode != 0:
        return None
    return found.stdout.strip() or None


@functools.lru_cache(maxsize=8)
def _version_of(interpreter: str) -> str | None:
    probe = subprocess.run(
        [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def compile_tree(root: Path, interpreter: str) -> None:
    """Compile every module under ``root`` in place (``__pycache__`` beside each source)."""
    result = subprocess.run(
        [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(root)],
        capture_output=True,
        text=True,
    )
    # compileall exits 1 when a file does not compile (vendored Python 2 test files exist in
    # some wheels): those stay source-only, which is what the interpreter would do anyway.
    if result.returncode not in (0, 1):
        raise RuntimeError(f"compiling the Lambda's bytecode failed:\n{result.stderr.strip()}")

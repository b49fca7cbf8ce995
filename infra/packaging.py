"""Lambda code without Docker: a layer of the runtime's dependencies, and the ``stepline`` package.

The layer holds wheels for the Lambda platform, fetched by ``pip install --platform ...
--only-binary=:all:`` (pip never builds anything, so no compiler or container is needed), from
the runtime's own dependency list in ``pyproject.toml``: the package's dependencies (the SDK's),
its ``server`` extra and its ``lambda`` extra. Nothing from the ``cdk`` or ``test`` extras goes
in. The layer is built once per dependency list, platform and Python version, and cached under
``.cdk-build/``; the code directory holds a copy of ``runtime/`` as ``stepline/`` (the name the
package imports as), keyed by its content. Both ship bytecode compiled for the Lambda's
Python when an interpreter of that version is at hand (``infra.bytecode``), so cold starts do
not compile.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from infra.bytecode import bytecode_interpreter, compile_tree

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / ".cdk-build"
PYTHON_VERSION = "3.14"  # the Lambda runtime (python3.14); wheels are fetched for it
SERVER_EXTRAS = ("server", "lambda")  # the runtime and what only the Lambdas add to it
PACKAGE = "stepline"  # the import name of runtime/ (pyproject's package-dir)

# manylinux tags the Lambda OS (Amazon Linux 2023, glibc 2.34) runs, newest first.
_MANYLINUX = ("manylinux_2_34", "manylinux_2_28", "manylinux2014")
_ARCH = {"arm64": "aarch64", "x86_64": "x86_64"}
# Not needed to run: console scripts and the host interpreter's bytecode.
_PRUNE_DIRS = ("bin", "__pycache__")
# Copies of the runtime kept for earlier sources (each change of runtime/ makes a new one).
_KEEP_CODE_DIRS = 4


@dataclass(frozen=True)
class LambdaBundle:
    """Directories ready for ``Code.from_asset``, and the hash that names the layer's content."""

    dependencies_dir: Path  # holds python/ (a layer's layout)
    dependencies_hash: str  # of the requirements and the versions installed
    code_dir: Path  # holds stepline/ (a copy of runtime/)
    python_version: str
    architecture: str


def build_bundle(architecture: str = "arm64", *, build_dir: Path = BUILD_DIR) -> LambdaBundle:
    requirements = runtime_requirements()
    deps_dir, deps_hash = dependencies_dir(requirements, architecture, build_dir=build_dir)
    return LambdaBundle(
        dependencies_dir=deps_dir,
        dependencies_hash=deps_hash,
        code_dir=code_dir(build_dir=build_dir),
        python_version=PYTHON_VERSION,
        architecture=architecture,
    )


def runtime_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The package's dependencies and its ``server`` and ``lambda`` extras, as written in
    pyproject.toml."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(req for extra in SERVER_EXTRAS for req in extras.get(extra, []))]


def platform_tags(architecture: str) -> list[str]:
    arch = _ARCH[architecture]
    return [f"{tag}_{arch}" for tag in _MANYLINUX]


def dependencies_key(requirements: list[str], architecture: str) -> str:
    spec = {
        "requirements": sorted(requirements),
        "platforms": platform_tags(architecture),
        "python": PYTHON_VERSION,
        "implementation": "cp",
        "bytecode": bytecode_interpreter(PYTHON_VERSION) is not None,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def dependencies_dir(requirements: list[str], architecture: str, *, build_dir: Path = BUILD_DIR) -> tuple[Path, str]:
    """The layer directory for these requirements, built on first use. Returns the directory
    and its content hash."""
    key = dependencies_key(requirements, architecture)
    # No dot in the name: CDK would take ".14-..." for a file extension.
    target = build_dir / f"deps-{architecture}-py{PYTHON_VERSION.replace('.', '')}-{key}"
    if (target / "python").is_dir():
        return target, _content_hash(target, key)
    build_dir.mkdir(parents=True, exist_ok=True)
    # Built beside the target and renamed into place, so an interrupted build is never used
    # and two concurrent builds cannot mix their files.
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=build_dir))
    try:
        _pip_install(requirements, architecture, staging / "python")
        _prune(staging / "python")
        _compile(staging / "python")
        (staging / "requirements.txt").write_text("\n".join(requirements) + "\n")
        (staging / "installed.txt").write_text(_installed(staging / "python"))
        try:
            staging.rename(target)
        except OSError:
            if not (target / "python").is_dir():  # lost a race to a complete build: use it
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, _content_hash(target, key)


def _content_hash(target: Path, key: str) -> str:
    """The layer's asset hash: the requirements' key and the exact versions installed, so a
    rebuild that resolves newer versions is uploaded as a new asset."""
    installed = (target / "installed.txt").read_bytes()
    return hashlib.sha256(key.encode() + b"\0" + installed).hexdigest()[:32]


def _pip_install(requirements: list[str], architecture: str, into: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(into),
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
    ]
    for tag in platform_tags(architecture):
        command += ["--platform", tag]
    result = subprocess.run([*command, *requirements], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            "could not fetch the Lambda dependencies (pip install --platform "
            f"{platform_tags(architecture)[0]}):\n{result.stderr.strip()}"
        )


def _prune(site: Path) -> None:
    for name in _PRUNE_DIRS:
        for path in [p for p in site.rglob(name) if p.is_dir()]:
            shutil.rmtree(path, ignore_errors=True)


def _compile(root: Path) -> None:
    interpreter = bytecode_interpreter(PYTHON_VERSION)
    if interpreter is not None:
        compile_tree(root, interpreter)


def _installed(site: Path) -> str:
    names = sorted(p.name.removesuffix(".dist-info") for p in site.glob("*.dist-info"))
    return "\n".join(names) + "\n"


def code_dir(source: Path = REPO_ROOT / "runtime", *, build_dir: Path = BUILD_DIR) -> Path:
    """A directory holding a copy of ``runtime/`` as the ``stepline`` package, named by the copy's
    content."""
    files = _source_files(source)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    compiled = "c" if bytecode_interpreter(PYTHON_VERSION) else "s"
    target = build_dir / f"code-{digest.hexdigest()[:16]}{compiled}"
    if (target / PACKAGE).is_dir():
        return target
    build_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=build_dir))
    try:
        for path in files:
            dest = staging / PACKAGE / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        _compile(staging / PACKAGE)
        try:
            staging.rename(target)
        except OSError:
            if not (target / PACKAGE).is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remove_stale_code_dirs(build_dir, keep=target)
    return target


def _source_files(source: Path) -> list[Path]:
    return sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def _remove_stale_code_dirs(build_dir: Path, keep: Path) -> None:
    """Keep the newest few copies (a synth running beside this one may be reading one)."""
    dated: list[tuple[float, Path]] = []
    for path in build_dir.glob("code-*"):
        if "." in path.name:  # another synth's copy, still being made
            continue
        try:
            if path != keep and path.is_dir():
                dated.append((path.stat().st_mtime, path))
        except OSError:  # removed by a concurrent synth meanwhile
            continue
    dated.sort(reverse=True)
    for _, path in dated[_KEEP_CODE_DIRS - 1 :]:
        shutil.rmtree(path, ignore_errors=True)


__all__ = ["LambdaBundle", "build_bundle", "runtime_requirements", "PYTHON_VERSION"]

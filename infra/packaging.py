"""Lambda code without Docker: a layer of the runtime's dependencies, and the ``stepline`` package.

The layer holds wheels for the Lambda platform, fetched by ``pip install --platform ...
--only-binary=:all:`` (pip never builds anything, so no compiler or container is needed), from
the lock file ``infra/lambda-requirements.txt``: the runtime's own dependency list in
``pyproject.toml`` (the package's dependencies, the SDK's, and its ``server`` and ``lambda``
extras), every package pinned with its hashes, installed with ``--require-hashes`` (``make
lambda-lock`` writes it: ``infra.lambda_lock``). Nothing from the ``cdk`` or ``test`` extras goes
in. A lock made from other requirements than pyproject's stops the build. The layer is built
once per lock, platform and Python version, and cached under ``.cdk-build/``; the code directory
holds a copy of ``runtime/`` as ``stepline/`` (the name the package imports as), keyed by its
content. Both ship bytecode compiled for the Lambda's Python when an interpreter of that version
is at hand (``infra.bytecode``), so cold starts do not compile.
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
LOCK_FILE = REPO_ROOT / "infra" / "lambda-requirements.txt"
_LOCK_DIGEST_LINE = "# requirements sha256: "

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
    requirements = locked_requirements()
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


def requirements_digest(requirements: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()


class StaleLock(RuntimeError):
    pass


def locked_requirements(lock: Path = LOCK_FILE, pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The lock's requirements (``name==version --hash=...``, one per package), after checking
    that it was made from pyproject's current requirements."""
    text = lock.read_text() if lock.is_file() else ""
    first = text.splitlines()[0] if text else ""
    wanted = requirements_digest(runtime_requirements(pyproject))
    if first != _LOCK_DIGEST_LINE + wanted:
        raise StaleLock(
            f"{lock.name} was not made from pyproject.toml's current runtime requirements: run `make lambda-lock`"
        )
    requirements: list[str] = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            requirements.append(" ".join(line.split()))
    return requirements


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
        # Exactly the locked files: every package pinned and its hash checked, nothing resolved.
        "--require-hashes",
        "--no-deps",
    ]
    for tag in platform_tags(architecture):
        command += ["--platform", tag]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as file:
        file.write("\n".join(requirements) + "\n")
    try:
        result = subprocess.run([*command, "-r", file.name], capture_output=True, text=True)
    finally:
        Path(file.name).unlink(missing_ok=True)
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


__all__ = ["LOCK_FILE", "LambdaBundle", "build_bundle", "locked_requirements", "runtime_requirements", "PYTHON_VERSION"]

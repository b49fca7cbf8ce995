"""Lambda packaging without Docker: the layer holds the runtime's dependencies as wheels for the
Lambda platform, nothing else, built once and cached; the code is ``runtime/`` as the ``stepline`` package."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from infra import bytecode, packaging

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle(synthesized):
    # The session's synth built (or found) it; this returns the cached directories.
    return packaging.build_bundle(synthesized.stack.config.architecture)


def test_requirements_are_the_sdk_dependencies_and_the_server_and_lambda_extras():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = project["dependencies"] + extras["server"] + extras["lambda"]
    assert packaging.runtime_requirements() == wanted
    names = " ".join(wanted).lower()
    for excluded in ("aws-cdk-lib", "constructs", "cdk-nag", "pytest", "moto", "inngest"):
        assert excluded not in names


def test_the_layer_holds_linux_wheels_for_the_lambda_architecture(bundle):
    site = bundle.dependencies_dir / "python"
    assert bundle.architecture == "arm64" and bundle.python_version == packaging.PYTHON_VERSION
    tag = packaging.PYTHON_VERSION.replace(".", "")
    for package in ("pydantic_core", "cel"):
        (binary,) = [p for p in (site / package).rglob("*.so")]
        assert f"cpython-{tag}-aarch64-linux-gnu" in binary.name, binary
    for package in ("aws_lambda_powertools", "aws_xray_sdk", "pydantic", "boto3", "croniter", "ulid", "jcs", "tzdata"):
        assert (site / package).is_dir(), package
    installed = (bundle.dependencies_dir / "installed.txt").read_text().lower()
    for excluded in ("aws_cdk", "constructs", "jsii", "cdk_nag", "pytest", "moto", "inngest", "flask"):
        assert excluded not in installed, excluded
    # Host bytecode is useless on 3.14: only the target's, where an interpreter of it compiled it.
    assert all(f".cpython-{tag}." in p.name for p in site.rglob("*.pyc"))


def test_the_layer_is_cached_by_its_requirements(bundle, monkeypatch):
    def no_pip(*args, **kwargs):
        raise AssertionError("pip ran although the layer is cached")

    monkeypatch.setattr(subprocess, "run", no_pip)
    again = packaging.build_bundle(bundle.architecture)
    assert again.dependencies_dir == bundle.dependencies_dir
    key = packaging.dependencies_key(packaging.locked_requirements(), "arm64")
    assert key in bundle.dependencies_dir.name
    assert again.dependencies_hash == bundle.dependencies_hash


def test_the_layer_asset_hash_covers_the_versions_installed(tmp_path):
    """A rebuild that resolves newer versions is a new asset, never mistaken for the one
    already uploaded."""
    requirements = ["pydantic>=2"]
    key = packaging.dependencies_key(requirements, "arm64")
    built = tmp_path / f"deps-arm64-py{packaging.PYTHON_VERSION.replace('.', '')}-{key}"
    (built / "python").mkdir(parents=True)
    (built / "installed.txt").write_text("pydantic-2.14.3\n")
    _, first = packaging.dependencies_dir(requirements, "arm64", build_dir=tmp_path)
    (built / "installed.txt").write_text("pydantic-2.15.0\n")
    _, second = packaging.dependencies_dir(requirements, "arm64", build_dir=tmp_path)
    assert first != second


def test_the_cache_key_follows_requirements_and_architecture():
    key = packaging.dependencies_key(packaging.runtime_requirements(), "arm64")
    assert packaging.dependencies_key(packaging.runtime_requirements() + ["extra"], "arm64") != key
    assert packaging.dependencies_key(packaging.runtime_requirements(), "x86_64") != key


def test_platform_tags_match_the_architecture():
    assert packaging.platform_tags("x86_64")[-1] == "manylinux2014_x86_64"
    assert all(t.endswith("_aarch64") for t in packaging.platform_tags("arm64"))


def test_the_code_directory_is_the_runtime_package(bundle):
    code = bundle.code_dir / "stepline"
    assert (code / "handlers" / "api.py").read_text() == (REPO / "runtime/handlers/api.py").read_text()
    assert (code / "handlers" / "executor.py").is_file() and (code / "settings.py").is_file()
    tag = packaging.PYTHON_VERSION.replace(".", "")
    assert all(f".cpython-{tag}." in p.name for p in code.rglob("*.pyc"))
    assert sorted(p.name for p in bundle.code_dir.iterdir()) == ["stepline"]
    for path in code.rglob("*.py"):
        assert "aws_cdk" not in path.read_text(), f"{path} imports CDK: the runtime must not"


def test_the_code_directory_follows_the_source(tmp_path):
    source = tmp_path / "runtime"
    source.mkdir()
    (source / "a.py").write_text("A = 1\n")
    first = packaging.code_dir(source, build_dir=tmp_path / "build")
    assert packaging.code_dir(source, build_dir=tmp_path / "build") == first
    (source / "a.py").write_text("A = 2\n")
    second = packaging.code_dir(source, build_dir=tmp_path / "build")
    assert second != first and (second / "stepline" / "a.py").read_text() == "A = 2\n"


def test_a_failed_download_says_what_failed(tmp_path):
    with pytest.raises(RuntimeError, match="could not fetch the Lambda dependencies"):
        packaging.dependencies_dir(["no-such-package-stepline-test==0.0.0"], "arm64", build_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-built left to be used


def test_bytecode_is_compiled_for_the_target_python(tmp_path, monkeypatch):
    """With an interpreter of the Lambda's version at hand (here: this one, standing in for it),
    the code ships unchecked-hash bytecode, used as it is on the read-only Lambda filesystem."""
    version = "%d.%d" % sys.version_info[:2]
    monkeypatch.setattr(packaging, "PYTHON_VERSION", version)
    monkeypatch.setenv(bytecode.INTERPRETER_ENV, sys.executable)
    source = tmp_path / "runtime"
    (source / "sub").mkdir(parents=True)
    (source / "a.py").write_text("A = 1\n")
    (source / "sub" / "b.py").write_text("B = 2\n")
    code = packaging.code_dir(source, build_dir=tmp_path / "build") / "stepline"
    pycs = sorted(p.relative_to(code).as_posix() for p in code.rglob("*.pyc"))
    tag = sys.implementation.cache_tag
    assert pycs == [f"__pycache__/a.{tag}.pyc", f"sub/__pycache__/b.{tag}.pyc"]
    flags = int.from_bytes((code / "__pycache__" / f"a.{tag}.pyc").read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, source not checked


def test_without_an_interpreter_of_the_target_version_the_code_ships_sources(tmp_path, monkeypatch):
    monkeypatch.setattr(packaging, "PYTHON_VERSION", "3.99")
    monkeypatch.setenv(bytecode.INTERPRETER_ENV, sys.executable)  # the wrong version: not used
    source = tmp_path / "runtime"
    source.mkdir()
    (source / "a.py").write_text("A = 1\n")
    code = packaging.code_dir(source, build_dir=tmp_path / "build") / "stepline"
    assert (code / "a.py").is_file() and not list(code.rglob("*.pyc"))


def test_an_interpreter_uv_manages_compiles_the_bytecode(tmp_path, monkeypatch):
    """No python3.x on PATH and none named: the one ``uv python install`` put in place is found
    (asked of uv offline: nothing is downloaded at synth)."""
    version = "%d.%d" % sys.version_info[:2]
    asked = tmp_path / "asked"
    fake_uv = tmp_path / "bin" / "uv"
    fake_uv.parent.mkdir()
    fake_uv.write_text(
        f"#!{sys.executable}\nimport sys\nopen({str(asked)!r}, 'w').write(' '.join(sys.argv[1:]))\n"
        f"print({sys.executable!r})\n"
    )
    fake_uv.chmod(0o755)
    monkeypatch.delenv(bytecode.INTERPRETER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(fake_uv.parent))
    bytecode._uv_managed.cache_clear()
    try:
        assert bytecode.bytecode_interpreter(version) == sys.executable
        assert asked.read_text() == f"python find --no-project --offline {version}"
    finally:
        bytecode._uv_managed.cache_clear()


# -- the hashed lock file -----------------------------------------------------------------------


def test_the_lock_pins_every_runtime_requirement_with_hashes():
    from packaging.requirements import Requirement

    locked = {}
    for line in packaging.locked_requirements():  # raises when made from other requirements
        pin, _, rest = line.partition(" ")
        name, _, version = pin.partition("==")
        assert version and "--hash=sha256:" in rest, line
        locked[name.lower().replace("_", "-")] = version
    for text in packaging.runtime_requirements():
        wanted = Requirement(text)
        name = wanted.name.lower().replace("_", "-")
        assert name in locked, f"{name} is not in {packaging.LOCK_FILE.name}"
        assert wanted.specifier.contains(locked[name]), (text, locked[name])
    assert tuple(int(p) for p in locked["urllib3"].split(".")[:2]) >= (2, 7)


def test_a_lock_made_from_other_requirements_stops_the_build(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text((REPO / "pyproject.toml").read_text().replace('"jcs>=0.2.1"', '"jcs>=0.3"'))
    with pytest.raises(packaging.StaleLock, match="run `make lambda-lock`"):
        packaging.locked_requirements(pyproject=pyproject)
    with pytest.raises(packaging.StaleLock):
        packaging.locked_requirements(lock=tmp_path / "missing.txt")


def test_the_layer_is_installed_from_the_lock_with_hashes_required(tmp_path, monkeypatch):
    seen: list[list[str]] = []
    real_run = subprocess.run

    def fake_pip(command, **kwargs):
        if "pip" not in command:  # looking for an interpreter to compile with (infra.bytecode)
            return real_run(command, **kwargs)
        seen.append(command)
        seen.append(Path(command[command.index("-r") + 1]).read_text().splitlines())
        (tmp_path / "out").mkdir(exist_ok=True)
        return subprocess.CompletedProcess(command, 1, "", "stopped here by the test")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    with pytest.raises(RuntimeError, match="stopped here by the test"):
        packaging.dependencies_dir(packaging.locked_requirements(), "arm64", build_dir=tmp_path)
    command, requirements = seen
    assert "--require-hashes" in command and "--no-deps" in command and "--only-binary=:all:" in command
    assert requirements == packaging.locked_requirements()

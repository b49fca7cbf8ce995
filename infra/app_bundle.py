"""The code asset of an app on Stepline's own SDK: the ``stepline`` package (the stack's code
copy) with the app's modules beside it, so its handler is ``<module>.handler``. Its dependencies
come from the stack's layer, which the app's function shares."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from infra.packaging import BUILD_DIR, LambdaBundle


def app_code_dir(bundle: LambdaBundle, modules: list[Path], *, build_dir: Path = BUILD_DIR) -> Path:
    """A directory holding ``bundle``'s ``stepline`` package and ``modules`` (files, at its top),
    named by their content."""
    digest = hashlib.sha256(bundle.code_dir.name.encode())
    for path in sorted(modules):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    target = build_dir / f"app-{digest.hexdigest()[:16]}"
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=build_dir))
    try:
        shutil.copytree(bundle.code_dir, staging, dirs_exist_ok=True)
        for path in modules:
            shutil.copy2(path, staging / path.name)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target

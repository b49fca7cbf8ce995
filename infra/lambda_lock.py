"""`make lambda-lock`: the Lambda layer's lock file, every package pinned with its hashes.

The layer is installed from this file with ``pip install --require-hashes`` (``infra.packaging``),
so what is deployed is exactly what was locked: a package re-published under the same version,
or an index that serves something else, fails the build instead of reaching the Lambdas. The
lock is resolved once for every platform (``uv pip compile --universal``), so it serves both
architectures. Its first line records a hash of the requirements it was made from
(``pyproject.toml``'s dependencies and its ``server`` and ``lambda`` extras): a build from a lock older than them
stops and says to run ``make lambda-lock`` again.
"""

from __future__ import annotations

import subprocess
import sys

from infra.packaging import LOCK_FILE, PYTHON_VERSION, REPO_ROOT, requirements_digest, runtime_requirements

REQUIREMENTS_LINE = "# requirements sha256: "


def main() -> int:
    command = [
        "uv", "pip", "compile", "pyproject.toml",
        "--extra", "server",
        "--extra", "lambda",
        "--universal",
        "--python-version", PYTHON_VERSION,
        "--generate-hashes",
        "--custom-compile-command", "make lambda-lock",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr.strip(), file=sys.stderr)
        return done.returncode
    header = f"{REQUIREMENTS_LINE}{requirements_digest(runtime_requirements())}\n"
    LOCK_FILE.write_text(header + done.stdout)
    print(f"wrote {LOCK_FILE.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`make chaos`: the full chaos run, reported as JSON, failing on any violation.

    python -m tests.chaos --runs 1000 --backend sqlite,moto --seed 1
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--backend", default="sqlite,moto", help="comma-separated: sqlite, moto")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # injected faults make the runtime log loudly
    failed = False
    for backend in args.backend.split(","):
        with tempfile.TemporaryDirectory(prefix=f"chaos-{backend}-") as tmp:
            report = run_chaos(backend, Path(tmp), args.runs, args.seed)
        print(json.dumps(report.summary(), indent=2), flush=True)
        for line in report.violations[:50]:
            print("VIOLATION", line, file=sys.stderr)
        failed = failed or bool(report.violations)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

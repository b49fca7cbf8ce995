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

from tests.chaos.harness import SHAPES, run_chaos
from tests.faults.plan import FaultRates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--backend", default="sqlite,moto", help="comma-separated: sqlite, moto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of: {', '.join(SHAPES)}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every fault rate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # injected faults make the runtime log loudly
    failed = False
    for backend in args.backend.split(","):
        with tempfile.TemporaryDirectory(prefix=f"chaos-{backend}-") as tmp:
            report = run_chaos(backend, Path(tmp), args.runs, args.seed, rates=FaultRates.chaos(args.scale),
                               shapes=tuple(args.shapes.split(",")))
        print(json.dumps(report.summary(), indent=2), flush=True)
        for line in report.violations[:50]:
            print("VIOLATION", line, file=sys.stderr)
        failed = failed or bool(report.violations)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

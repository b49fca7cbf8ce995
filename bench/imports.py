"""`make bench`, cold start: what importing Stepline costs, and what installing it weighs.

Builds a wheel from this tree and installs it into two fresh virtualenvs under ``.bench/``:
``stepline`` alone (the SDK, what ``pip install stepline`` gives) and ``stepline[server,lambda]``
(the whole runtime: what the Lambda layer holds, infra/packaging.py). Then, for each target, it
starts fresh Python processes that import it and reports the best of ``--runs``:

* **import ms**: wall time of the import statement itself, measured inside the process (what
  ``python -X importtime`` reports as the module's cumulative time);
* **import CPU ms**: CPU time of the same statement. On a machine shared with other work, wall
  time grows with the load; CPU time barely moves, and it is what a Lambda's CPU share divides;
* **process CPU ms**: user + system CPU of the whole ``python -c`` process, interpreter start-up
  and exit included.

Beside them, the floors: an empty ``python -c pass`` and a bare ``import boto3``, which every
AWS-side process pays. The Lambda handlers are imported as in a Lambda (``LAMBDA_TASK_ROOT`` set),
once with tracing off and once with it on (which imports the X-Ray SDK).

Installed sizes are the bytes of every file each distribution's RECORD lists (byte-compiled
files included, as pip writes them), pip and setuptools left out.

    python -m bench.imports [--runs 15] [--detail]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".bench"
SDK_NAMES = "Client, Context, EventData, serve_flask"
# Distributions every fresh venv holds, not Stepline's.
VENV_OWN = {"pip", "setuptools"}

# A Lambda's environment as far as imports care: powertools reads these at import time.
LAMBDA_ENV = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_LAMBDA_FUNCTION_NAME": "stepline-bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "stepline-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Stepline",
    # The X-Ray SDK finds no segment outside a real invocation: log, do not raise.
    "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
}
TRACING_OFF = {**LAMBDA_ENV, "POWERTOOLS_TRACE_DISABLED": "true"}
TRACING_ON = {**LAMBDA_ENV, "POWERTOOLS_TRACE_DISABLED": "false"}

DECLARE = f"""
from stepline import {SDK_NAMES}, cron
client = Client("bench", dev=True)
@client.function("on-order", trigger=[cron("TZ=Europe/Paris 0 9 * * *")], idempotency="event.data.id")
def on_order(ctx):
    return None
"""


@dataclass(frozen=True)
class Target:
    label: str
    venv: str  # "sdk" or "server"
    code: str
    env: dict[str, str] = field(default_factory=dict)
    # The module -X importtime names for the breakdown (--detail).
    module: str = ""


TARGETS = [
    Target("python -c pass (floor)", "sdk", "pass"),
    Target("import stepline", "sdk", "import stepline", module="stepline"),
    Target(f"from stepline import {SDK_NAMES}", "sdk", f"from stepline import {SDK_NAMES}", module="stepline.sdk"),
    Target("  ... and declare a function (cron, CEL)", "sdk", DECLARE, module="stepline.sdk"),
    Target("from stepline import testing", "sdk", "from stepline import testing", module="stepline.testing"),
    Target("import boto3 (floor)", "server", "import boto3", module="boto3"),
    Target("stepline.handlers.api", "server", "import stepline.handlers.api", TRACING_OFF, "stepline.handlers.api"),
    Target(
        "stepline.handlers.executor",
        "server",
        "import stepline.handlers.executor",
        TRACING_OFF,
        "stepline.handlers.executor",
    ),
    Target(
        "stepline.handlers.api, tracing on",
        "server",
        "import stepline.handlers.api",
        TRACING_ON,
        "stepline.handlers.api",
    ),
    Target(
        "stepline.handlers.executor, tracing on",
        "server",
        "import stepline.handlers.executor",
        TRACING_ON,
        "stepline.handlers.executor",
    ),
]

# Runs the target's code between two clock readings; `time` is built in, so the readings cost
# no import of their own.
PROBE = """import time
_w, _c = time.perf_counter(), time.process_time()
exec(compile({code!r}, "<bench>", "exec"))
print(time.perf_counter() - _w, time.process_time() - _c)
"""

SIZES = """import importlib.metadata as md, json, os, re, sys
def norm(n): return re.sub(r"[-_.]+", "-", n).lower()
out = {}
for d in md.distributions():
    total = 0
    for f in d.files or []:
        p = d.locate_file(f)
        if os.path.isfile(p):
            total += os.path.getsize(p)
    reqs = [norm(re.split(r"[ ;<>=!~\\[(]", r, maxsplit=1)[0]) for r in (d.requires or []) if "extra ==" not in r]
    out[norm(d.metadata["Name"])] = {"bytes": total, "requires": reqs}
json.dump(out, sys.stdout)
"""


@dataclass
class Measured:
    target: Target
    wall_ms: list[float]
    cpu_ms: list[float]
    process_cpu_ms: list[float]


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


def build_venvs() -> dict[str, Path]:
    """The two virtualenvs, made once per list of what they install; this tree's wheel reinstalled
    in each."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    installed = [project["dependencies"], extras.get("server", []), extras.get("lambda", [])]
    key = hashlib.sha256(json.dumps(installed).encode()).hexdigest()[:12]
    wheels = WORK / "wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    print("building the wheel ...", flush=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(REPO)])
    (wheel,) = wheels.glob("stepline-*.whl")
    venvs = {}
    for name, extras in (("sdk", ""), ("server", "[server,lambda]")):
        venv = WORK / f"{name}-{key}"
        python = venv / "bin" / "python"
        if not python.exists():
            for stale in WORK.glob(f"{name}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            print(f"creating {venv.relative_to(REPO)} (stepline{extras}) ...", flush=True)
            run([sys.executable, "-m", "venv", str(venv)])
            run([str(python), "-m", "pip", "install", "--quiet", f"stepline{extras} @ {wheel.as_uri()}"])
        run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel)])
        venvs[name] = python
    return venvs


def measure(target: Target, python: Path, runs: int) -> Measured:
    env = target_env(target)
    # Run from the venv's directory: this tree's runtime/ must not shadow the installed package.
    wall, cpu, process = [], [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = run([str(python), "-c", PROBE.format(code=target.code)], env=env, cwd=python.parent)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        w, c = (float(x) for x in out.stdout.split()[-2:])
        wall.append(w * 1000)
        cpu.append(c * 1000)
        process.append(((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000)
    return Measured(target, wall, cpu, process)


def importtime(python: Path, code: str, env: dict[str, str]) -> list[tuple[str, float]]:
    """(module, self ms) for every import ``python -X importtime -c code`` reports."""
    err = run([str(python), "-X", "importtime", "-c", code], env=env, cwd=python.parent).stderr
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            self_us, _, name = line.split(":", 1)[1].split("|")
            rows.append((name.strip(), int(self_us) / 1000))
    return rows


def breakdown(target: Target, python: Path, top: int = 8) -> list[tuple[str, float]]:
    """The packages that take the most self time in -X importtime (best of five), the
    interpreter's own start-up left out."""
    env = target_env(target)
    startup = {name for name, _ in importtime(python, "pass", env)}
    best: dict[str, float] = {}
    best_total = float("inf")
    for _ in range(5):
        selfs: dict[str, float] = {}
        for name, ms in importtime(python, target.code, env):
            if name in startup:
                continue
            package = ".".join(name.split(".")[:2]) if name.startswith("stepline.") else name.split(".")[0]
            selfs[package] = selfs.get(package, 0.0) + ms
        if sum(selfs.values()) < best_total:
            best, best_total = selfs, sum(selfs.values())
    return sorted(best.items(), key=lambda kv: -kv[1])[:top]


def target_env(target: Target) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "STEPLINE_", "AWS_"))}
    env.update(target.env)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the installed bytecode is used, never rewritten
    return env


def sizes(python: Path) -> dict[str, dict]:
    return json.loads(run([str(python), "-c", SIZES]).stdout)


def only_through(dists: dict[str, dict], root: str, via: str) -> set[str]:
    """Distributions installed only because ``via`` requires them (``via`` included)."""

    def reach(start: str, skip: str | None) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            name = todo.pop()
            if name in seen or name == skip or name not in dists:
                continue
            seen.add(name)
            todo.extend(dists[name]["requires"])
        return seen

    return reach(root, None) - reach(root, via)


def report(results: list[Measured], venvs: dict[str, Path], detail: bool) -> None:
    runs = len(results[0].wall_ms)
    print(f"\nImporting Stepline, best of {runs} fresh processes (median in brackets), {platform_line()}")
    print(f"{'target':<58} {'install':<7} {'import ms':>16} {'import CPU ms':>14} {'process CPU ms':>15}")
    for m in results:
        wall = f"{min(m.wall_ms):6.0f} ({statistics.median(m.wall_ms):4.0f})"
        print(
            f"{m.target.label:<58} {m.target.venv:<7} {wall:>16} {min(m.cpu_ms):>14.0f} {min(m.process_cpu_ms):>15.0f}"
        )
        if detail and m.target.module:
            parts = ", ".join(f"{name} {ms:.0f}" for name, ms in breakdown(m.target, venvs[m.target.venv]))
            print(f"    self ms by package: {parts}")

    print("\nInstalled size (bytes in each distribution's RECORD; pip and setuptools left out)")
    sdk, server = sizes(venvs["sdk"]), sizes(venvs["server"])
    for label, dists in (("stepline (the SDK)", sdk), ("stepline[server,lambda] (the runtime)", server)):
        mine = {k: v for k, v in dists.items() if k not in VENV_OWN}
        total = sum(v["bytes"] for v in mine.values())
        print(f"  {label:<40} {total / 1e6:6.1f} MB in {len(mine)} distributions")
    cli = only_through(sdk, "stepline", "common-expression-language") - {"common-expression-language"}
    cli_bytes = sum(sdk[name]["bytes"] for name in cli)
    print(
        f"  of the SDK's, the CEL library's command-line dependencies, never imported: {cli_bytes / 1e6:.1f} MB"
        f" ({', '.join(sorted(cli))})"
    )
    biggest = sorted(((v["bytes"], k) for k, v in server.items() if k not in VENV_OWN and k not in sdk), reverse=True)
    print("  the runtime adds: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for size, name in biggest[:6]))


def platform_line() -> str:
    cores = os.cpu_count()
    load = os.getloadavg()[0]
    return f"Python {sys.version.split()[0]}, {cores} cores, load {load:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--detail", action="store_true", help="where each target's import time goes, by package")
    args = parser.parse_args()
    venvs = build_venvs()
    results = [measure(t, venvs[t.venv], args.runs) for t in TARGETS]
    report(results, venvs, args.detail)


if __name__ == "__main__":
    main()

"""The chaos harness: a real `stepline dev` runtime (real HTTP, SQLite or the AWS adapters on
moto), the official-SDK chaos app behind a fault-injecting proxy, and every port and AWS call
faulted; then a mixed workload, and an audit of what came out.

What the audit proves, per run and per step (see ``Audit``):
* no run lost: every accepted event started its run, every invoke its child;
* every run terminal, and Completed (no fault here is one a run should fail from), but for the
  ``vanishing`` shape, whose planned step leaves the code: Failed, or Completed only with that
  step's result (it ran before it left), never Completed without it;
* no step memo written twice: the store's applied memo writes, counted at the port, are at most
  one per step, and the memo kept is the one written;
* every step body's side effect counted once per successful attempt: of the executions the app
  recorded (each with its own nonce), exactly one is the memo, and every other one is accounted
  for by a fault — its answer destroyed by the proxy, or lost with an executor that failed
  (crashed, or a write refused) before committing it;
* every waiting run holds a timer (sampled on SQLite while the workload runs: every pending
  sleep, wait or invoke has its wake-up on the queue or in the timers table).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.clock import SystemClock
from stepline.engine.flow.concurrency import limits_for
from stepline.engine.http import HttpResponse, PooledHttpCaller
from stepline.engine.ids import derived_ulid
from stepline.protocol.invocations import correlation_id
from stepline.engine.ports import Backend, RunStatus
from stepline.engine.runs import run_id_for
from stepline.settings import Settings
from tests.e2e.conftest import SdkApp, free_port, http, wait_for
from tests.faults.app_proxy import NONCE, FaultyAppProxy
from tests.faults.aws import install_aws_faults
from tests.faults.plan import CrashPoints, FaultPlan, FaultRates
from tests.faults.ports import InjectedCrash, executing, faulty_backend
from tests.chaos.own_app import read_ledger

APP_SCRIPT = Path(__file__).parent / "app.py"
APP_ID = "chaos-app"
# The checkpointing shapes run on their own apps: Stepline's SDK (tests/chaos/own_app.py).
OWN_APP_SCRIPT = Path(__file__).parent / "own_app.py"
OWN_APP_ID = "chaos-own"
# ... and the official TypeScript SDK 4.x (tests/chaos/ts_app.js), checkpointing through the API.
TS_APP_SCRIPT = Path(__file__).parent / "ts_app.js"
TS_APP_ID = "chaos-ts"
APP_OF_SHAPE = {"checkpointed": OWN_APP_ID, "ts-checkpointed": TS_APP_ID}
SHAPES = ("steps", "sleep", "wait", "parallel", "invoke", "limited", "vanishing", *APP_OF_SHAPE)
# The vanishing shape's step that leaves the code, by its name.
VANISHING_STEP = "v3"
VANISHING_HASH = hashlib.sha1(VANISHING_STEP.encode()).hexdigest()  # noqa: S324 - the SDK's step id
# The executor gives up on a call after STEP_TIMEOUT_S; a hung answer comes after that.
STEP_TIMEOUT_S = 4.0
HANG_S = STEP_TIMEOUT_S + 0.5
_JSON_NONCE = re.compile(r"n-[0-9a-f]{32}")


def chaos_settings(step_timeout_s: float = STEP_TIMEOUT_S) -> Settings:
    values: dict[str, Any] = {
        "mode": "dev",
        # Also sets the run lease (3x): how long a crashed executor's run stays blocked.
        "step_timeout_s": step_timeout_s,
        "retry_base_ms": 100,
        "retry_cap_ms": 2_000,
    }
    # Recovery knobs, where the runtime has them: sweep often, with a short grace, and let a
    # message fail many times before it counts as poison (faults here are transient).
    optional = {"sweep_interval_s": 1.0, "sweep_grace_s": 30.0, "max_deliveries": 50,
                "redelivery_base_ms": 200, "redelivery_cap_ms": 2_000}
    values.update({k: v for k, v in optional.items() if k in Settings.model_fields})
    return Settings(**values)


class ExecutionLedger:
    """What the executor saw of step results: which nonces reached it intact, and whether the
    message that carried them was handled or failed (a crash or a refused write)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.handled: set[str] = set()
        self.lost: set[str] = set()
        self.lost_runs: set[str] = set()  # runs one of whose messages failed

    def seen(self, nonces: list[str]) -> None:
        current = getattr(self._local, "nonces", None)
        if current is not None:
            current.extend(nonces)

    @contextlib.contextmanager
    def message(self, run_id: str = "") -> Iterator[None]:
        self._local.nonces = []
        try:
            yield
        except BaseException:
            with self._lock:
                self.lost.update(self._local.nonces)
                self.lost_runs.add(run_id)
            raise
        else:
            with self._lock:
                self.handled.update(self._local.nonces)
        finally:
            self._local.nonces = None


class LedgerCaller(PooledHttpCaller):
    """The executor's real HTTP client, noting the step results of every intact answer."""

    def __init__(self, ledger: ExecutionLedger) -> None:
        super().__init__()
        self.ledger = ledger

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        resp = super().post(url, body, headers, timeout_s)
        if resp.lines is not None:  # a checkpoint stream: each line reaches it as it is read
            resp.lines = _NotedLines(resp.lines, self.ledger)
            return resp
        try:
            json.loads(resp.body)
        except ValueError:
            return resp  # not an answer the executor can use: nothing in it reached it
        self.ledger.seen([n.decode() for n in NONCE.findall(resp.body)])
        return resp


class _NotedLines:
    def __init__(self, lines: Any, ledger: ExecutionLedger) -> None:
        self.lines, self.ledger = lines, ledger

    def __iter__(self) -> Iterator[bytes]:
        for line in self.lines:
            self.ledger.seen([n.decode() for n in NONCE.findall(line)])
            yield line

    def close(self) -> None:
        self.lines.close()


@dataclass
class Workload:
    """The events of one chaos run: (shape, event) in send order."""

    events: list[tuple[str, dict[str, Any]]]

    @classmethod
    def mixed(cls, runs: int, seed: int, shapes: tuple[str, ...] = SHAPES) -> "Workload":
        import random

        rng = random.Random(seed)
        out = []
        for i in range(runs):
            shape = shapes[i % len(shapes)] if i < len(shapes) else rng.choice(shapes)
            key = f"k{seed}-{i}"
            data: dict[str, Any] = {"key": key}
            if shape == "steps":
                data["flaky"] = rng.random() < 0.5
            elif shape == "wait":
                data["go"] = rng.random() < 0.5  # else the wait times out
            elif shape == "sleep":
                data["seconds"] = rng.choice([1, 2])
            elif shape == "ts-checkpointed":
                data["flaky"] = rng.random() < 0.5
            elif shape == "checkpointed":
                data["flaky"] = rng.random() < 0.5
                # A quarter of them kill the app process in the middle of a step of a streamed call.
                data["crash_at"] = rng.choice(["b", "e", None, None, None, None, None, None])
            out.append((shape, {"name": f"chaos/{shape}", "id": f"evt-{seed}-{i}", "data": data}))
        return cls(out)


@dataclass
class ChaosReport:
    backend: str
    runs: int
    seed: int
    seconds: float = 0.0
    runs_by_status: Counter = field(default_factory=Counter)
    # How the vanishing shape's runs ended: "Failed", or "Completed" (its step ran first).
    vanishing: Counter = field(default_factory=Counter)
    steps: int = 0
    executions: int = 0
    faults: Counter = field(default_factory=Counter)
    timer_samples: int = 0
    swept: Counter = field(default_factory=Counter)  # what the sweeper re-armed, by message kind
    app_crashes: int = 0  # the checkpointing app killed mid-step
    undelivered: int = 0  # step results lost with a cut checkpoint stream
    violations: list[str] = field(default_factory=list)

    def add(self, other: "ChaosReport") -> None:
        """Fold in the report of one round."""
        self.seconds += other.seconds
        self.runs_by_status.update(other.runs_by_status)
        self.vanishing.update(other.vanishing)
        self.steps += other.steps
        self.executions += other.executions
        self.faults.update(other.faults)
        self.timer_samples += other.timer_samples
        self.swept.update(other.swept)
        self.app_crashes += other.app_crashes
        self.undelivered += other.undelivered
        self.violations.extend(other.violations)

    def summary(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "runs": self.runs,
            "seed": self.seed,
            "seconds": round(self.seconds, 1),
            "runs_by_status": dict(self.runs_by_status),
            "vanishing_runs": dict(self.vanishing),
            "steps_memoized": self.steps,
            "step_executions": self.executions,
            "faults_injected": dict(sorted(self.faults.items())),
            "faults_total": sum(self.faults.values()),
            "timer_samples": self.timer_samples,
            "sweeper_rearmed": dict(self.swept),
            "app_crashes_mid_step": self.app_crashes,
            "step_results_lost_with_a_cut_stream": self.undelivered,
            "violations": len(self.violations),
        }


class ChaosStack:
    def __init__(self, backend_kind: str, tmp: Path, plan: FaultPlan, settings: Settings | None = None) -> None:
        self.kind = backend_kind
        self.tmp = tmp
        self.plan = plan
        self.ledger = ExecutionLedger()
        self._exit = contextlib.ExitStack()
        self.settings = settings or chaos_settings()
        self.clock = SystemClock()
        self.raw = self._exit.enter_context(self._open_backend())
        if backend_kind == "moto":
            rates = plan.rates
            install_aws_faults(self.raw, plan, throttle=rates.write_fails, internal=rates.write_fails / 2,
                               lost=rates.write_lost)
        self.faulty: Backend = faulty_backend(self.raw, plan)

    def _open_backend(self):
        if self.kind == "moto":
            from stepline.aws.moto_env import moto_backend

            return moto_backend(self.clock, prefix=f"chaos{uuid.uuid4().hex[:6]}")
        from stepline.local import local_backend

        return local_backend(str(self.tmp / "chaos.db"), self.clock)

    def __enter__(self) -> "ChaosStack":
        try:
            self._start()
        except BaseException:
            self._exit.close()  # what started so far, the backend included
            raise
        return self

    def _start(self) -> None:
        app_port, own_port, ts_port = free_port(), free_port(), free_port()
        self.proxy = FaultyAppProxy(f"http://127.0.0.1:{app_port}", self.plan, HANG_S).start()
        self._exit.callback(self.proxy.stop)
        self.own_proxy = FaultyAppProxy(f"http://127.0.0.1:{own_port}", self.plan, HANG_S).start()
        self._exit.callback(self.own_proxy.stop)
        self.ts_proxy = FaultyAppProxy(f"http://127.0.0.1:{ts_port}", self.plan, HANG_S).start()
        self._exit.callback(self.ts_proxy.stop)
        urls = [self.proxy.url(p) for p in ("/api/inngest",)] + [
            self.own_proxy.url("/api/inngest"),
            self.ts_proxy.url("/api/inngest"),
        ]
        options = DevOptions(port=free_port(), db_path=str(self.tmp / "chaos.db"), backend=self.kind,
                             app_urls=urls, workers=8)
        self.runtime = DevRuntime(options, self.settings, clock=self.clock,
                                  caller=LedgerCaller(self.ledger), backend=self.faulty)
        self._wrap_executor()
        self._count_sweeps()
        self._note_refused_checkpoints()
        self.runtime.start()
        self._exit.callback(self.runtime.stop)
        self.app = SdkApp(self.runtime.url, port=app_port, script=APP_SCRIPT)
        self._exit.callback(self.app.stop)
        self.own_ledger = self.tmp / "own-ledger.jsonl"
        self.own_app = Supervised(lambda: SdkApp(self.runtime.url, port=own_port, script=OWN_APP_SCRIPT,
                                                 extra_env={"LEDGER_FILE": str(self.own_ledger)}))
        self._exit.callback(self.own_app.stop)
        self.ts_app = TsChaosApp(self.runtime.url, ts_port)
        self._exit.callback(self.ts_app.stop)
        for app_id in (APP_ID, *APP_OF_SHAPE.values()):
            wait_for(lambda app_id=app_id: self.raw.store.get_app(app_id), timeout_s=30, what=f"{app_id} to sync")

    @property
    def dropped(self) -> set[str]:
        """Nonces of answers a proxy threw away."""
        return self.proxy.dropped | self.own_proxy.dropped | self.ts_proxy.dropped

    def _note_refused_checkpoints(self) -> None:
        """Nonces of steps whose checkpoint the API refused (a stale call gets 409; a store
        fault 503, retried by the SDK): each was run, and may never have been stored."""
        self.refused: set[str] = set()
        server = self.runtime.server._server  # the dev server's HTTP server, holding the API
        server.resolver = _NotingRefusals(server.resolver, self.refused)

    @property
    def forwarded(self) -> set[str]:
        """Nonces of checkpoint stream lines a proxy passed on to the executor."""
        return self.own_proxy.forwarded

    def __exit__(self, *exc: Any) -> None:
        self._exit.close()

    def _wrap_executor(self) -> None:
        executor = self.runtime.engine.executor
        handle = executor.handle
        ledger = self.ledger

        def handle_under_faults(body: dict[str, Any], **kwargs: Any) -> None:
            with ledger.message(str(body.get("run_id") or "")), executing():
                try:
                    handle(body, **kwargs)
                except InjectedCrash as crash:
                    # The process "died": the queue delivers the message again, as SQS would.
                    raise RuntimeError(f"executor crashed {crash}") from None

        executor.handle = handle_under_faults  # type: ignore[method-assign]

    def _count_sweeps(self) -> None:
        """Tally what the sweeper sent: the runs that only it brought back."""
        sweeper = self.runtime.engine.sweeper
        sweep = sweeper.sweep
        self.swept: Counter[str] = Counter()

        def counted(*args: Any, **kwargs: Any):
            report = sweep(*args, **kwargs)
            self.swept.update(report.sent)
            return report

        sweeper.sweep = counted  # type: ignore[method-assign]

    # -- driving -----------------------------------------------------------------------------
    def send_workload(self, workload: "Workload", batch: int = 20) -> list[tuple[str, str, dict[str, Any]]]:
        """Send every event (and, for waits that want one, the matching chaos/go shortly after);
        returns (shape, internal id, event) per accepted workload event."""
        accepted: list[tuple[str, str, dict[str, Any]]] = []
        for i in range(0, len(workload.events), batch):
            chunk = workload.events[i:i + batch]
            ids = self.send([e for _, e in chunk])
            accepted.extend((shape, eid, e) for (shape, e), eid in zip(chunk, ids))
            go = [{"name": "chaos/go", "data": {"key": e["data"]["key"]}, "id": f"go-{e['id']}"}
                  for shape, e in chunk if shape == "wait" and e["data"].get("go")]
            if go:
                time.sleep(0.3)
                self.send(go)
        return accepted

    def send(self, events: list[dict[str, Any]]) -> list[str]:
        """POST until accepted: a refused (5xx) or broken send is retried with the same event
        ids, as the SDKs do, so the store's dedupe makes it exactly one event."""
        for _ in range(50):
            try:
                status, body = http("POST", f"{self.runtime.url}/e/chaos", events)
            except OSError:
                status, body = 0, None
            if status == 200:
                return body["ids"]
            time.sleep(0.2)
        raise AssertionError(f"events never accepted: last answer {status} {body!r}")



class _NotingRefusals:
    def __init__(self, inner: Any, refused: set[str]) -> None:
        self.inner, self.refused = inner, refused

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = self.inner.resolve(event, context)
        if str(event.get("rawPath", "")).startswith("/v1/checkpoint/") and int(result["statusCode"]) >= 300:
            self.refused.update(n.decode() for n in NONCE.findall((event.get("body") or "").encode()))
        return result


class TsChaosApp(SdkApp):
    """tests/chaos/ts_app.js in a Node process, on the SDK the TypeScript tests pin."""

    def __init__(self, stepline_url: str, port: int) -> None:
        from tests.ts.node import ensure_installed

        self.port = port
        self.url = f"http://127.0.0.1:{port}/api/inngest"
        env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
        self.proc = subprocess.Popen(
            ["node", str(TS_APP_SCRIPT), "--port", str(port), "--sdk-dir", str(ensure_installed(4))],
            env={**env, "INNGEST_DEV": stepline_url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._up, what="the TypeScript chaos app to listen")


class Supervised:
    """An app process kept running: started again, on its port, whenever it dies (the
    checkpointing app kills itself mid-step on purpose)."""

    def __init__(self, start: Any) -> None:
        self._start = start
        self.app = start()
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="chaos-app-supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            if self.app.proc.poll() is None:
                continue
            try:
                self.app = self._start()
                self.restarts += 1
            except AssertionError:  # it did not come up: try again
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.app.stop()


# Runs per fresh stack. moto scans the whole table on every Query (and the engine reads a run
# with one), so one moto table holding a thousand runs makes every read a thousand times slower:
# the AWS adapters run the workload in rounds of this many, each on a fresh moto account.
ROUND_RUNS = {"sqlite": 1000, "moto": 100}


def run_chaos(backend_kind: str, tmp: Path, runs: int, seed: int, *, rates: FaultRates | None = None,
              timeout_s: float | None = None, shapes: tuple[str, ...] = SHAPES) -> ChaosReport:
    """``runs`` runs of the mixed workload under random faults, audited; in rounds of
    ``ROUND_RUNS`` runs, each on a fresh stack with its own seed."""
    total = ChaosReport(backend_kind, runs, seed)
    size = ROUND_RUNS[backend_kind]
    for index, first in enumerate(range(0, runs, size)):
        count = min(size, runs - first)
        round_seed = seed if index == 0 else seed * 1000 + index
        plan = FaultPlan(round_seed, rates or FaultRates.chaos())
        workload = Workload.mixed(count, round_seed, shapes)
        round_tmp = tmp / f"round-{index}"
        round_tmp.mkdir(parents=True, exist_ok=True)
        total.add(_run_workload(backend_kind, round_tmp, plan, workload, round_seed,
                                timeout_s or max(120.0, count * 0.5)))
    return total


def run_crash_points(backend_kind: str, tmp: Path, shapes: tuple[str, ...] = SHAPES,
                     timeout_s: float = 120.0) -> ChaosReport:
    """Stop the executor at every one of its writes in turn, before and after the write applies:
    first one clean run per shape counts its writes (N), then 2N runs per shape, each crashing at
    its own point, all at once; every one must still end as its shape allows (Completed, but for
    the vanishing shape) with each step once."""
    plan = FaultPlan(0, FaultRates.none())
    stack_holder: list[ChaosStack] = []

    def key_of_run(run_id: str) -> str:
        run = stack_holder[0].raw.store.get_run(run_id)
        return str(((run.events or [{}])[0].get("data") or {}).get("key")) if run else ""

    plan.crash_points = CrashPoints({}, key_of_run)
    report = ChaosReport(backend_kind, 0, 0)
    started = time.monotonic()
    with ChaosStack(backend_kind, tmp, plan, settings=chaos_settings(step_timeout_s=1.5)) as stack:
        stack_holder.append(stack)
        calibration = Workload([(shape, _event(shape, f"count-{shape}", f"count-{shape}")) for shape in shapes])
        accepted = stack.send_workload(calibration)
        Audit(stack, report, accepted).wait_terminal(timeout_s)
        cases = []
        for shape in shapes:
            for n in range(1, plan.crash_points.counts[f"count-{shape}"] + 1):
                for when in ("before", "after"):
                    key = f"crash-{shape}-{n}-{when}"
                    plan.crash_points.points[key] = (n, when)
                    cases.append((shape, _event(shape, key, key)))
        report.runs = len(calibration.events) + len(cases)
        accepted += stack.send_workload(Workload(cases))
        _audit(stack, report, accepted, timeout_s)
    report.seconds = time.monotonic() - started
    return report


def _event(shape: str, key: str, event_id: str, **data: Any) -> dict[str, Any]:
    return {"name": f"chaos/{shape}", "id": event_id, "data": {"key": key, **data}}


def _run_workload(backend_kind: str, tmp: Path, plan: FaultPlan, workload: "Workload", seed: int,
                  timeout_s: float) -> ChaosReport:
    report = ChaosReport(backend_kind, len(workload.events), seed)
    started = time.monotonic()
    with ChaosStack(backend_kind, tmp, plan) as stack:
        sampler = TimerSampler(stack, report) if backend_kind == "sqlite" else None
        if sampler:
            sampler.start()
        accepted = stack.send_workload(workload)
        try:
            _audit(stack, report, accepted, timeout_s)
        finally:
            if sampler:
                sampler.stop()
    report.seconds = time.monotonic() - started
    return report


def _audit(stack: ChaosStack, report: ChaosReport, accepted, timeout_s: float) -> None:
    audit = Audit(stack, report, accepted)
    audit.wait_terminal(timeout_s)
    stack.plan.enabled = False
    audit.check()
    report.faults = Counter(stack.plan.injected)
    report.swept = Counter(stack.swept)


class TimerSampler(threading.Thread):
    """Every half second, in one consistent SQLite snapshot: every pending sleep, wait and invoke
    without a memo has a message on the queue or a timer naming its run and step."""

    def __init__(self, stack: ChaosStack, report: ChaosReport) -> None:
        super().__init__(name="chaos-timer-sampler", daemon=True)
        self.path = stack.tmp / "chaos.db"
        self.report = report
        self._stop_event = threading.Event()
        self.reported: set[tuple[str, str]] = set()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)

    def run(self) -> None:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        try:
            while not self._stop_event.wait(0.5):
                self.sample(db)
        finally:
            db.close()

    def sample(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN")
        try:
            waiting = db.execute(
                "SELECT p.run_id, p.step_id, p.op FROM pending p JOIN runs r ON r.run_id = p.run_id"
                " WHERE p.op IN ('Sleep', 'WaitForEvent', 'InvokeFunction')"
                " AND r.status NOT IN ('Completed', 'Failed', 'Cancelled')"
                " AND NOT EXISTS (SELECT 1 FROM memos m WHERE m.run_id = p.run_id AND m.step_id = p.step_id)"
            ).fetchall()
            bodies = [row[0] for row in db.execute("SELECT body FROM queue")]
            bodies += [row[0] for row in db.execute("SELECT body FROM timers")]
        finally:
            db.execute("COMMIT")
        armed = set()
        for text in bodies:
            try:
                body = json.loads(text)
            except ValueError:
                continue
            armed.add((body.get("run_id"), body.get("step")))
        self.report.timer_samples += 1
        for run_id, step_id, op in waiting:
            if (run_id, step_id) not in armed and (run_id, step_id) not in self.reported:
                self.reported.add((run_id, step_id))
                self.report.violations.append(f"run {run_id}: {op} {step_id} waits with no timer")


class Audit:
    def __init__(self, stack: ChaosStack, report: ChaosReport, accepted: list[tuple[str, str, dict[str, Any]]]) -> None:
        self.stack = stack
        self.store = stack.raw.store
        self.report = report
        self.accepted = accepted
        self.aborted: set[str] = set()  # runs whose checkpoint stream the app saw cut
        self.crashed: set[str] = set()  # nonces of executions in app processes that crashed

    def runs_of(self, internal_id: str):
        return self.store.runs_for_event(internal_id)

    def wait_terminal(self, budget_s: float) -> None:
        """Until every accepted event's run has ended. Polls by point reads only: the run id is
        derived from the event (``run_id_for``), and a Query per poll would scan the whole
        table on moto."""
        deadline = time.monotonic() + budget_s
        pending = list(self.accepted)
        while pending and time.monotonic() < deadline:
            pending = [item for item in pending if not self._ended(item)]
            if pending:
                time.sleep(0.5)
        for shape, internal_id, event in pending:
            runs = self.runs_of(internal_id)
            state = [self.describe(r.run_id) for r in runs] or "no run"
            self.report.violations.append(f"{shape} event {event['id']}: not terminal after {budget_s:.0f}s: {state}")

    def _ended(self, item: tuple[str, str, dict[str, Any]]) -> bool:
        shape, internal_id, _ = item
        stored = self.store.get_event(internal_id)
        app_id = APP_OF_SHAPE.get(shape, APP_ID)
        run = self.store.get_run(run_id_for(stored, f"{app_id}-chaos-{shape}")) if stored else None
        return run is not None and run.status.terminal

    def describe(self, run_id: str) -> str:
        """A stuck run as an operator would look at it: lease, memos, pending ops, and (on
        SQLite) the queue messages and timers that name it."""
        state = self.store.load_run(run_id)
        if state is None:
            return f"{run_id}: missing"
        run = state.run
        out = (f"{run_id} {run.status.value} lease={run.lease_owner}@{run.lease_until} "
               f"memos={[m.name for m in state.memos]} pending={[(p.name, p.op, p.detail) for p in state.pending.values()]}")
        if self.stack.kind == "sqlite":
            db = sqlite3.connect(f"file:{self.stack.tmp / 'chaos.db'}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT body, visible_at, receive_count FROM queue WHERE body LIKE ?", (f"%{run_id}%",)).fetchall()
                rows += db.execute("SELECT body, fire_at, 'timer' FROM timers WHERE body LIKE ?", (f"%{run_id}%",)).fetchall()
            finally:
                db.close()
            out += f" queued={rows}"
        out += self.describe_lines(state)
        out += f" faults={self.stack.plan.history(run_id)}"
        return out

    def describe_lines(self, state) -> str:
        """The concurrency keys of a stuck run as one read sees them: each slot (index, owner,
        ms left on its lease, token) and the line head (position, run, step, ms since joined)."""
        fn = self.store.get_function(state.run.fn_id)
        if fn is None or not fn.config.get("concurrency"):
            return ""
        now = self.stack.clock.now_ms()
        keys = {}
        for limit in limits_for(fn, state.run.events[0] if state.run.events else {}):
            view = self.store.slot_view(limit.key, 20)
            keys[limit.key] = {
                "slots": [(h.index, h.owner, h.until - now, h.token) for h in view.holders],
                "line": [(e.position, e.body.get("run_id"), e.body.get("step"), now - e.created_at)
                         for e in view.line],
            }
        return f" concurrency={keys}"

    def check(self) -> None:
        ledger = http("GET", f"http://127.0.0.1:{self.stack.app.port}/ledger")[1]
        own, self.crashed, self.aborted = read_ledger(self.stack.own_ledger)
        ledger.update(own)
        ledger.update(http("GET", f"http://127.0.0.1:{self.stack.ts_app.port}/ledger")[1])
        self.report.app_crashes += self.stack.own_app.restarts
        targets = http("GET", f"http://127.0.0.1:{self.stack.app.port}/targets")[1]
        runs = []
        for shape, internal_id, event in self.accepted:
            found = self.runs_of(internal_id)
            if len(found) != 1:
                self.report.violations.append(f"{shape} event {event['id']}: {len(found)} runs, expected 1")
            runs.extend((shape, run) for run in found)
            if shape == "invoke":
                runs.extend(("child", run) for run in self.children(found))
        for shape, listed in runs:
            run = self._settled(listed)
            if shape == "vanishing":
                self.check_vanishing(run, targets)
            else:
                self.report.runs_by_status[run.status.value] += 1
                if run.status != RunStatus.COMPLETED:
                    self.report.violations.append(
                        f"run {run.run_id} ({run.fn_id}) ended {run.status.value}: {run.error}")
            self.check_steps(run.run_id, ledger)

    def check_vanishing(self, run, targets: dict[str, list[str]]) -> None:
        """Failed, or Completed with the vanished step's result, or Completed without ever
        calling it (the reply that planned it was lost, and the code had moved on when discovery
        was repeated): never Completed after its call failed (a failed call of a planned step
        lost, the run finished as if it had never failed)."""
        state = self.store.load_run(run.run_id)
        ran = state is not None and any(m.name == VANISHING_STEP for m in state.memos)
        called = VANISHING_HASH in targets.get(run.run_id, [])
        self.report.vanishing[run.status.value] += 1
        if run.status == RunStatus.COMPLETED and called and not ran:
            self.report.violations.append(f"run {run.run_id} (vanishing) Completed without step {VANISHING_STEP}")
        elif run.status not in (RunStatus.COMPLETED, RunStatus.FAILED):
            self.report.violations.append(f"run {run.run_id} (vanishing) ended {run.status.value}: {run.error}")

    def _settled(self, run, wait_s: float = 60.0):
        """The run once it has ended, or as it is after ``wait_s``. A child announces its end to
        its parent before writing it, so after a crash in between the parent can be done while
        the child's redelivered message (after its lease) is still on the way."""
        deadline = time.monotonic() + wait_s
        while not run.status.terminal and time.monotonic() < deadline:
            time.sleep(0.5)
            run = self.store.get_run(run.run_id) or run
        return run

    def children(self, parents) -> list:
        """The child run of each parent's invoke step, found by the invocation event's id
        (derived from the caller, so a re-dispatch finds the same child)."""
        out = []
        for parent in parents:
            state = self.store.load_run(parent.run_id)
            for memo in state.memos if state else []:
                if memo.name != "call":
                    continue
                event_id = derived_ulid(parent.created_at, correlation_id(parent.run_id, memo.step_id))
                found = self.runs_of(event_id)
                if len(found) != 1:
                    self.report.violations.append(f"run {parent.run_id}: {len(found)} invoked children, expected 1")
                out.extend(found)
        return out

    def check_steps(self, run_id: str, ledger: dict[str, list[str]]) -> None:
        state = self.store.load_run(run_id)
        writes = self.stack.faulty.store.memo_writes  # type: ignore[attr-defined]
        handled, lost, dropped = self.stack.ledger.handled, self.stack.ledger.lost, self.stack.dropped
        for memo in state.memos:
            applied = writes.get((run_id, memo.step_id), [])
            if len(applied) > 1:
                self.report.violations.append(f"run {run_id} step {memo.name}: memo written {len(applied)} times")
            elif applied and applied[0] != memo.value:
                self.report.violations.append(f"run {run_id} step {memo.name}: stored memo differs from the one written")
            data = memo.value.get("data")
            if not (isinstance(data, str) and _JSON_NONCE.fullmatch(data)):
                continue  # not a step body's result (a sleep, wait, invoke)
            self.report.steps += 1
            executions = ledger.get(f"{run_id}/{memo.name}", [])
            self.report.executions += len(executions)
            if data not in executions:
                self.report.violations.append(f"run {run_id} step {memo.name}: memo {data} was never produced by the app")
            for nonce in executions:
                if nonce == data:
                    continue
                if nonce in dropped or nonce in lost:
                    continue
                if nonce not in handled and (
                    run_id in self.aborted
                    or nonce in self.crashed
                    or nonce in self.stack.refused
                    or (nonce in self.stack.forwarded and run_id in self.stack.ledger.lost_runs)
                ):
                    # A checkpointed call whose stream was cut (the executor stopped reading, a
                    # proxy broke it, or the app process died), or whose line was on its way
                    # when the executor reading it failed: it was never stored.
                    self.report.undelivered += 1
                    continue
                why = "reached the executor, which carried on" if nonce in handled else "unaccounted for"
                self.report.violations.append(
                    f"run {run_id} ({state.run.fn_id}) step {memo.name}: extra execution {nonce} ({why}); "
                    f"faults: {self.stack.plan.history(run_id)}")

"""Checkpointed execution with the official TypeScript SDK, majors 3 (``checkpointing: true``)
and 4 (its default), on SQLite and on the AWS adapters (moto): steps run inline in one call and
each is stored through POST /v1/checkpoint/{run_id}/async as it finishes.

Counters in the app prove how many times each step body ran; the executor's call log proves
how many calls a run took; the memos say which steps came in as checkpoints."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from stepline.engine.sync import sync_app
from tests.e2e.conftest import http, wait_for
from tests.ts.conftest import key
from tests.ts.node import TsApp

FN = "ts-app-"


def memos_of(ts_stack, run_id: str) -> list:
    state = ts_stack.stepline.runtime.backend.store.load_run(run_id)
    return sorted(state.memos, key=lambda m: m.seq)


def checkpointed(ts_stack, run_id: str) -> int:
    return sum(1 for m in memos_of(ts_stack, run_id) if m.detail.get("checkpointed"))


def test_a_long_chain_runs_in_a_handful_of_calls(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    [event_id] = stepline.send({"name": "test/chain", "data": {"key": k, "steps": 40}})
    [run] = stepline.wait_runs_done(event_id, timeout_s=60)
    assert run["status"] == "Completed", run
    assert run["output"] == {"total": sum(range(1, 41))}
    assert [app.count("chain", f"s{i}", k) for i in range(1, 41)] == [1] * 40
    calls = ts_stack.calls.for_run(run["run_id"])
    assert len(calls) <= 3, calls  # one call in the common case (the SDK's 10 s runtime cap aside)
    assert checkpointed(ts_stack, run["run_id"]) == 40
    # The memos are ordinary ones: every step once, in the order the steps ran.
    assert [m.value for m in memos_of(ts_stack, run["run_id"])] == [{"data": i} for i in range(1, 41)]


def test_with_checkpointing_off_every_step_is_a_call_of_its_own(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    [event_id] = stepline.send({"name": "test/chain.plain", "data": {"key": k, "steps": 5}})
    [run] = stepline.wait_runs_done(event_id, timeout_s=60)
    assert run["status"] == "Completed" and run["output"] == {"total": 15}, run
    assert [app.count("chain-plain", f"s{i}", k) for i in range(1, 6)] == [1] * 5
    assert len(ts_stack.calls.for_run(run["run_id"])) == 6  # five steps, then the return
    assert checkpointed(ts_stack, run["run_id"]) == 0


def test_parallel_and_sleep_mixed_in(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    [event_id] = stepline.send({"name": "test/mixed", "data": {"key": k, "sleep_s": 1}})
    [run] = stepline.wait_runs_done(event_id, timeout_s=60)
    assert run["status"] == "Completed", run
    names = ["a", "b", "p1", "p2", "c", "d", "e", "f"]
    assert run["output"] == {"steps": names}
    assert [app.count("mixed", n, k) for n in names] == [1] * 8
    # The sequential steps came in as checkpoints, before and after the group and the sleep;
    # the branches ran as planned steps, one call each.
    memos = {m.name: m for m in memos_of(ts_stack, run["run_id"])}
    assert {n for n in names if memos[n].detail.get("checkpointed")} == {"a", "b", "c", "d", "e", "f"}
    assert len(ts_stack.calls.for_run(run["run_id"])) <= 8


def test_a_step_failing_after_checkpointed_steps_runs_none_of_them_again(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    [event_id] = stepline.send({"name": "test/caught.after", "data": {"key": k}})
    [run] = stepline.wait_runs_done(event_id, timeout_s=60)
    assert run["status"] == "Completed", run
    assert run["output"] == {"head": ["a", "b"], "caught": "c fails for good", "tail": "d"}
    assert [app.count("caught-after", n, k) for n in "abcd"] == [1, 1, 1, 1]


def test_a_cancelled_run_stops_checkpointing(ts_stack):
    """The SDK's next checkpoint is refused with 409; it stops, and the run stays cancelled."""
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    [event_id] = stepline.send({"name": "test/chain", "data": {"key": k, "steps": 30, "step_ms": 150}})
    run_id = wait_for(lambda: (stepline.runs(event_id) or [{}])[0].get("run_id"), what="the run")
    wait_for(lambda: app.count("chain", "s3", k) == 1, timeout_s=30, what="three steps")
    code, _ = http("DELETE", f"{stepline.url}/v1/runs/{run_id}", headers=stepline.auth_headers)
    assert code == 200
    time.sleep(1.5)  # the SDK meets the 409 at a checkpoint within half a second
    ran = sum(app.count("chain", f"s{i}", k) for i in range(1, 31))
    time.sleep(1.0)
    assert sum(app.count("chain", f"s{i}", k) for i in range(1, 31)) == ran < 30
    [run] = stepline.runs(event_id)
    assert run["status"] == "Cancelled", run


def test_a_crash_mid_run_resumes_after_the_last_checkpoint(ts_stack, tmp_path):
    """The app process dies inside step 5 of 8: steps 1-4 were checkpointed and never run again,
    the step in flight runs once more, and the run completes on the restarted process."""
    stepline = ts_stack.stepline
    app_id = f"ts-crash-v{ts_stack.major}"
    counter_file, crash_dir = tmp_path / "counts", tmp_path / "crashes"
    crash_dir.mkdir()
    env = {
        "TS_APP_ID": app_id,
        "CHAIN_EVENT": "test/chain.crash",
        "COUNTER_FILE": str(counter_file),
        "CRASH_DIR": str(crash_dir),
    }
    app = TsApp(ts_stack.major, stepline.url, extra_env=env, log_dir=tmp_path)
    port = app.port
    restarted = None
    try:
        assert sync_app(app.url, stepline.runtime.settings, attempts=20, interval_s=0.25).ok
        k = key()
        [event_id] = stepline.send({"name": "test/chain.crash", "data": {"key": k, "steps": 8, "crash_at": 5}})
        wait_for(lambda: app.proc.poll() is not None, timeout_s=30, what="the app to crash")
        restarted = TsApp(ts_stack.major, stepline.url, port=port, extra_env=env, log_dir=tmp_path)
        [run] = stepline.wait_runs_done(event_id, timeout_s=60)
        assert run["status"] == "Completed" and run["output"] == {"total": 36}, run
        counts = Counter(_lines(counter_file))
        assert [counts[f"chain/s{i}/{k}"] for i in range(1, 9)] == [1, 1, 1, 1, 2, 1, 1, 1]
    finally:
        app.stop()
        if restarted is not None:
            restarted.stop()


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]

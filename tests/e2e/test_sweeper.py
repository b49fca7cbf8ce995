"""The sweeper end to end, with the official Python SDK: a run sleeping for a year whose wake-up
was deleted stays asleep past its time, and `stepline sweep` (the REST route behind it) wakes it,
on SQLite and on the AWS adapters (moto), with a manual clock. And `stepline dev` sweeps by
itself every ``sweep_interval_s``."""

from __future__ import annotations

import io
import time
import uuid
from contextlib import redirect_stdout

import pytest

from stepline.cli import main as stepline
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine import messages
from stepline.engine.clock import ManualClock
from stepline.settings import Settings
from tests.e2e.conftest import APP_ID, SdkApp, Stepline, free_port, wait_for
from tests.engine.scripted_app import lose_wake_up

MINUTE_MS = 60 * 1000
YEAR_MS = 365 * 24 * 60 * MINUTE_MS


def sleeping_stack(backend: str, tmp_path, settings: Settings):
    """A dev runtime on a manual clock, the SDK app synced, and one run of `hibernate` asleep
    for a year with its wake-up deleted. Returns (runtime, app, stepline, event id, the run's
    counter key, clock)."""
    clock = ManualClock(start_ms=int(time.time() * 1000))
    port, app_port = free_port(), free_port()
    options = DevOptions(port=port, db_path=str(tmp_path / "dev.db"), backend=backend,
                         app_urls=[f"http://127.0.0.1:{app_port}/api/inngest"])
    runtime = DevRuntime(options, settings, clock=clock).start()
    app = SdkApp(runtime.url, port=app_port)
    wait_for(lambda: runtime.backend.store.get_app(APP_ID), what="the app to sync")
    steps = Stepline(runtime)
    key = uuid.uuid4().hex[:8]
    [event_id] = steps.send({"name": "test/hibernate", "data": {"key": key}})
    run = wait_for(lambda: (steps.runs(event_id) or [None])[0], what="the run")

    def asleep():
        state = runtime.backend.store.load_run(run["run_id"])
        return next((op for op in state.pending.values() if op.name == "a-year"), None)

    nap = wait_for(asleep, what="the run to sleep")
    wait_for(lambda: runtime.backend.store.get_run(run["run_id"]).lease_owner is None, what="the release")
    lose_wake_up(runtime.backend, messages.wake(run["run_id"], nap.step_id))
    return runtime, app, steps, event_id, key, clock


@pytest.mark.parametrize("backend", ["sqlite", "moto"])
def test_stepline_sweep_wakes_a_run_whose_sleep_lost_its_timer(backend, tmp_path):
    runtime, app, steps, event_id, key, clock = sleeping_stack(backend, tmp_path, Settings(mode="dev"))
    try:
        clock.advance(YEAR_MS + 10 * MINUTE_MS)
        time.sleep(0.6)  # the driver's timers and workers had their turn: nothing wakes the run
        assert steps.runs(event_id)[0]["status"] == "Running"
        assert app.count("hibernate", "after", key) == 0

        clock.advance(int(runtime.settings.sweep_grace_s * 1000))
        out = io.StringIO()
        with redirect_stdout(out):
            assert stepline(["sweep", "--url", runtime.url]) == 0
        assert "re-armed 1 run" in out.getvalue()

        [done] = steps.wait_runs_done(event_id)
        assert done["status"] == "Completed" and done["output"] == "awake"
        assert app.count("hibernate", "before", key) == 1 and app.count("hibernate", "after", key) == 1
    finally:
        app.stop()
        runtime.stop()


def test_stepline_dev_sweeps_on_its_own(tmp_path):
    settings = Settings(mode="dev", sweep_interval_s=0.2)
    runtime, app, steps, event_id, key, clock = sleeping_stack("sqlite", tmp_path, settings)
    try:
        clock.advance(YEAR_MS + 10 * MINUTE_MS)
        time.sleep(0.6)  # swept, but overdue by less than the grace period: left alone
        assert steps.runs(event_id)[0]["status"] == "Running"

        clock.advance(15 * MINUTE_MS)
        [done] = steps.wait_runs_done(event_id)
        assert done["output"] == "awake" and app.count("hibernate", "after", key) == 1
    finally:
        app.stop()
        runtime.stop()

"""Time-driven behaviour with a manual clock, on SQLite and on the AWS adapters (moto): a year-long
sleep (EventBridge Scheduler plus SQS delay on AWS) and cron triggers, tested in seconds."""

from __future__ import annotations

import datetime
import time
import uuid

import pytest

from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.clock import ManualClock
from stepline.settings import Settings
from tests.e2e.conftest import APP_ID, SdkApp, Stepline, free_port, http, wait_for

DAY_MS = 24 * 60 * 60 * 1000


def manual_stack(backend: str, tmp_path, clock: ManualClock):
    port, app_port = free_port(), free_port()
    options = DevOptions(port=port, db_path=str(tmp_path / "dev.db"), backend=backend,
                         app_urls=[f"http://127.0.0.1:{app_port}/api/inngest"])
    runtime = DevRuntime(options, Settings(mode="dev", retry_base_ms=200), clock=clock).start()
    app = SdkApp(runtime.url, port=app_port)
    wait_for(lambda: runtime.backend.store.get_app(APP_ID), what="the app to sync")
    return runtime, app


@pytest.mark.parametrize("backend", ["sqlite", "moto"])
def test_a_year_long_sleep_wakes_when_the_clock_gets_there(backend, tmp_path):
    clock = ManualClock(start_ms=int(time.time() * 1000))
    runtime, app = manual_stack(backend, tmp_path, clock)
    stepline = Stepline(runtime)
    try:
        k = uuid.uuid4().hex[:8]
        [event_id] = stepline.send({"name": "test/hibernate", "data": {"key": k}})
        run = wait_for(lambda: (stepline.runs(event_id) or [None])[0], what="the run")
        state = lambda: runtime.backend.store.load_run(run["run_id"])  # noqa: E731
        wait_for(lambda: any(op.name == "a-year" for op in state().pending.values()), what="the run to sleep")
        clock.advance(364 * DAY_MS)
        time.sleep(0.6)
        assert stepline.runs(event_id)[0]["status"] == "Running"
        assert app.count("hibernate", "after", k) == 0
        clock.advance(2 * DAY_MS)
        [done] = stepline.wait_runs_done(event_id)
        assert done["output"] == "awake"
        assert app.count("hibernate", "before", k) == 1 and app.count("hibernate", "after", k) == 1
    finally:
        app.stop()
        runtime.stop()


@pytest.mark.parametrize("backend", ["sqlite", "moto"])
def test_cron_triggers_fire_on_the_clock_and_overlaps_start_one_run(backend, tmp_path):
    # 07:00 UTC on a winter day: both crons (09:00 Paris = 08:00 UTC, and 08:00 UTC) fire together.
    start = datetime.datetime(2030, 1, 15, 7, 0, tzinfo=datetime.timezone.utc)
    clock = ManualClock(start_ms=int(start.timestamp() * 1000))
    runtime, app = manual_stack(backend, tmp_path, clock)
    stepline = Stepline(runtime)

    def scheduled_runs():
        _, listing = http("GET", f"{runtime.url}/v1/events?name=inngest/scheduled.timer&limit=100")
        return [r for e in listing["data"] for r in stepline.runs(e["internal_id"])]

    try:
        time.sleep(0.5)
        assert scheduled_runs() == []
        clock.advance(60 * 60 * 1000)  # 08:00 UTC
        runs = wait_for(lambda: (lambda rs: rs if rs and all(r["status"] == "Completed" for r in rs) else None)(scheduled_runs()),
                        what="the 08:00 cron run")
        time.sleep(0.5)
        runs = scheduled_runs()
        assert len(runs) == 1, runs
        assert runs[0]["output"]["event"] == "inngest/scheduled.timer"
        clock.advance(DAY_MS)  # the next morning
        wait_for(lambda: len(scheduled_runs()) == 2 and all(r["status"] == "Completed" for r in scheduled_runs()),
                 what="the next day's cron run")
        assert app.counters().get("nightly/report/", 0) == 2
    finally:
        app.stop()
        runtime.stop()

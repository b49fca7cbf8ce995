"""Kill -9 `stepline dev` while runs sleep, start it again on the same SQLite file: every run
finishes, and no step before the sleep runs twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

from tests.e2e.conftest import SdkApp, free_port, http, wait_for


def start_dev(port: int, db: str, app_url: str | None) -> subprocess.Popen:
    args = [sys.executable, "-m", "stepline.cli", "dev", "--port", str(port), "--db", db]
    if app_url:
        args += ["-u", app_url]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _healthy(port), what="stepline dev to listen")
    return proc


def _healthy(port: int) -> bool:
    try:
        return http("GET", f"http://127.0.0.1:{port}/health")[0] == 200
    except OSError:
        return False


def _sleeping(url: str, event_id: str) -> bool:
    runs = http("GET", f"{url}/v1/events/{event_id}/runs")[1]["data"]
    if len(runs) != 1:
        return False
    steps = http("GET", f"{url}/v1/runs/{runs[0]['run_id']}")[1]["data"]["steps"]
    return any(s["kind"] == "sleep" and s["status"] == "Sleeping" for s in steps)


def test_kill_9_mid_sleep_loses_nothing(tmp_path):
    port, app_port = free_port(), free_port()
    db = str(tmp_path / "dev.db")
    url = f"http://127.0.0.1:{port}"
    app = SdkApp(url, port=app_port)
    dev = start_dev(port, db, app.url)
    try:
        wait_for(lambda: http("GET", f"{url}/v1/apps")[1]["data"], what="the app to sync")
        k = uuid.uuid4().hex[:8]
        keys = [f"{k}-{i}" for i in range(3)]
        ids = [
            http("POST", f"{url}/e/key", {"name": "test/sleep", "data": {"key": kk, "seconds": 4}})[1]["ids"][0]
            for kk in keys
        ]
        wait_for(lambda: all(app.count("sleeper", "before", kk) == 1 for kk in keys), what="steps before the sleep")
        # The app counts a step when it runs it; the kill must come after Stepline has recorded the
        # result and the sleep (a step whose result was never recorded runs again: at-least-once).
        wait_for(lambda: all(_sleeping(url, i) for i in ids), what="every run to record its sleep")

        dev.send_signal(signal.SIGKILL)
        dev.wait(10)
        dev = start_dev(port, db, None)

        def all_done():
            runs = [http("GET", f"{url}/v1/events/{i}/runs")[1]["data"] for i in ids]
            return all(len(r) == 1 and r[0]["status"] == "Completed" for r in runs) and runs

        runs = wait_for(all_done, timeout_s=30, what="every run to finish after the restart")
        assert all(r[0]["output"]["slept"] >= 3.9 for r in runs)
        for kk in keys:
            assert app.count("sleeper", "before", kk) == 1
            assert app.count("sleeper", "after", kk) == 1
    finally:
        if dev.poll() is None:
            os.kill(dev.pid, signal.SIGKILL)
        app.stop()


def test_kill_9_mid_step_resumes_at_once(tmp_path):
    """A step cut off by the kill never checkpointed, so it runs again (at-least-once); the run
    resumes right after the restart, not after the lost worker's timeouts expire."""
    port, app_port = free_port(), free_port()
    db = str(tmp_path / "dev.db")
    url = f"http://127.0.0.1:{port}"
    app = SdkApp(url, port=app_port)
    dev = start_dev(port, db, app.url)
    try:
        wait_for(lambda: http("GET", f"{url}/v1/apps")[1]["data"], what="the app to sync")
        k = uuid.uuid4().hex[:8]
        [event_id] = http("POST", f"{url}/e/key", {"name": "test/slow", "data": {"key": k, "seconds": 2}})[1]["ids"]
        wait_for(lambda: app.count("slow", "take-time", k) == 1, what="the slow step to start")

        dev.send_signal(signal.SIGKILL)
        dev.wait(10)
        dev = start_dev(port, db, None)

        def done():
            runs = http("GET", f"{url}/v1/events/{event_id}/runs")[1]["data"]
            return runs and runs[0]["status"] == "Completed" and runs[0]

        run = wait_for(done, timeout_s=20, what="the run to finish after the restart")
        assert run["output"] == "took time, finished"
        assert app.count("slow", "take-time", k) == 2
        assert app.count("slow", "finish", k) == 1
    finally:
        if dev.poll() is None:
            os.kill(dev.pid, signal.SIGKILL)
        app.stop()

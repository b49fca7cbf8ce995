"""``GET /metrics`` of a real `stepline dev` runtime (HTTP server, worker threads, SQLite), read
with the Prometheus client's own parser after runs that complete, fail, are cancelled and are
throttled, and a message that is dead-lettered."""

from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.http import HttpResponse
from stepline.settings import Settings
from tests.e2e.conftest import free_port, http, wait_for
from tests.engine.scripted_app import ScriptedApp, register

SCRIPTS = {
    "ok": [("run", "a"), ("run", "b")],
    "bad": [("run", "doomed")],
    "napper": [("sleep", "nap", "1d")],
    "slow": [("run", "s")],
}
CONFIGS = {"slow": {"throttle": {"limit": 1, "period": "1s", "burst": 1}}}


class FailingApp(ScriptedApp):
    def post(self, url, body, headers, timeout_s):
        if "fnId=bad" in url:
            error = {"name": "Bad", "message": "never", "stack": ""}
            failed = [{"op": "StepError", "id": "doomed", "name": "doomed", "error": error}]
            return HttpResponse(206, json.dumps(failed).encode(), {"x-inngest-no-retry": "true"})
        return super().post(url, body, headers, timeout_s)


@pytest.fixture
def runtime(tmp_path):
    options = DevOptions(port=free_port(), db_path=str(tmp_path / "dev.db"), workers=2)
    rt = DevRuntime(options, Settings(mode="dev"), caller=FailingApp(SCRIPTS)).start()
    register(rt.engine, list(SCRIPTS), CONFIGS)
    yield rt
    rt.stop()


def scrape(runtime) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"{runtime.url}/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def status_of(runtime, event_id: str) -> str | None:
    runs = runtime.backend.store.runs_for_event(event_id)
    return runs[0].status.value if runs else None


def send(runtime, name: str) -> str:
    status, body = http("POST", f"{runtime.url}/e/key", {"name": name, "data": {}})
    assert status == 200, body
    return body["ids"][0]


def test_metrics_count_runs_steps_flow_waits_and_dead_letters(runtime):
    ok, bad, napper = send(runtime, "app/ok"), send(runtime, "app/bad"), send(runtime, "app/napper")
    slow = [send(runtime, "app/slow") for _ in range(2)]
    wait_for(lambda: status_of(runtime, ok) == "Completed", what="the ok run")
    wait_for(lambda: status_of(runtime, bad) == "Failed", what="the bad run")
    wait_for(lambda: status_of(runtime, napper) == "Running", what="the napper to sleep")
    runtime.engine.cancel_run(runtime.backend.store.runs_for_event(napper)[0].run_id)
    for event_id in slow:
        wait_for(lambda e=event_id: status_of(runtime, e) == "Completed", what="the throttled runs")
    runtime.backend.queue.send({"kind": "no-such-kind"})
    wait_for(lambda: runtime.backend.dead_letters.list_dead(10), what="the dead letter")

    m = scrape(runtime)
    fn = lambda name: (("function", name),)  # noqa: E731
    assert m[("stepline_runs_started_total", fn("ok"))] == 1
    assert m[("stepline_runs_started_total", fn("slow"))] == 2
    assert m[("stepline_runs_ended_total", (("function", "ok"), ("status", "Completed")))] == 1
    assert m[("stepline_runs_ended_total", (("function", "bad"), ("status", "Failed")))] == 1
    assert m[("stepline_runs_ended_total", (("function", "napper"), ("status", "Cancelled")))] == 1
    assert m[("stepline_step_attempts_total", (("function", "ok"), ("kind", "StepRun"), ("status", "ok")))] == 2
    assert m[("stepline_step_attempts_total", (("function", "bad"), ("kind", "StepError"), ("status", "error")))] == 1
    assert m[("stepline_step_duration_seconds_count", (("function", "ok"), ("kind", "StepRun")))] == 2
    # The second throttled start waited for its turn (limit 1 a second).
    waited = m[("stepline_flow_wait_seconds_count", (("function", "slow"), ("limit", "throttle")))]
    assert waited == 1
    assert 0 < m[("stepline_flow_wait_seconds_sum", (("function", "slow"), ("limit", "throttle")))] <= 1
    assert m[("stepline_dead_letters_total", (("kind", "no-such-kind"),))] == 1
    assert ("stepline_queue_backlog", ()) in m and ("stepline_queue_oldest_age_seconds", ()) in m


def test_metrics_need_the_operator_key_in_cloud_mode(tmp_path):
    options = DevOptions(port=free_port(), db_path=str(tmp_path / "cloud.db"))
    settings = Settings(mode="cloud", event_keys=["evt"], signing_key="signkey-prod-" + "ab" * 16)
    with DevRuntime(options, settings) as rt:
        status, reply = http("GET", f"{rt.url}/metrics")
        assert status == 401, reply

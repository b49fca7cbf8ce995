"""Signals end to end with the official TypeScript SDK 4.x, on SQLite and on the AWS adapters
(moto): ``step.waitForSignal`` parks a run, ``inngest.sendSignal`` / ``step.sendSignal`` (and a
bare ``POST /v1/signals``) resume it once, ``onConflict`` decides between two runs waiting for
one signal, and a timeout resumes with null. Step counters from the app prove each step ran once.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from tests.e2e.conftest import Stepline, free_port, http, start_runtime, wait_for
from tests.ts.node import APP_ID, TsApp

STACKS = [(4, "sqlite"), (4, "moto")]


@pytest.fixture(scope="module", params=STACKS, ids=[f"v{m}-{b}" for m, b in STACKS])
def signal_stack(request, ts_packages, tmp_path_factory):
    major, backend = request.param
    tmp = tmp_path_factory.mktemp(f"signals-ts{major}-{backend}")
    port, app_port = free_port(), free_port()
    runtime = start_runtime(backend, tmp, [f"http://127.0.0.1:{app_port}/api/inngest"], port=port)
    app = None
    try:
        app = TsApp(major, runtime.url, port=app_port, log_dir=tmp)
        wait_for(lambda: runtime.backend.store.get_app(APP_ID), what="the TS app to sync")
        yield Stepline(runtime), app
    finally:
        if app is not None:
            app.stop()
        runtime.stop()


def _name() -> str:
    return f"approval/{uuid.uuid4().hex[:12]}"


def _waiting(stepline: Stepline, signal: str) -> str | None:
    """The run the signal's wait names now, if any."""
    wait = stepline.runtime.backend.signals.get_signal_wait(signal, stepline.runtime.engine.clock.now_ms())
    return wait.run_id if wait is not None else None


def _run_of(stepline: Stepline, event_id: str) -> str | None:
    runs = stepline.runs(event_id)
    return runs[0]["run_id"] if runs else None


def _wait_run(stepline: Stepline, signal: str, key: str, **extra) -> tuple[str, str]:
    """Start a run waiting for ``signal``; return (event id, run id) once its wait is stored."""
    [event_id] = stepline.send({"name": "test/signal.wait", "data": {"signal": signal, "key": key, **extra}})
    run_id = wait_for(lambda: _run_of(stepline, event_id), what="the run to start")
    wait_for(lambda: _waiting(stepline, signal) == run_id, what=f"the run to wait for {signal}")
    return event_id, run_id


def test_the_client_send_signal_resumes_the_waiting_run_once(signal_stack):
    stepline, app = signal_stack
    signal, key = _name(), uuid.uuid4().hex[:12]
    event_id, run_id = _wait_run(stepline, signal, key)

    status, sent = http("POST", f"http://127.0.0.1:{app.port}/signal", {"signal": signal, "data": {"approved": True}})

    assert (status, sent) == (200, {"run_id": run_id})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Completed"
    assert run["output"] == {"got": {"signal": signal, "data": {"approved": True}}}
    assert app.count("signal-waiter", "before", key) == 1
    assert app.count("signal-waiter", "after", key) == 1
    # Nothing waits any more: the SDK reads the 404 as "no run resumed".
    status, again = http("POST", f"http://127.0.0.1:{app.port}/signal", {"signal": signal, "data": 2})
    assert (status, again) == (200, {"run_id": None})


def test_step_send_signal_resumes_another_run(signal_stack):
    stepline, app = signal_stack
    signal, key = _name(), uuid.uuid4().hex[:12]
    waiter_event, run_id = _wait_run(stepline, signal, key)

    [sender_event] = stepline.send({"name": "test/signal.send", "data": {"signal": signal, "payload": [1, "two"]}})

    [sender] = stepline.wait_runs_done(sender_event)
    assert sender["output"] == {"run_id": run_id}
    [waiter] = stepline.wait_runs_done(waiter_event)
    assert waiter["output"] == {"got": {"signal": signal, "data": [1, "two"]}}


def test_a_signal_nobody_waits_for_is_404(signal_stack):
    stepline, _ = signal_stack
    status, body = http("POST", f"{stepline.url}/v1/signals", {"signal": _name(), "data": {}})
    assert status == 404
    assert "no run waits" in body["error"]


def test_bad_signal_bodies_are_400_naming_the_field(signal_stack):
    stepline, _ = signal_stack
    for body, field in (({"data": 1}, "signal"), ({"signal": ""}, "signal"), ({"signal": 7}, "signal"), ([], "body")):
        status, reply = http("POST", f"{stepline.url}/v1/signals", body)
        assert status == 400, (body, reply)
        assert reply["error"].startswith(field), reply


def test_concurrent_sends_resume_the_run_once(signal_stack):
    stepline, app = signal_stack
    signal, key = _name(), uuid.uuid4().hex[:12]
    event_id, run_id = _wait_run(stepline, signal, key)
    results: list[tuple[int, object]] = []
    start = threading.Barrier(6)

    def send(i: int) -> None:
        start.wait()
        results.append(http("POST", f"{stepline.url}/v1/signals", {"signal": signal, "data": {"sender": i}}))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    won = [body for status, body in results if status == 200]
    assert won == [{"data": {"run_id": run_id}}]
    assert sorted(status for status, _ in results) == [200] + [404] * 5
    [run] = stepline.wait_runs_done(event_id)
    assert run["output"]["got"]["signal"] == signal
    assert app.count("signal-waiter", "after", key) == 1


def test_on_conflict_fail_fails_the_second_waits_step(signal_stack):
    stepline, app = signal_stack
    signal = _name()
    first_event, first_run = _wait_run(stepline, signal, uuid.uuid4().hex[:12])

    [second_event] = stepline.send({"name": "test/signal.wait", "data": {"signal": signal, "on_conflict": "fail"}})

    [second] = stepline.wait_runs_done(second_event)
    assert "Signal conflict" in second["output"]["conflict"]
    # The first run keeps the signal.
    status, sent = http("POST", f"http://127.0.0.1:{app.port}/signal", {"signal": signal, "data": "first"})
    assert (status, sent) == (200, {"run_id": first_run})
    [first] = stepline.wait_runs_done(first_event)
    assert first["output"] == {"got": {"signal": signal, "data": "first"}}


def test_on_conflict_replace_takes_the_signal_and_the_first_run_times_out(signal_stack):
    stepline, app = signal_stack
    signal = _name()
    first_event, first_run = _wait_run(stepline, signal, uuid.uuid4().hex[:12], timeout_s=3)

    [second_event] = stepline.send({"name": "test/signal.wait", "data": {"signal": signal, "on_conflict": "replace"}})
    second_run = wait_for(lambda: _run_of(stepline, second_event), what="the second run")
    wait_for(lambda: _waiting(stepline, signal) == second_run, what="the second run to take the signal")

    status, sent = http("POST", f"http://127.0.0.1:{app.port}/signal", {"signal": signal, "data": "second"})

    assert (status, sent) == (200, {"run_id": second_run})
    [second] = stepline.wait_runs_done(second_event)
    assert second["output"] == {"got": {"signal": signal, "data": "second"}}
    [first] = stepline.wait_runs_done(first_event)
    assert first["output"] == {"got": None}

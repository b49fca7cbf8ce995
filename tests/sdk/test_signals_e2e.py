"""Stepline's SDK with signals against a real `stepline dev`, on SQLite and on the AWS adapters
(moto), on a manual clock: ``step.wait_for_signal`` parks the run, ``client.send_signal`` (from
a test or from another function's step) resumes it once, a conflict fails the second wait's step,
``on_conflict="replace"`` takes the signal over, and the timeout resumes with None."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections import Counter

import pytest

from stepline import Client, Context, StepError, serve_wsgi
from stepline.engine.records import RunStatus
from tests.sdk.harness import Stack, http, wait_for

APP_ID = "sdk-signals"
HOUR_MS = 3600 * 1000

client = Client(APP_ID, dev=True)
counts: Counter[str] = Counter()
_lock = threading.Lock()


def bump(name: str, key: str) -> int:
    with _lock:
        counts[f"{name}/{key}"] += 1
        return counts[f"{name}/{key}"]


@client.function("waiter", trigger="sdk-signals/wait", retries=0)
def waiter(ctx: Context) -> dict:
    data = ctx.event.data
    ctx.step.run("before", lambda: bump("before", data["key"]))
    try:
        got = ctx.step.wait_for_signal(
            "wait", signal=data["signal"], timeout="1h", on_conflict=data.get("on_conflict", "fail")
        )
    except StepError as err:
        return {"conflict": err.message, "name": err.name}
    ctx.step.run("after", lambda: bump("after", data["key"]))
    return {"got": None if got is None else {"signal": got.signal, "data": got.data}}


@client.function("sender", trigger="sdk-signals/send")
def sender(ctx: Context) -> dict:
    data = ctx.event.data
    run_id = ctx.step.run("send", lambda: client.send_signal(data["signal"], data.get("payload")))
    return {"run_id": run_id}


@pytest.fixture(scope="module", params=["sqlite", "moto"])
def stack(request, tmp_path_factory):
    s = Stack(
        serve_wsgi(client), tmp_path_factory.mktemp(f"sdk-signals-{request.param}"), APP_ID, backend=request.param
    )
    yield s
    s.close()


def _waiting(stack: Stack, signal: str) -> str | None:
    wait = stack.runtime.backend.signals.get_signal_wait(signal, stack.clock.now_ms())
    return wait.run_id if wait is not None else None


def _start(stack: Stack, signal: str, **extra) -> tuple[str, str, str]:
    """(event id, run id, key) of a run once it waits for ``signal``."""
    key = uuid.uuid4().hex[:10]
    [event_id] = stack.send({"name": "sdk-signals/wait", "data": {"signal": signal, "key": key, **extra}})
    run_id = wait_for(lambda: (stack.runs(event_id) or [{}])[0].get("run_id"), what="the run")
    wait_for(lambda: _waiting(stack, signal) == run_id, what=f"the run to wait for {signal}")
    return event_id, run_id, key


def _signal() -> str:
    return f"order/{uuid.uuid4().hex[:12]}"


def test_send_signal_resumes_the_run_with_the_data_once(stack):
    signal = _signal()
    event_id, run_id, key = _start(stack, signal)

    assert client.send_signal(signal, {"approved": True, "by": "ada"}) == run_id

    run = stack.wait_run(event_id, status="Completed")
    assert run["output"] == {"got": {"signal": signal, "data": {"approved": True, "by": "ada"}}}
    assert counts[f"before/{key}"] == 1 and counts[f"after/{key}"] == 1
    # The signal is spent: nobody waits for it any more.
    assert client.send_signal(signal, "late") is None


def test_a_step_sends_the_signal_for_another_run(stack):
    signal = _signal()
    waiter_event, run_id, _ = _start(stack, signal)

    [sender_event] = stack.send({"name": "sdk-signals/send", "data": {"signal": signal, "payload": 42}})

    assert stack.wait_run(sender_event, status="Completed")["output"] == {"run_id": run_id}
    assert stack.wait_run(waiter_event, status="Completed")["output"] == {"got": {"signal": signal, "data": 42}}


def test_the_timeout_resumes_with_none(stack):
    signal = _signal()
    event_id, _, key = _start(stack, signal)

    stack.clock.advance(HOUR_MS + 1000)

    run = stack.wait_run(event_id, status="Completed")
    assert run["output"] == {"got": None}
    assert counts[f"after/{key}"] == 1
    assert client.send_signal(signal, 1) is None


def test_a_second_wait_on_a_held_signal_fails_its_step(stack):
    signal = _signal()
    first_event, first_run, _ = _start(stack, signal)
    [second_event] = stack.send({"name": "sdk-signals/wait", "data": {"signal": signal, "key": "second"}})

    second = stack.wait_run(second_event, status="Completed")

    assert second["output"]["name"] == "SignalConflict"
    assert first_run in second["output"]["conflict"]
    assert client.send_signal(signal, "for the first") == first_run
    assert stack.wait_run(first_event, status="Completed")["output"]["got"]["data"] == "for the first"


def test_replace_takes_the_signal_and_the_first_run_times_out(stack):
    signal = _signal()
    first_event, _, _ = _start(stack, signal)
    second_event, second_run, _ = _start(stack, signal, on_conflict="replace")

    assert client.send_signal(signal, "for the second") == second_run

    assert stack.wait_run(second_event, status="Completed")["output"]["got"]["data"] == "for the second"
    stack.clock.advance(HOUR_MS + 1000)
    assert stack.wait_run(first_event, status="Completed")["output"] == {"got": None}


def test_a_cancelled_run_no_longer_takes_its_signal(stack):
    signal = _signal()
    event_id, run_id, _ = _start(stack, signal)

    stack.runtime.engine.cancel_run(run_id)

    assert stack.wait_run(event_id)["status"] == "Cancelled"
    assert client.send_signal(signal, "too late") is None


def test_the_run_shows_its_waiting_signal_and_the_cli_sends_it(stack):
    signal = _signal()
    event_id, run_id, _ = _start(stack, signal)

    # What the dashboard's timeline and `stepline run` read: the step waits for this signal.
    status, body = http("GET", f"{stack.url}/v1/runs/{run_id}")
    assert status == 200, body
    [waiting] = [s for s in body["data"]["steps"] if s["status"] == "Waiting"]
    assert (waiting["name"], waiting["kind"], waiting["input"]["signal"]) == ("wait", "signal", signal)
    shown = _cli(stack.url, "run", run_id)
    assert shown.returncode == 0, shown.stderr
    assert f"waiting for signal {signal!r}" in shown.stdout

    sent = _cli(stack.url, "signal", signal, '{"approved": true}')

    assert (sent.returncode, sent.stdout.strip()) == (0, run_id), sent.stderr
    run = stack.wait_run(event_id, status="Completed")
    assert run["output"] == {"got": {"signal": signal, "data": {"approved": True}}}
    again = _cli(stack.url, "signal", signal, "1")
    assert again.returncode == 1 and "404" in again.stderr and "no run waits" in again.stderr


def _cli(url: str, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "stepline.cli", *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
    )


def test_erasing_a_waiting_run_removes_its_signal_wait(stack):
    signal = _signal()
    _, run_id, _ = _start(stack, signal)

    status, body = http("POST", f"{stack.url}/v1/erasures", {"run_id": run_id})
    assert status in (200, 202), body
    wait_for(lambda: stack.runtime.backend.runs.get_run(run_id) is None, what="the run to be erased")

    # The signal (which may name a person or an order) is gone with the run.
    assert _waiting(stack, signal) is None
    assert client.send_signal(signal, 1) is None


def test_a_signal_held_by_a_run_that_ended_without_letting_go_is_no_conflict(stack):
    signal = _signal()
    _, first_run, _ = _start(stack, signal)
    # The run ends, and its process dies before releasing what it held: the wait stays behind.
    assert stack.runtime.backend.runs.update_run(first_run, {"status": RunStatus.CANCELLED, "ended_at": 1})
    assert _waiting(stack, signal) == first_run

    second_event, second_run, _ = _start(stack, signal)

    assert client.send_signal(signal, "for the live one") == second_run
    assert stack.wait_run(second_event, status="Completed")["output"]["got"]["data"] == "for the live one"

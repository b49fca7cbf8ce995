"""Every run one trace, on both backends with a manual clock: the spans a run leaves in
OpenTelemetry's in-memory exporter, their parents, their times, and the traceparent each call to
the app carries. A run's spans are written by whichever invocation saw each thing end (a sleep's
wake, a retry, a parallel branch's job); they still make one tree under the root span whose ids
were stored with the run when it was created."""

from __future__ import annotations

import dataclasses
import json

import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode

from stepline.engine.flow.concurrency import limits_for
from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunStatus
from stepline.local import local_backend
from stepline.settings import Settings
from stepline.telemetry.trace_context import RunTrace
from tests.engine.scripted_app import ScriptedApp, pump
from tests.telemetry.traced import RunSpans, make, stream_reply

HOUR = 3600 * 1000


def start(engine, backend, fn_id: str, data: dict | None = None):
    [event_id] = engine.ingest.accept([{"name": f"app/{fn_id}", "data": data or {}}])
    [run] = backend.store.runs_for_event(event_id)
    return run.run_id


def ended(backend, run_id: str):
    run = backend.store.get_run(run_id)
    assert run.status is RunStatus.COMPLETED, run
    return run


def test_a_run_that_sleeps_is_one_trace_across_its_invocations(backend, clock):
    engine, app, caller, exporter = make(backend, clock, {"fn": [("run", "a"), ("sleep", "nap", "1h"), ("run", "b")]})
    run_id = start(engine, backend, "fn")
    pump(backend, engine, clock)
    asleep_at = clock.now_ms()
    clock.advance(HOUR + 1_000)
    pump(backend, engine, clock)
    run = ended(backend, run_id)
    assert app.executed == {"a": 1, "b": 1}

    spans = RunSpans.of(exporter, run)
    root = spans.root
    assert root.name == "run fn"
    assert root.start_time == run.created_at * 1_000_000 and root.end_time == run.ended_at * 1_000_000
    assert root.attributes["stepline.run.status"] == "Completed"
    assert root.status.status_code is not StatusCode.ERROR

    [nap] = spans.named("sleep ")
    assert spans.parent_of(nap) is root
    assert nap.attributes["stepline.step.kind"] == "Sleep"
    assert nap.start_time == asleep_at * 1_000_000
    assert (nap.end_time - nap.start_time) // 1_000_000 >= HOUR

    # Each step is a child of the call that ran it, and each call a child of the root: the
    # calls before and after the sleep were made by different invocations.
    for step_id in ("a", "b"):
        [step] = spans.steps(step_id)
        call = spans.parent_of(step)
        assert call.name == "call fn" and spans.parent_of(call) is root
        assert step.attributes["stepline.step.kind"] == "StepRun"
        assert step.attributes["stepline.step.status"] == "ok"
        assert step.attributes["stepline.step.attempt"] == 0
    [a], [b] = spans.steps("a"), spans.steps("b")
    assert spans.parent_of(a) is not spans.parent_of(b)

    # Every call to the app named its call span in a W3C traceparent of the run's trace.
    trace = RunTrace.parse(run.trace)
    calls = {f"00-{trace.trace_hex}-{s.context.span_id:016x}-01" for s in spans.named("call ")}
    sent = {h["traceparent"] for h in caller.headers}
    assert sent == calls and len(sent) == len(caller.headers) >= 3


def test_a_retried_step_is_one_span_per_attempt(backend, clock):
    # A backoff past SQS's delay cap: a timer the manual clock fires (moto delays in real time).
    settings = Settings(mode="dev", retry_base_ms=HOUR, retry_cap_ms=2 * HOUR)
    engine, app, caller, exporter = make(backend, clock, {"fn": [("run", "flaky"), ("run", "after")]},
                                         settings=settings)
    # The SDKs report a step's failure as a StepError op (the step ran inline in discovery).
    error = {"name": "Error", "message": "boom", "stack": ""}
    failed = [{"op": "StepError", "id": "flaky", "name": "flaky", "error": error}]
    app.fail_first["flaky"] = HttpResponse(206, json.dumps(failed).encode(), {"x-inngest-req-version": "2"})
    run_id = start(engine, backend, "fn")
    pump(backend, engine, clock)
    clock.advance(2 * HOUR + 1_000)
    pump(backend, engine, clock)
    run = ended(backend, run_id)
    assert app.executed == {"flaky": 2, "after": 1}

    spans = RunSpans.of(exporter, run)
    first, second = sorted(spans.steps("flaky"), key=lambda s: s.attributes["stepline.step.attempt"])
    assert first.attributes["stepline.step.attempt"] == 0 and second.attributes["stepline.step.attempt"] == 1
    assert first.attributes["stepline.step.status"] == "retrying"
    assert first.status.status_code is StatusCode.ERROR and "boom" in first.attributes["stepline.step.error"]
    assert second.attributes["stepline.step.status"] == "ok"
    assert spans.parent_of(first) is not spans.parent_of(second)  # two calls, one per attempt
    assert spans.parent_of(second).attributes["stepline.call.step"] == "flaky"  # the retry targets it


def test_a_step_that_runs_out_of_attempts_fails_the_runs_root_span(backend, clock):
    engine, app, caller, exporter = make(backend, clock, {"fn": [("run", "doomed")]})
    app.post = lambda *a: HttpResponse(400, json.dumps({"name": "Bad", "message": "never"}).encode(),
                                       {"x-inngest-no-retry": "true"})
    caller.app = app
    run_id = start(engine, backend, "fn")
    pump(backend, engine, clock)
    run = backend.store.get_run(run_id)
    assert run.status is RunStatus.FAILED

    spans = RunSpans.of(exporter, run)
    assert spans.root.status.status_code is StatusCode.ERROR
    assert "never" in spans.root.status.description
    assert spans.root.attributes["stepline.run.status"] == "Failed"


def test_an_event_wait_is_a_span_from_the_wait_to_the_event(backend, clock):
    engine, app, caller, exporter = make(backend, clock, {"fn": [("wait", "approval", "app/approved", "1d"),
                                                                  ("run", "ship")]})
    run_id = start(engine, backend, "fn")
    pump(backend, engine, clock)
    clock.advance(5 * 60_000)
    engine.ingest.accept([{"name": "app/approved", "data": {}}])
    pump(backend, engine, clock)
    run = ended(backend, run_id)

    spans = RunSpans.of(exporter, run)
    [wait] = spans.named("wait ")
    assert spans.parent_of(wait) is spans.root
    assert wait.attributes["stepline.step.kind"] == "WaitForEvent"
    assert (wait.end_time - wait.start_time) // 1_000_000 == 5 * 60_000
    assert [s.attributes["stepline.step.id"] for s in spans.named("step ")] == ["ship"]


def test_parallel_steps_are_spans_of_their_own_jobs_in_the_one_trace(backend, clock):
    engine, app, caller, exporter = make(backend, clock, {"fn": [("parallel", ["p1", "p2", "p3"]), ("run", "join")]})
    run_id = start(engine, backend, "fn")
    pump(backend, engine, clock)
    run = ended(backend, run_id)
    assert app.executed == {"p1": 1, "p2": 1, "p3": 1, "join": 1}

    spans = RunSpans.of(exporter, run)
    branch_calls = set()
    for step_id in ("p1", "p2", "p3"):
        [step] = spans.steps(step_id)
        call = spans.parent_of(step)
        assert call.attributes["stepline.call.step"] == step_id  # the branch's own job called for it
        assert spans.parent_of(call) is spans.root
        branch_calls.add(call.context.span_id)
    assert len(branch_calls) == 3


class StreamingApp(ScriptedApp):
    """Answers a discovery call that offers the checkpoint stream as Stepline's SDK does: runs
    the steps inline, one line each (the clock moving a second per step), up to a sleep or the end."""

    def __init__(self, scripts, clock) -> None:
        super().__init__(scripts)
        self.clock = clock
        self.streams = 0

    def post(self, url, body, headers, timeout_s):
        if headers.get("x-stepline-checkpoint") != "stream":
            return super().post(url, body, headers, timeout_s)
        self.streams += 1
        memos = json.loads(body)["steps"]
        fn_id = url.split("fnId=")[1].split("&")[0]
        lines = []
        for stage in self.scripts[fn_id]:
            if stage[1] in memos:
                continue
            if stage[0] == "sleep":
                sleep = {"op": "Sleep", "id": stage[1], "name": stage[2]}
                lines.append({"result": {"status": 206, "body": [sleep]}})
                return stream_reply(lines, self._run)
            lines.append({"step": {"op": "StepRun", "id": stage[1], "name": stage[1], "data": 1}})
        lines.append({"result": {"status": 200, "body": "done"}})
        return stream_reply(lines, self._run)

    def _run(self, line: dict) -> None:
        if "step" in line:
            self.executed[line["step"]["id"]] += 1
            self.clock.advance(1_000)


def test_checkpointed_steps_are_spans_under_the_call_that_streamed_them(backend, clock):
    scripts = {"fn": [("run", "a"), ("run", "b"), ("run", "c"), ("sleep", "nap", "1h"), ("run", "d")]}
    app = StreamingApp(scripts, clock)
    engine, app, caller, exporter = make(backend, clock, scripts, app=app)
    run_id = start(engine, backend, "fn")
    pump(backend, engine, clock)
    clock.advance(HOUR + 5_000)
    pump(backend, engine, clock)
    run = ended(backend, run_id)
    assert app.executed == {"a": 1, "b": 1, "c": 1, "d": 1} and app.streams == 2

    spans = RunSpans.of(exporter, run)
    a, b, c = (spans.steps(s)[0] for s in "abc")
    [d] = spans.steps("d")
    assert {spans.parent_of(s).context.span_id for s in (a, b, c)} == {spans.parent_of(a).context.span_id}
    assert spans.parent_of(d) is not spans.parent_of(a)
    assert all(s.attributes["stepline.step.checkpointed"] is True for s in (a, b, c, d))
    # One after another on the call: each begins when the one before it was reported.
    assert a.end_time <= b.start_time and b.end_time <= c.start_time
    assert [(s.end_time - s.start_time) // 1_000_000 for s in (b, c)] == [1_000, 1_000]
    [nap] = spans.named("sleep ")
    assert spans.parent_of(nap) is spans.root


def test_an_unsampled_run_records_nothing_and_sends_an_unsampled_context(backend, clock):
    engine, app, caller, exporter = make(backend, clock, {"fn": [("run", "a")]}, sampler=ALWAYS_OFF)
    run_id = start(engine, backend, "fn")
    pump(backend, engine, clock)
    run = ended(backend, run_id)
    trace = RunTrace.parse(run.trace)
    assert trace is not None and not trace.sampled
    assert exporter.get_finished_spans() == ()
    assert all("traceparent" not in h for h in caller.headers)


def test_a_replayed_run_is_a_trace_of_its_own(backend, clock):
    engine, app, caller, exporter = make(backend, clock, {"fn": [("run", "a")]})
    run_id = start(engine, backend, "fn")
    pump(backend, engine, clock)
    original = ended(backend, run_id)
    replayed = engine.replays.replay(original.run_id)
    pump(backend, engine, clock)
    again = ended(backend, replayed.run_id)

    first, second = RunSpans.of(exporter, original), RunSpans.of(exporter, again)
    assert first.root.context.trace_id != second.root.context.trace_id
    assert [s.attributes["stepline.step.id"] for s in second.named("step ")] == ["a"]


def test_steps_stored_through_the_checkpoint_api_are_spans_of_the_run(backend, clock):
    """The TypeScript SDK's way: steps POSTed to /v1/checkpoint while the call holds the run."""
    from stepline.engine.ports import Run
    from tests.checkpoint.test_endpoint import FN, TOKEN, Api, body_for, ts_step

    engine, app, caller, exporter = make(backend, clock, {})
    now = clock.now_ms()
    run = Run(run_id="01JCHECKPOINTEDRUN00000001", fn_id=FN, app_id="t-app", status=RunStatus.RUNNING,
              events=[{"name": "app/x", "data": {}}], event_ids=["e1"], created_at=now,
              trace=engine.telemetry.new_run_trace())
    backend.store.create_run(run)
    assert backend.store.acquire_lease(run.run_id, TOKEN, now + 60_000, now)
    clock.advance(2_000)
    code, body = Api(engine).post(run.run_id, body_for(run.run_id, [ts_step("h1", 1, "one"), ts_step("h2", 2, "two")],
                                                       request_started_at=now + 500))
    assert code == 200, body

    trace = RunTrace.parse(run.trace)
    steps = [s for s in exporter.get_finished_spans() if s.name.startswith("step ")]
    assert sorted(s.name for s in steps) == ["step one", "step two"]
    for span in steps:
        assert span.context.trace_id == trace.trace_id and span.parent.span_id == trace.span_id
        assert span.attributes["stepline.step.checkpointed"] is True
        assert span.start_time == (now + 500) * 1_000_000 and span.end_time == (now + 2_000) * 1_000_000


def test_an_invoked_runs_root_span_links_to_the_run_that_invoked_it(backend, clock):
    scripts = {"t-app-parent": [("invoke", "call-child", "t-app-child", None), ("run", "after")],
               "t-app-child": [("run", "c")]}
    engine, app, caller, exporter = make(backend, clock, scripts)
    parent_id = start(engine, backend, "t-app-parent")
    pump(backend, engine, clock)
    parent = ended(backend, parent_id)
    assert app.executed == {"c": 1, "after": 1}
    [child], _ = backend.store.list_runs("t-app-child", limit=10)

    parent_spans, child_spans = RunSpans.of(exporter, parent), RunSpans.of(exporter, child)
    assert child_spans.root.context.trace_id != parent_spans.root.context.trace_id  # each run its own trace
    [link] = child_spans.root.links
    assert (link.context.trace_id, link.context.span_id) == (parent_spans.root.context.trace_id,
                                                             parent_spans.root.context.span_id)
    [invoke] = parent_spans.named("invoke ")
    assert parent_spans.parent_of(invoke) is parent_spans.root


def test_a_throttled_start_is_a_queued_span_from_its_event_to_its_turn(backend, clock):
    # One start an hour: the second waits past SQS's delay cap, on a timer the manual clock fires.
    engine, app, _, exporter = make(backend, clock, {"slow": [("run", "s")]},
                                    configs={"slow": {"throttle": {"limit": 1, "period": "1h"}}})
    first, second = start(engine, backend, "slow"), start(engine, backend, "slow")
    sent_at = clock.now_ms()
    pump(backend, engine, clock)
    clock.advance(HOUR)
    pump(backend, engine, clock)
    assert app.executed == {"s": 2}

    assert RunSpans.of(exporter, ended(backend, first)).named("queued ") == []
    [queued] = RunSpans.of(exporter, ended(backend, second)).named("queued ")
    assert queued.name == "queued throttle" and queued.attributes["stepline.flow.limit"] == "throttle"
    assert queued.start_time == sent_at * 1_000_000
    assert queued.end_time - queued.start_time >= (HOUR - 1_000) * 1_000_000


@pytest.fixture
def clocked_queue(backend, tmp_path, clock):
    """The backend with a SQLite work queue: a waiting call's safety-net delays run on the
    manual clock (SQS's run on real time)."""
    if backend.name == "sqlite":
        yield backend
        return
    with local_backend(str(tmp_path / "queue.db"), clock) as local:
        yield dataclasses.replace(backend, queue=local.queue)


def test_a_call_that_waited_for_a_concurrency_slot_is_a_queued_span_of_the_wait(clocked_queue, clock):
    backend = clocked_queue
    engine, app, _, exporter = make(backend, clock, {"lim": [("run", "s")]},
                                    configs={"lim": {"concurrency": [{"limit": 1}]}})
    [limit] = limits_for(backend.store.get_function("lim"), {"name": "app/lim", "data": {}})
    # A step of another run holds the only slot while this run's first call comes.
    assert backend.store.take_slot(limit.key, 0, "elsewhere", clock.now_ms() + HOUR, clock.now_ms())
    run_id = start(engine, backend, "lim")
    pump(backend, engine, clock)
    lined_up_at = clock.now_ms()
    assert app.executed == {} and backend.store.slot_view(limit.key, 10).line  # it waits in line
    clock.advance(5_000)
    assert backend.store.release_slot(limit.key, 0, "elsewhere")
    engine.concurrency.wake(limit.key, limit.limit)
    pump(backend, engine, clock)
    assert app.executed == {"s": 1}

    [queued] = RunSpans.of(exporter, ended(backend, run_id)).named("queued ")
    assert queued.name == "queued concurrency" and queued.attributes["stepline.flow.limit"] == "concurrency"
    assert queued.start_time == lined_up_at * 1_000_000
    assert queued.end_time == (lined_up_at + 5_000) * 1_000_000

"""Log lines that join up: what the runtime logs while it works on a run names the run, its
function and its trace, in `stepline dev`'s text lines and in the Lambdas' powertools JSON."""

from __future__ import annotations

import io
import json
import logging

import pytest
from aws_lambda_powertools import Logger

from stepline.engine import messages
from stepline.engine.core import Engine
from stepline.engine.delivery import Outcome
from stepline.engine.http import HttpResponse
from stepline.settings import Settings
from stepline.telemetry import logs
from stepline.telemetry.trace_context import RunTrace
from tests.engine.scripted_app import ScriptedApp, pump, receive_all, register


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def runtime_logger():
    """The ``stepline`` logger as it was, back after the test (the JSON set-up changes it)."""
    runtime = logging.getLogger("stepline")
    saved = (list(runtime.handlers), runtime.propagate, runtime.level)
    yield runtime
    runtime.handlers[:] = saved[0]
    runtime.propagate, runtime.level = saved[1], saved[2]


def test_every_line_about_a_run_carries_its_ids(backend, clock, runtime_logger):
    handler = Records()
    logs.install_text(handler)
    runtime_logger.addHandler(handler)
    runtime_logger.setLevel(logging.INFO)
    app = ScriptedApp({"fn": [("run", "flaky")]})
    app.fail_first["flaky"] = HttpResponse(500, b'{"name": "Error", "message": "busy"}', {"retry-after": "7200"})
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine, ["fn"])
    [event_id] = engine.ingest.accept([{"name": "app/fn", "data": {}}])
    pump(backend, engine, clock)
    [run] = backend.store.runs_for_event(event_id)
    trace = RunTrace.parse(run.trace)

    retrying = [r for r in handler.records if "retrying" in r.getMessage()]
    assert retrying, [r.getMessage() for r in handler.records]
    for record in retrying:
        assert (record.run_id, record.function_id, record.trace_id) == (run.run_id, "fn", trace.trace_hex)
    line = handler.lines[handler.records.index(retrying[0])]
    assert line.endswith(f" run={run.run_id} fn=fn trace={trace.trace_hex}")

    # A message about nothing in particular (a sweep) names no run.
    logs.about_run(None)
    logging.getLogger("stepline.engine.sweeper").info("nothing about a run")
    assert handler.records[-1].run_id is None and handler.lines[-1].endswith("nothing about a run")


def test_outside_a_lambda_importing_a_handler_leaves_logging_alone(runtime_logger):
    before = (list(runtime_logger.handlers), runtime_logger.propagate)
    assert not logs.install_json(Logger(service="stepline-test-outside"), {})
    assert (list(runtime_logger.handlers), runtime_logger.propagate) == before


def test_deployed_lines_are_powertools_json_with_the_run_fields(runtime_logger):
    stream = io.StringIO()
    assert logs.install_json(Logger(service="stepline-test", stream=stream, level="INFO"),
                             {"AWS_LAMBDA_FUNCTION_NAME": "stepline-executor"})
    logs.about_run("01J0000000000000000000000X", "shop-fn", "ab" * 16)
    logging.getLogger("stepline.engine.executor").warning("run %s attempt %d failed", "01J0000000000000000000000X", 0)
    logs.about_run(None)

    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["service"] == "stepline-test" and record["level"] == "WARNING"
    assert record["message"] == "run 01J0000000000000000000000X attempt 0 failed"
    assert (record["run_id"], record["function_id"], record["trace_id"]) == (
        "01J0000000000000000000000X", "shop-fn", "ab" * 16
    )


def test_a_delivered_messages_lines_name_the_run_it_names_even_when_malformed(backend, clock, runtime_logger):
    handler = Records()
    logs.install_text(handler)
    runtime_logger.addHandler(handler)
    runtime_logger.setLevel(logging.INFO)
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=ScriptedApp({}))
    # A call whose step is no string can never be handled: dead-lettered, its lines name its run.
    # Then a message of no kind this engine knows, about no run: its lines name none.
    backend.queue.send({"kind": messages.CALL, "run_id": "run-named", "step": 5})
    backend.queue.send({"kind": "no-such-kind"})
    for received in receive_all(backend):
        assert engine.delivery.deliver(received) is Outcome.DEAD

    buried = [r for r in handler.records if r.getMessage().startswith("dead-lettered")]
    # (The queue may deliver the two in either order.)
    assert sorted((r.run_id or "", "(run run-named)" in r.getMessage()) for r in buried) == [
        ("", False),
        ("run-named", True),
    ]

"""Flow-control settings checked at sync: combinations that cannot work together are refused
with an error naming both settings, and limits Inngest enforces are enforced here too."""

from __future__ import annotations

import datetime

import inngest
import pytest
from inngest._internal import comm_lib

from stepline.protocol import parse_register
from tests.protocol.captures import PY_REGISTER, dumps
from tests.protocol.test_register import app_with, fn, reject

BATCH = {"maxSize": 10, "timeout": "5s"}


@pytest.mark.parametrize(
    "setting, value",
    [
        ("idempotency", "event.data.order_id"),
        ("rateLimit", {"limit": 1, "period": "1m"}),
        ("cancel", [{"event": "app/cancel"}]),
        ("priority", {"run": "event.data.priority"}),
        ("singleton", {"mode": "skip"}),
        ("debounce", {"period": "5s"}),
    ],
)
def test_batching_refuses_settings_that_need_one_trigger_event(setting, value):
    message = reject(app_with(fn(batchEvents=BATCH, **{setting: value})))

    assert message.startswith("functions[0]: ")
    assert "batchEvents" in message and setting in message


def test_batching_accepts_the_empty_lists_the_python_sdk_sends():
    app = parse_register(app_with(fn(batchEvents=BATCH, cancel=[], concurrency=[])))
    assert app.functions[0].batch_events.max_size == 10


def test_batching_combines_with_concurrency_throttle_and_timeouts():
    config = fn(batchEvents=BATCH, concurrency=[{"limit": 2}], throttle={"limit": 1, "period": "1s"},
                timeouts={"finish": "1h"})
    assert parse_register(app_with(config)).functions[0].throttle.limit == 1


def test_at_most_two_concurrency_limits():
    message = reject(app_with(fn(concurrency=[{"limit": 1}, {"limit": 2}, {"limit": 3}])))
    assert message == "functions[0].concurrency: at most 2 limits, got 3"


@pytest.mark.parametrize("scope", ["env", "account"])
def test_shared_concurrency_limits_need_a_key(scope):
    message = reject(app_with(fn(concurrency=[{"limit": 5, "scope": scope}])))
    assert message == f"functions[0].concurrency[0]: a key is required when scope is '{scope}'"
    config = fn(concurrency=[{"limit": 5, "scope": scope, "key": '"openai"'}])
    assert parse_register(app_with(config)).functions[0].concurrency[0].scope == scope


def test_debounce_period_is_at_most_seven_days():
    assert reject(app_with(fn(debounce={"period": "8d"}))) == "functions[0].debounce: period '8d' is over the 7d maximum"
    assert parse_register(app_with(fn(debounce={"period": "7d"}))).functions[0].debounce.period_ms == 7 * 86_400_000


def test_the_captured_python_configuration_still_syncs():
    # idempotency, rateLimit, priority, singleton, throttle and two concurrency limits together.
    app = parse_register(dumps(PY_REGISTER))
    configured = app.function("lab-app-configured")
    assert configured.idempotency and configured.singleton.mode == "skip"


def test_the_real_sdk_batched_function_with_idempotency_is_refused():
    client = inngest.Inngest(app_id="lab-app", is_production=False)

    @client.create_function(
        fn_id="batched", trigger=inngest.TriggerEvent(event="app/batch"),
        batch_events=inngest.Batch(max_size=5, timeout=datetime.timedelta(seconds=5)),
        idempotency="event.data.id",
    )
    def batched(ctx):
        return None

    configs = comm_lib.get_function_configs("http://127.0.0.1:8939/api/inngest", {batched.id: batched})
    body = {"appname": "lab-app", "url": "http://127.0.0.1:8939/api/inngest",
            "functions": [c.to_dict() for c in configs]}

    assert "batchEvents and idempotency" in reject(dumps(body))

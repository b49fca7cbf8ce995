"""What a run records as its version, and where its calls then go (stepline.engine.pinning)."""

from __future__ import annotations

from stepline.engine import pinning
from stepline.engine.app_targets import H_EXECUTED_VERSION, H_PIN_GONE, PIN_PARAM, FunctionArn
from stepline.engine.records import Run, RunStatus
from stepline.protocol.urls import get_query_param

INVOKE = FunctionArn.parse("arn:aws:lambda:eu-west-1:123456789012:function:app:live").serve_url + "?fnId=f"
HTTP = "https://app.example.com/api/inngest?fnId=f"


def run(version: str | None = None) -> Run:
    return Run("r1", "f", "app", RunStatus.RUNNING, [], [], 0, app_version=version)


def test_an_invoked_run_records_the_version_its_first_call_ran_and_calls_it_after():
    r = run()
    assert pinning.call_url(INVOKE, r, True) == INVOKE  # nothing to pin to yet
    assert pinning.observed(r, INVOKE, {H_EXECUTED_VERSION: "4"}, lambda: "v9") == "4"
    r.app_version = "4"
    assert get_query_param(pinning.call_url(INVOKE, r, True), PIN_PARAM) == "4"
    # Later answers from the pinned version change nothing; switched off, nothing is pinned.
    assert pinning.observed(r, INVOKE, {H_EXECUTED_VERSION: "4"}, lambda: "v9") is None
    assert pinning.call_url(INVOKE, r, False) == INVOKE


def test_latest_is_never_pinned_and_a_gone_version_moves_the_run_on():
    assert pinning.observed(run(), INVOKE, {H_EXECUTED_VERSION: "$LATEST"}, lambda: None) is None
    moved = pinning.observed(run("4"), INVOKE, {H_EXECUTED_VERSION: "5", H_PIN_GONE: "4"}, lambda: None)
    assert moved == "5"


def test_an_http_run_records_the_registered_app_version_and_its_calls_stay_on_the_url():
    r = run()
    assert pinning.observed(r, HTTP, {}, lambda: "2026.12.1") == "2026.12.1"
    assert pinning.observed(r, HTTP, {}, lambda: "") is None
    r.app_version = "2026.12.1"
    assert pinning.call_url(HTTP, r, True) == HTTP

    def never() -> str:
        raise AssertionError("the app is not looked up once the run has its version")

    assert pinning.observed(r, HTTP, {}, never) is None

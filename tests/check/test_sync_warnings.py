"""The runtime runs the payload-level checks at every sync and logs each failure as a warning."""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest

from stepline.check import on_sync
from stepline.protocol.register import parse_register
from tests.check.apps import bad_app, good_app


def _put(url: str) -> int:
    req = urllib.request.Request(url, data=b"", method="PUT")
    with urllib.request.urlopen(req, timeout=15) as resp:
        return resp.status


def _check_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "stepline.check" and r.levelno == logging.WARNING]


def test_syncing_a_bad_app_logs_each_failed_check(dev_runtime, serve, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="stepline.check")
    monkeypatch.setenv("INNGEST_DEV", dev_runtime.url)
    assert _put(serve(bad_app.app)) == 200  # the sync succeeds: the checks warn, they do not refuse
    warnings = _check_warnings(caplog)
    assert len(warnings) == 3, warnings
    expected = {
        "payment-idempotency (ERROR)": "has no idempotency key",
        "concurrency (WARNING)": "has no concurrency limit",
        "retries (WARNING)": "sets no retry policy",
    }
    for check, text in expected.items():
        [line] = [w for w in warnings if f"check {check} failed" in w]
        assert line.startswith("app 'check-bad' function 'check-bad-charge-customer': ")
        assert text in line and "Fix: " in line
    assert dev_runtime.backend.store.get_app("check-bad") is not None


def test_syncing_a_good_app_logs_nothing(dev_runtime, serve, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="stepline.check")
    monkeypatch.setenv("INNGEST_DEV", dev_runtime.url)
    assert _put(serve(good_app.app)) == 200
    assert _check_warnings(caplog) == []


def _sync(functions: list[dict]) -> object:
    body = {"appname": "check-sync", "url": "http://127.0.0.1:1/api/inngest", "functions": functions}
    return parse_register(json.dumps(body).encode())


def test_an_app_that_registers_no_functions(caplog):
    caplog.set_level(logging.WARNING, logger="stepline.check")
    assert on_sync.warn_on_sync(_sync([])) == 1
    [line] = _check_warnings(caplog)
    assert line.startswith("app 'check-sync': check functions-served (ERROR) failed: ")


def test_a_failing_check_never_fails_the_sync(monkeypatch, caplog):
    def broken(view):
        raise RuntimeError("a bug in a check")

    monkeypatch.setattr(on_sync, "run_checks", broken)
    with caplog.at_level(logging.ERROR, logger="stepline.check"):
        assert on_sync.warn_on_sync(_sync([])) == 0
    assert "running the sync checks failed" in caplog.text


@pytest.mark.parametrize("fn,logged", [
    ({"concurrency": [{"limit": 2}], "idempotency": "event.data.id"}, 1),  # retries missing
    ({"concurrency": [{"limit": 2}], "idempotency": "event.data.id", "retries": 0}, 0),
])
def test_payload_level_checks(fn, logged, caplog):
    caplog.set_level(logging.WARNING, logger="stepline.check")
    step = {"id": "step", "name": "step", "runtime": {"url": "http://127.0.0.1:1/api/inngest?fnId=check-sync-refund"}}
    if "retries" in fn:
        step["retries"] = {"attempts": fn.pop("retries")}
    config = {"id": "check-sync-refund", "triggers": [{"event": "shop/refund.requested"}], "steps": {"step": step}, **fn}
    assert on_sync.warn_on_sync(_sync([config])) == logged


def test_a_batched_payment_function_is_not_applicable(caplog):
    from stepline.check import Status
    from stepline.check.payload import view_from_sync
    from stepline.check.registry import run_checks

    step = {"id": "step", "name": "step", "runtime": {"url": "http://127.0.0.1:1/api/inngest?fnId=check-sync-refund"},
            "retries": {"attempts": 1}}
    config = {"id": "check-sync-refunds", "triggers": [{"event": "shop/refund.requested"}], "steps": {"step": step},
              "concurrency": [{"limit": 1}], "batchEvents": {"maxSize": 10, "timeout": "5s"}}
    [report] = [r for r in run_checks(view_from_sync(_sync([config]))) if r.id == "payment-idempotency"]
    assert report.status is Status.NOT_APPLICABLE and "unique event ids" in report.reason

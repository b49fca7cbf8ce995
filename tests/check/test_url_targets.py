"""Every check on URL targets: apps on the official SDK and on ours, read through their sync
payload, by listening for it (--listen) or from a running stepline dev (--register-via)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from stepline import Client, serve_wsgi
from stepline.check import Status, TargetError
from stepline.check.report import exit_code
from stepline.check.url import inspect_url
from tests.check.apps import bad_app, good_app
from tests.check.conftest import CHECK_IDS, SOURCE_CHECKS, free_port, reports, result_for, statuses

PASSED, FAILED, NA = Status.PASSED, Status.FAILED, Status.NOT_APPLICABLE


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def official(official_app):
    return reports(inspect_url(official_app.url, listen=official_app.register_port))


@pytest.fixture
def listening(monkeypatch):
    """A port for the checker to listen on, which the apps served from this process register with."""
    port = free_port()
    monkeypatch.setenv("INNGEST_DEV", f"http://127.0.0.1:{port}")
    return port


# -- the official SDK, exactly as it syncs --------------------------------------------------------


def test_official_app_serve_handler_and_functions(official, official_app):
    assert official["serve-handler"].status is PASSED
    assert "inngest-py" in official["serve-handler"].results[0].message
    [served] = official["functions-served"].results
    assert served.status is PASSED and "2 function(s) registered" in served.message


def test_official_app_configuration_checks(official):
    assert statuses(official["concurrency"]) == {"check-official-refund-order": FAILED,
                                                 "check-official-send-invoice": PASSED}
    assert statuses(official["retries"]) == {"check-official-refund-order": FAILED,
                                             "check-official-send-invoice": PASSED}
    assert statuses(official["payment-idempotency"]) == {"check-official-refund-order": FAILED,
                                                         "check-official-send-invoice": PASSED}
    failure = result_for(official["payment-idempotency"], "check-official-refund-order")
    assert "contains 'refund'" in failure.message and failure.fix
    assert official["unique-ids"].status is PASSED
    assert exit_code(list(official.values())) == 1


def test_official_app_source_checks_need_source(official):
    for cid in SOURCE_CHECKS:
        assert official[cid].status is NA and official[cid].reason == "needs source", cid


# -- our SDK, through a running stepline dev --------------------------------------------------------


def test_bad_app_through_stepline_dev(dev_runtime, serve, monkeypatch):
    monkeypatch.setenv("INNGEST_DEV", dev_runtime.url)
    url = serve(bad_app.app)
    view = inspect_url(url, register_via=dev_runtime.url)
    assert view.app_ids == ["check-bad"]
    checks = reports(view)
    assert checks["serve-handler"].status is PASSED
    assert checks["functions-served"].status is PASSED
    assert statuses(checks["concurrency"]) == {"check-bad-charge-customer": FAILED, "check-bad-sync-ledger": PASSED}
    assert statuses(checks["retries"]) == {"check-bad-charge-customer": FAILED, "check-bad-sync-ledger": PASSED}
    assert statuses(checks["payment-idempotency"]) == {"check-bad-charge-customer": FAILED}
    assert checks["unique-ids"].status is PASSED
    for cid in SOURCE_CHECKS:
        assert checks[cid].status is NA and checks[cid].reason == "needs source", cid

    # What the checker read back: the read-only route of the REST API.
    status, body = _get(f"{dev_runtime.url}/v1/apps/check-bad/functions")
    assert status == 200
    assert {f["function_id"] for f in body["data"]} == {"check-bad-charge-customer", "check-bad-sync-ledger"}
    charge = next(f for f in body["data"] if f["function_id"] == "check-bad-charge-customer")
    assert charge["config"]["triggers"] == [{"event": "billing/charge.requested"}]
    assert _get(f"{dev_runtime.url}/v1/apps/no-such-app/functions")[0] == 404


def test_register_via_a_server_the_app_does_not_register_with(dev_runtime, serve, listening):
    url = serve(bad_app.app)  # registers with the (closed) listening port, not with dev_runtime
    with pytest.raises(TargetError, match="the app's sync failed: HTTP 500"):
        inspect_url(url, register_via=dev_runtime.url)


# -- our SDK, listening for the payload ------------------------------------------------------------


def test_good_app_through_the_receiver(serve, listening):
    url = serve(good_app.app)
    checks = reports(inspect_url(url, listen=listening))
    for cid in CHECK_IDS:
        expected = NA if cid in SOURCE_CHECKS else PASSED
        assert checks[cid].status is expected, cid
    assert statuses(checks["payment-idempotency"]) == {"check-good-charge-card": PASSED}
    assert exit_code(list(checks.values())) == 0


def test_listening_while_the_app_registers_elsewhere(dev_runtime, serve, monkeypatch):
    monkeypatch.setenv("INNGEST_DEV", dev_runtime.url)
    url = serve(good_app.app)
    with pytest.raises(TargetError, match=r"posted nothing to 127\.0\.0\.1:\d+/fn/register"):
        inspect_url(url, listen=free_port())


def test_serve_handler_with_no_functions(serve, listening):
    empty = Client("check-empty", dev=True)
    url = serve(serve_wsgi(empty, functions=[]))
    checks = reports(inspect_url(url, listen=listening))
    assert checks["serve-handler"].status is PASSED
    [failure] = checks["functions-served"].failures
    assert "registers no functions" in failure.message and failure.fix
    assert exit_code(list(checks.values())) == 1


# -- not an SDK, and SDKs that misbehave --------------------------------------------------------


@pytest.mark.parametrize("status,body", [("404 Not Found", b"<h1>Not Found</h1>"),
                                         ("200 OK", b'{"status": "ok"}')])
def test_no_serve_handler_at_the_url(serve, status, body):
    def not_an_sdk(environ, start_response):
        start_response(status, [("content-type", "text/html")])
        return [body]

    url = serve(not_an_sdk)
    checks = reports(inspect_url(url, listen=free_port()))
    report = checks["serve-handler"]
    assert report.status is FAILED and report.blocking
    assert "no SDK serve handler answers there" in report.failures[0].message
    assert "/api/inngest" in report.failures[0].fix
    for cid in CHECK_IDS[1:]:
        assert checks[cid].status is NA, cid


def _function(app_id: str, fn: str, url: str) -> dict:
    return {"id": f"{app_id}-{fn}", "name": fn, "triggers": [{"event": "shop/order.placed"}],
            "steps": {"step": {"id": "step", "name": "step",
                               "runtime": {"type": "http", "url": f"{url}?fnId={app_id}-{fn}&stepId=step"}}}}


def test_duplicate_ids_in_a_sync_payload(serve):
    """An SDK that sends one id twice (the TS shape: appName): the payload is judged as sent."""
    port = free_port()
    state = {}

    def sdk(environ, start_response):
        headers = [("content-type", "application/json"), ("x-inngest-sdk", "inngest-js:v3.0.0")]
        if environ["REQUEST_METHOD"] == "PUT":
            body = {"appName": "check-dup", "url": state["url"], "deployType": "ping", "sdk": "inngest-js:v3.0.0",
                    "functions": [_function("check-dup", "place-order", state["url"]),
                                  _function("check-dup", "place-order", state["url"])]}
            req = urllib.request.Request(f"http://127.0.0.1:{port}/fn/register", data=json.dumps(body).encode(),
                                         method="POST", headers={"content-type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=10)
            except urllib.error.HTTPError as err:
                start_response("500 Internal Server Error", headers)
                return [err.read()]
        start_response("200 OK", headers)
        return [json.dumps({"function_count": 2, "mode": "dev"}).encode()]

    state["url"] = serve(sdk)
    view = inspect_url(state["url"], listen=port)
    assert any("refuses this sync" in n and "duplicate function id" in n for n in view.notes)
    checks = reports(view)
    [failure] = checks["unique-ids"].failures
    assert failure.function == "check-dup-place-order" and "declared 2 times" in failure.message
    assert checks["unique-ids"].blocking


def test_unreachable_url():
    with pytest.raises(TargetError, match="cannot reach"):
        inspect_url(f"http://127.0.0.1:{free_port()}/api/inngest", listen=free_port())


def test_listen_and_register_via_together():
    with pytest.raises(TargetError, match="give one"):
        inspect_url("http://127.0.0.1:1/api/inngest", listen=1, register_via="http://127.0.0.1:2")

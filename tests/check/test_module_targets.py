"""Every check on module and file targets: a passing and a failing case each."""

from __future__ import annotations

import ast
import json

import pytest

from stepline.check import Severity, Status, TargetError
from stepline.check.module import inspect_module
from stepline.check.payload import view_from_sync
from stepline.check.report import exit_code
from stepline.check.registry import run_checks
from stepline.check.source import duration_kind, load_source, step_calls, step_name_problem
from stepline.protocol.register import parse_register
from tests.check.conftest import APPS, CHECK_IDS, reports, result_for, statuses

PASSED, FAILED, NA = Status.PASSED, Status.FAILED, Status.NOT_APPLICABLE


@pytest.fixture(scope="module")
def good():
    return reports(inspect_module(str(APPS / "good_app.py")))


@pytest.fixture(scope="module")
def bad():
    return reports(inspect_module(str(APPS / "bad_app.py")))


def test_good_app_passes_every_check(good):
    assert {cid: r.status for cid, r in good.items()} == {cid: PASSED for cid in CHECK_IDS}
    assert not any(r.failures for r in good.values())


def test_bad_app_fails_every_check_but_serving(bad):
    assert {cid: r.status for cid, r in bad.items()} == {cid: (PASSED if cid == "serve-handler" else FAILED)
                                                         for cid in CHECK_IDS}
    for report in bad.values():
        for failure in report.failures:
            assert failure.fix, (report.id, failure)


def test_module_by_dotted_name_equals_file(good):
    by_name = reports(inspect_module("tests.check.apps.good_app"))
    assert {cid: r.status for cid, r in by_name.items()} == {cid: r.status for cid, r in good.items()}


def test_severities_are_the_documented_ones(good):
    assert {cid: r.severity for cid, r in good.items()} == {
        "serve-handler": Severity.CRITICAL, "functions-served": Severity.ERROR, "step-names": Severity.WARNING,
        "wait-timeout": Severity.ERROR, "concurrency": Severity.WARNING, "typed-events": Severity.WARNING,
        "unique-ids": Severity.CRITICAL, "sleep-durations": Severity.WARNING, "retries": Severity.WARNING,
        "payment-idempotency": Severity.ERROR,
    }


# -- serve handler --------------------------------------------------------------------------------


def test_serve_handler_found_at_import(good):
    result = good["serve-handler"].results[0]
    assert result.status is PASSED and "flask" in result.message


def test_serve_handler_missing_is_critical():
    view = inspect_module(str(APPS / "no_serve_app.py"))
    checks = reports(view)
    report = checks["serve-handler"]
    assert report.status is FAILED and report.severity is Severity.CRITICAL and report.blocking
    assert "nothing serves" in report.failures[0].message
    assert "serve_flask(app, client)" in report.failures[0].fix
    # Without a handler, which functions it serves cannot be judged.
    assert checks["functions-served"].status is NA
    assert exit_code(list(checks.values())) == 1


def test_serve_call_in_an_app_factory_counts():
    checks = reports(inspect_module(str(APPS / "factory_app.py")))
    assert checks["serve-handler"].status is PASSED
    assert "serve_flask" in checks["serve-handler"].results[0].message
    assert checks["serve-handler"].results[0].location == "tests/check/apps/factory_app.py:19"
    # The factory has not run: whether every function is served is unknown, not failed.
    assert checks["functions-served"].status is PASSED
    assert "show only in the app's code" in checks["functions-served"].results[0].message


# -- functions registered with the serve handler ------------------------------------------------


def test_every_function_served(good):
    assert statuses(good["functions-served"]) == {"check-good-fulfil-order": PASSED, "check-good-charge-card": PASSED}


def test_function_left_out_of_the_serve_list(bad):
    report = bad["functions-served"]
    failure = result_for(report, "check-bad-weekly-report")
    assert failure.status is FAILED
    assert "no serve handler serves it" in failure.message
    assert failure.location == "tests/check/apps/bad_app.py:36"
    assert "'weekly-report'" in failure.fix
    assert result_for(report, "check-bad-charge-customer").status is PASSED


# -- step names ---------------------------------------------------------------------------------


def test_descriptive_kebab_case_steps(good):
    steps = {r.step for r in good["step-names"].results}
    assert steps == {"reserve-stock", "wait-for-payment", "cool-off", "ship-order", "capture-payment"}


def test_bad_step_names_named_with_their_function(bad):
    failures = {r.step: r for r in bad["step-names"].failures}
    assert set(failures) == {"Charge Card", "s1"}
    assert failures["Charge Card"].function == "check-bad-charge-customer"
    assert "'Charge Card'" in failures["Charge Card"].message and "kebab-case" in failures["Charge Card"].message
    assert "rename it to 'charge-card'" in failures["Charge Card"].fix
    assert "does not say what the step does" in failures["s1"].message
    assert failures["s1"].location == "tests/check/apps/bad_app.py:20"


@pytest.mark.parametrize("step_id,ok", [
    ("charge-card", True), ("send-welcome-email", True), ("embed", True), ("retry-charge-2", True), ("step-2", False),
    ("Charge Card", False), ("charge_card", False), ("chargeCard", False), ("a", False), ("s1", False),
    ("step", False), ("step-1", False), ("work", False), ("-charge", False),
])
def test_step_name_rule(step_id, ok):
    assert (step_name_problem(step_id) is None) is ok


# -- wait_for_event timeouts ----------------------------------------------------------------------


def test_wait_with_timeout(good):
    [result] = good["wait-timeout"].results
    assert result.status is PASSED and result.step == "wait-for-payment" and "'1h'" in result.message


def test_wait_without_timeout(bad):
    [failure] = bad["wait-timeout"].failures
    assert failure.step == "wait-for-receipt" and failure.function == "check-bad-charge-customer"
    assert "has no timeout" in failure.message
    assert 'timeout="7d"' in failure.fix
    assert bad["wait-timeout"].blocking


# -- concurrency ----------------------------------------------------------------------------------


def test_concurrency_limits(good, bad):
    assert statuses(good["concurrency"]) == {"check-good-fulfil-order": PASSED, "check-good-charge-card": PASSED}
    assert result_for(bad["concurrency"], "check-bad-weekly-report").status is PASSED
    failure = result_for(bad["concurrency"], "check-bad-charge-customer")
    assert failure.status is FAILED and "no concurrency limit" in failure.message
    assert "concurrency=10" in failure.fix


# -- typed events ---------------------------------------------------------------------------------


def test_typed_triggers(good):
    result = result_for(good["typed-events"], "check-good-fulfil-order")
    assert result.status is PASSED and "OrderPlaced" in result.message


def test_untyped_trigger(bad):
    failure = result_for(bad["typed-events"], "check-bad-charge-customer")
    assert failure.status is FAILED and "'billing/charge.requested'" in failure.message
    assert "class ChargeRequested(EventData, name='billing/charge.requested')" in failure.fix
    # A cron-triggered function has no event to type.
    assert result_for(bad["typed-events"], "check-bad-weekly-report").status is NA


# -- unique ids -----------------------------------------------------------------------------------


def test_unique_ids(good):
    [result] = good["unique-ids"].results
    assert result.status is PASSED and "2 function id(s), all unique" in result.message


def test_two_clients_with_one_app_id_declare_the_same_function(bad):
    [failure] = bad["unique-ids"].failures
    assert failure.function == "check-bad-sync-ledger"
    assert "declared 2 times" in failure.message and "sync as one app" in failure.message
    assert "bad_app.py:25" in failure.message and "bad_app.py:30" in failure.message
    assert bad["unique-ids"].blocking


def test_duplicate_id_that_stops_the_import_is_reported_from_source():
    view = inspect_module(str(APPS / "duplicate_app.py"))
    assert view.import_error and "already declared" in view.import_error
    checks = reports(view)
    [failure] = checks["unique-ids"].failures
    assert failure.function == "nightly-report"
    assert "duplicate_app.py:12" in failure.message and "duplicate_app.py:17" in failure.message
    # What needed the imported objects is not applicable, with the import error as the reason.
    assert checks["concurrency"].status is NA and "did not import" in checks["concurrency"].reason
    assert exit_code(list(checks.values())) == 1


# -- sleeps ---------------------------------------------------------------------------------------


def test_sleep_with_a_duration_string(good):
    [result] = good["sleep-durations"].results
    assert result.status is PASSED and result.step == "cool-off"


def test_sleep_with_raw_milliseconds(bad):
    [failure] = bad["sleep-durations"].failures
    assert failure.step == "s1" and "bare number (5000)" in failure.message
    assert "'5s'" in failure.fix and "datetime.timedelta(seconds=5)" in failure.fix


@pytest.mark.parametrize("expr,kind", [
    ('"24h"', "string"), ('f"{n}s"', "string"), ("datetime.timedelta(hours=1)", "timedelta"),
    ("timedelta(seconds=s) * 2", "timedelta"), ("3000", "number"), ("3 * 60 * 1000", "number"),
    ("ctx.event.data.get('seconds', 3) * 1000", "number"), ("int(x)", "number"), ("delay", "unknown"),
])
def test_duration_kinds(expr, kind):
    assert duration_kind(ast.parse(expr, mode="eval").body) == kind


def test_only_calls_on_step_are_steps(tmp_path):
    path = tmp_path / "snippet.py"
    path.write_text("import time\n\ndef f(ctx, step):\n    time.sleep(3)\n    ctx.step.sleep('nap', 3000)\n"
                    "    step.run('fetch-user', g)\n    ctx.step.run(name, g)\n")
    calls = step_calls(load_source(str(path)))
    assert [(c.tool, c.step_id) for c in calls] == [("sleep", "nap"), ("run", "fetch-user"), ("run", None)]


# -- retries --------------------------------------------------------------------------------------


def test_retries(good, bad):
    assert statuses(good["retries"]) == {"check-good-fulfil-order": PASSED, "check-good-charge-card": PASSED}
    assert "retries=1" in result_for(bad["retries"], "check-bad-weekly-report").message
    failure = result_for(bad["retries"], "check-bad-charge-customer")
    assert failure.status is FAILED and "default (3 retries)" in failure.message and "retries=" in failure.fix


# -- payment idempotency ----------------------------------------------------------------------------


def test_idempotent_payment_function(good):
    [result] = good["payment-idempotency"].results
    assert result.status is PASSED and result.function == "check-good-charge-card"
    assert "'event.data.order_id'" in result.message


def test_payment_function_without_idempotency(bad):
    [failure] = bad["payment-idempotency"].failures
    assert failure.function == "check-bad-charge-customer"
    assert "contains 'charge'" in failure.message
    assert "idempotency='event.data." in failure.fix
    assert bad["payment-idempotency"].blocking


def test_no_payment_functions_is_not_applicable():
    checks = reports(inspect_module(str(APPS / "factory_app.py")))
    assert checks["payment-idempotency"].status is NA
    assert "no payment-related functions" in checks["payment-idempotency"].reason


# -- apps on the official SDK, as module targets -------------------------------------------------


def test_official_sdk_module():
    checks = reports(inspect_module(str(APPS / "official_app.py")))
    assert checks["serve-handler"].status is PASSED
    assert statuses(checks["functions-served"]) == {"check-official-refund-order": PASSED,
                                                     "check-official-send-invoice": PASSED}
    [sleep] = checks["sleep-durations"].failures
    assert sleep.step == "wait-for-settlement" and sleep.function == "check-official-refund-order"
    assert "datetime.timedelta(seconds=3)" in sleep.fix
    assert checks["typed-events"].status is NA
    assert statuses(checks["payment-idempotency"]) == {"check-official-refund-order": FAILED,
                                                        "check-official-send-invoice": PASSED}


# -- targets that cannot be checked ---------------------------------------------------------------


@pytest.mark.parametrize("target,message", [
    ("tests/check/apps/missing_app.py", "no such file"),
    ("no_such_module_for_check", "cannot import"),
    ("stepline.protocol.durations", "declares no Stepline client"),
    ("not a module!", "neither a file"),
])
def test_bad_targets(target, message):
    with pytest.raises(TargetError, match=message):
        inspect_module(target)


def test_syntax_error(tmp_path):
    path = tmp_path / "broken_app.py"
    path.write_text("def f(:\n")
    with pytest.raises(TargetError, match="not valid Python"):
        inspect_module(str(path))


def test_import_failure_other_than_a_duplicate(tmp_path):
    path = tmp_path / "raising_app.py"
    path.write_text("raise RuntimeError('no database configured')\n")
    with pytest.raises(TargetError, match="RuntimeError: no database configured"):
        inspect_module(str(path))


def test_every_check_reports_at_least_one_result(good, bad):
    for checks in (good, bad):
        for report in checks.values():
            assert report.results, report.id
    assert len(run_checks(inspect_module(str(APPS / "good_app.py")))) == len(CHECK_IDS)


def test_fix_hints_are_written_in_the_official_sdks_syntax():
    checks = reports(inspect_module(str(APPS / "official_app.py")))
    concurrency = result_for(checks["concurrency"], "check-official-refund-order")
    assert "concurrency=[inngest.Concurrency(limit=10)]" in concurrency.fix and "Concurrency(10" not in concurrency.fix
    [sleep] = checks["sleep-durations"].failures
    assert sleep.fix == "write the duration out: datetime.timedelta(seconds=3)"
    waits = reports(inspect_module(str(APPS / "official_wait_app.py")))
    [wait] = waits["wait-timeout"].failures
    assert "add timeout=datetime.timedelta(days=7)" in wait.fix and '"7d"' not in wait.fix


@pytest.mark.parametrize(("sdk", "spelling"), [
    ("stepline-py:v0.1.0", "set concurrency=10, or Concurrency(10, key='event.data.user_id') per key"),
    ("py:v0.5.19", "set concurrency=[inngest.Concurrency(limit=10)]"),
    ("js:v3.27.0", "set concurrency: { limit: 10 }"),
    ("go:v0.8.0", "set Concurrency: []inngest.ConfigStepConcurrency{{Limit: 10}}"),
    ("", "set concurrency=10, or Concurrency(10, key='event.data.user_id') per key (official Python SDK: "),
])
def test_fix_hints_follow_the_sdk_a_sync_names(sdk, spelling):
    body = {"appname": "shop", "url": "http://127.0.0.1:3000/api/inngest", "framework": "express", "sdk": sdk,
            "v": "0.1", "functions": [{"id": "shop-charge", "name": "charge", "triggers": [{"event": "shop/x"}],
                                       "steps": {"step": {"id": "step", "name": "step", "runtime": {
                                           "type": "http", "url": "http://127.0.0.1:3000/api/inngest"}}}}]}
    view = view_from_sync(parse_register(json.dumps(body).encode()))
    [failure] = reports(view)["concurrency"].failures
    assert failure.fix.startswith(spelling), failure.fix

"""CEL expressions cannot stop or stall the runtime: every place that takes one (sync, a wait's
`if` in an app's reply, bulk cancel) refuses one over the size, nesting, operator or cost limits
with a 4xx or a failed step naming the limit, before the library sees it; whatever the library
raises, its panics included, is caught; and an evaluation reads only the paths it names.

The panic is real: the library panics (a BaseException that ends the thread) on a syntax error
past column 65,535, which is how one register request used to drop its connection and kill the
thread serving it."""

from __future__ import annotations

from typing import Any

import pytest

from stepline.protocol import cel_library as cel
from stepline.protocol import expressions
from stepline.protocol.expressions import EvaluationError, ExpressionError, compile_expression, evaluate, prune
from tests.e2e.conftest import APP_ID, http
from tests.security.conftest import unique

# The reproduction: about 70 KB with a syntax error at the very end.
PANICKING = "event.data.x == 1 && " * 3500 + " ("

TOO_COSTLY = {
    "too-long": ("event.data.x == 'a' || " * 200 + "true", "bytes; the limit is 4096"),
    "too-deep": ("(" * 40 + "event.data.x" + ")" * 40 + " == 1", "nests brackets 40 deep; the limit is 32"),
    "too-many-operators": ("1" + " + 1" * 600 + " > 0", "has 601 operators; the limit is 500"),
    "nested-comprehension": ("event.data.xs.all(x, event.data.ys.exists(y, x == y))", "exists() inside another"),
    "in-inside-comprehension": ("event.data.xs.exists(x, x in event.data.ys)", "`in` inside a comprehension"),
    "call-inside-comprehension": ("event.data.xs.exists(x, size(event.data.s) > x)", "size() inside a comprehension"),
    "map": ("event.data.xs.map(x, x * 2).size() > 0", "map() (its cost grows with the square"),
    "filter": ("event.data.xs.filter(x, x > 0).size() > 0", "filter() (its cost grows with the square"),
}


def panic_type() -> type[BaseException]:
    try:
        cel.compile(PANICKING)
    except BaseException as err:  # noqa: BLE001 - this is the point
        return type(err)
    raise AssertionError("the CEL library no longer panics on this input: update the reproduction")


def test_the_library_really_panics_and_the_panic_is_not_an_exception():
    kind = panic_type()
    assert kind.__name__ == "PanicException" and not issubclass(kind, Exception)


def test_the_panicking_expression_is_refused_by_size_before_the_library_sees_it():
    with pytest.raises(ExpressionError, match="73502 bytes; the limit is 4096"):
        compile_expression(PANICKING)


def test_a_panic_that_gets_past_the_limits_is_still_caught(monkeypatch):
    # With the size limit lifted, the library panics; the panic becomes an ExpressionError.
    monkeypatch.setattr(expressions, "MAX_EXPRESSION_BYTES", 10**6)
    monkeypatch.setattr(expressions, "MAX_OPERATORS", 10**6)
    expressions._compile.cache_clear()
    try:
        with pytest.raises(ExpressionError, match="invalid expression"):
            compile_expression(PANICKING)
    finally:
        expressions._compile.cache_clear()


def register_body(app_id: str, **fn: Any) -> dict[str, Any]:
    url = "http://127.0.0.1:9/api/inngest"
    return {
        "url": url, "appName": app_id, "deployType": "ping", "framework": "flask", "sdk": "py:v0.5.19", "v": "0.1",
        "functions": [{
            "id": f"{app_id}-f", "name": "f", "triggers": [{"event": f"{app_id}/never"}], **fn,
            "steps": {"step": {"id": "step", "name": "step",
                               "runtime": {"type": "http", "url": f"{url}?fnId={app_id}-f&stepId=step"}}},
        }],
    }


WHERE = {
    "trigger": lambda app_id, e: {"triggers": [{"event": f"{app_id}/never", "expression": e}]},
    "cancel-if": lambda app_id, e: {"cancel": [{"event": f"{app_id}/stop", "if": e}]},
    "concurrency-key": lambda app_id, e: {"concurrency": [{"limit": 1, "key": e}]},
    "idempotency": lambda app_id, e: {"idempotency": e},
    "priority": lambda app_id, e: {"priority": {"run": e}},
}


@pytest.mark.parametrize("where", WHERE)
def test_sync_refuses_the_panicking_expression_anywhere_with_a_400_and_the_server_lives_on(cloud, where):
    app_id = unique("sec-cel-")
    status, body = cloud.authed("POST", "/fn/register", register_body(app_id, **WHERE[where](app_id, PANICKING)))
    assert status == 400 and body["status"] == 400, body
    assert "73502 bytes; the limit is 4096" in body["error"], body
    assert cloud.store.get_app(app_id) is None
    assert http("GET", f"{cloud.url}/health")[0] == 200


@pytest.mark.parametrize("case", TOO_COSTLY)
def test_sync_refuses_expressions_over_each_limit(cloud, case):
    source, fragment = TOO_COSTLY[case]
    app_id = unique("sec-cel-")
    status, body = cloud.authed("POST", "/fn/register", register_body(app_id, **WHERE["trigger"](app_id, source)))
    assert status == 400 and fragment in body["error"], body
    assert body["error"].startswith("functions[0].triggers[0].expression: "), body
    assert cloud.store.get_app(app_id) is None


@pytest.mark.parametrize("source", [PANICKING, TOO_COSTLY["nested-comprehension"][0], "event.data.x =="],
                         ids=["panicking", "costly", "syntax-error"])
def test_bulk_cancel_refuses_a_bad_if_with_a_400_and_cancels_nothing(cloud, source):
    [event_id] = cloud.stepline.send({"name": "test/cancellable", "data": {"key": unique("cel-bulk-")}})
    cloud.wait_status(event_id, "Running")
    status, body = cloud.operator("POST", "/v1/cancellations", {"function_id": f"{APP_ID}-cancellable", "if": source})
    assert status == 400 and body["error"].startswith("if: "), body
    assert cloud.run_of(event_id)["status"] == "Running"


def test_a_trigger_stored_before_the_limits_matches_nothing_and_ingest_goes_on(cloud):
    # A store written by an older version may hold what sync refuses now: ingest must survive it.
    app_id = unique("sec-cel-old-")
    status, body = cloud.authed("POST", "/fn/register", register_body(app_id))
    assert status == 200, body
    fn = cloud.store.get_function(f"{app_id}-f")
    fn.config["triggers"] = [{"event": f"{app_id}/go", "expression": PANICKING}]
    fn.event_triggers = [f"{app_id}/go"]
    app = cloud.store.get_app(app_id)
    cloud.store.put_app(app, [fn])

    [event_id] = cloud.stepline.send({"name": f"{app_id}/go", "data": {"x": 1}})
    assert cloud.stepline.runs(event_id) == []
    assert http("GET", f"{cloud.url}/health")[0] == 200


# -- evaluation reads only what the expression names -------------------------------------------------

BIG = {"data": {"id": "o-1", "n": 2, "tags": ["a", "b"], "nested": {"k": {"v": 1}},
                "blob": {str(i): i for i in range(50)}},
       "name": "t/e", "user": {}}
SAME_RESULT = [
    "event.data.id == 'o-1'",
    "event.data.n == 2.0 && has(event.data.nested.k)",
    "has(event.data.missing)",
    "size(event.data) == 5",
    "size(event.data.blob) > 10",
    "'id' in event.data",
    "event.data.tags.exists(t, t == 'b')",
    "event.data['nested'].k.v == 1",
    "event.data.nested == {'k': {'v': 1}}",
    "event.data.id == async.data.id && async.data.n > 1",
    "event.data.tags[1] == 'b'",
    "event.data.missing.deeper == 1",
    "event.data.id.startsWith('o-')",
    "event.name + '/' + event.data.id == 't/e/o-1'",
]


@pytest.mark.parametrize("source", SAME_RESULT)
def test_evaluating_over_the_pruned_context_gives_what_the_whole_context_gives(source):
    context = {"event": BIG, "async": BIG}
    try:
        whole: Any = cel.compile(source).execute(context)
    except Exception as err:  # noqa: BLE001
        whole = type(err)
    try:
        pruned: Any = evaluate(source, context)
    except EvaluationError:
        pruned = "error"
    assert pruned == whole or (pruned == "error" and isinstance(whole, type)), (pruned, whole)


def test_an_evaluation_converts_only_the_paths_it_reads():
    huge = {"data": {"id": "o-1", "items": {str(i): i for i in range(300_000)}}}
    compiled = compile_expression("event.data.id == async.data.id")
    assert prune({"event": huge, "async": huge}, compiled.paths) == {
        "event": {"data": {"id": "o-1"}}, "async": {"data": {"id": "o-1"}},
    }
    whole = compile_expression("size(event.data.items) > 0 && event.data.items['7'] == 7")
    assert prune({"event": huge}, whole.paths)["event"]["data"].keys() == {"items"}

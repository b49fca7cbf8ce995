"""`POST /fn/register` under mutated syncs: the bodies the Python and TypeScript SDKs send (as
captured), with a field dropped, retyped or given a value its check must refuse. A refusal is a
4xx naming the field's path and leaves every app, function and cron schedule as it was; an
accepted sync reads back through the REST API as registered."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.fuzz.harness import World, assert_names_problem, assert_well_formed
from tests.fuzz.strategies import body_of, garbage_body, json_value, raw_json_value
from tests.protocol.captures import PY_BATCHED, PY_DEBOUNCED, PY_REGISTER, TS_REGISTER

Path = tuple[Any, ...]


def _with_flow_control(base: dict[str, Any]) -> dict[str, Any]:
    """The Python capture plus its batched and debounced functions, so every rule is in play."""
    body = copy.deepcopy(base)
    template = body["functions"][0]
    for extra in (PY_BATCHED, PY_DEBOUNCED):
        fn = {**copy.deepcopy(template), **extra}
        fn["steps"]["step"]["runtime"]["url"] = template["steps"]["step"]["runtime"]["url"].replace(template["id"], extra["id"])
        body["functions"].append(fn)
    return body


BASES = [_with_flow_control(PY_REGISTER), copy.deepcopy(TS_REGISTER)]


@pytest.fixture(scope="module", autouse=True)
def synced(world: World) -> None:
    """The Python shape synced once, so a refused sync has something to leave alone."""
    reply = world.request("POST", "/fn/register", json.dumps(BASES[0]).encode())
    assert reply.status == 200, reply


# -- paths and mutations ------------------------------------------------------------------------

def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every path into ``value`` (keys and indexes), parents before children."""
    found: list[Path] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def at(body: Any, path: Path) -> Any:
    for part in path:
        body = body[part]
    return body


def render(path: Path) -> str:
    """A path as errors write it: ``functions[1].rateLimit.period``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def mutated(body: dict[str, Any], path: Path, value: Any = None, *, drop: bool = False) -> dict[str, Any]:
    body = copy.deepcopy(body)
    parent = at(body, path[:-1])
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return body


@st.composite
def any_mutation(draw: st.DrawFn) -> dict[str, Any]:
    """One to three edits anywhere: drop a key or item, or put any JSON there."""
    body = draw(st.sampled_from(BASES))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        candidates = paths(body)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        body = mutated(body, path, drop=True) if draw(st.booleans()) else mutated(body, path, draw(raw_json_value))
    return body


# Values each kind of field must refuse, by the field's last key (and its parent's, where the
# same name means different things).
BAD_CRON = ["not a cron", "* * *", "61 * * * *", "* 25 * * *", "TZ=Nowhere/Land * * * * *", "", "@never",
            "* * * * * * * *", "0 0 31 2 *x"]
BAD_DURATION = ["", "abc", "10", "1x", "5 s", "s", "1e3s", "9999999999999999999h", "--1s", "1h-"]
BAD_EXPRESSION = ["event.data.x ==", "((", "", "   ", "event.data.'", "a b c", "}{"]
BAD_URL = ["ftp://host/api", "not a url", "", "http:x", "//host/api", "mailto:a@b", "javascript:alert(1)"]
NOT_TEXT = [5, 1.5, True, None, [], {}]
NOT_INT = ["2", 1.5, True, None, [], {}]


def bad_values(path: Path) -> list[Any] | None:
    key = path[-1]
    parent = path[-3] if len(path) >= 3 and isinstance(path[-2], int) else (path[-2] if len(path) >= 2 else None)
    if key == "cron":
        return BAD_CRON + [c for c in NOT_TEXT if c is not None]
    if key == "period":
        return BAD_DURATION + ["0s", "-1s"] + [v for v in NOT_TEXT if v is not None]
    if key in ("timeout", "start", "finish", "jitter"):
        return BAD_DURATION + ["-1s"] + [v for v in NOT_TEXT if v is not None]
    if key in ("expression", "if", "key", "idempotency") or (key == "run" and parent == "priority"):
        return BAD_EXPRESSION + [v for v in NOT_TEXT if v is not None]
    if key == "url":
        return BAD_URL + [v for v in NOT_TEXT if v is not None]
    if key == "limit" and parent == "concurrency":
        return [-1] + NOT_INT
    if key in ("limit", "burst", "maxSize"):
        return [0, -3] + [v for v in NOT_INT if v is not None]
    if key == "attempts":
        return [-1] + NOT_INT
    if key in ("mode", "scope") and parent in ("singleton", "concurrency"):
        return ["sometimes", "", 3]
    if key in ("appname", "appName") or (key == "id" and parent == "functions") or (key == "event" and parent in ("triggers", "cancel")):
        return ["", "   ", "x" * 513] + [v for v in NOT_TEXT if v is not None]
    if key == "steps" and parent == "functions" or key == "functions":
        return [{}] if key == "steps" else ["fns", 3, {}]
    return None


@st.composite
def refused_mutation(draw: st.DrawFn) -> tuple[dict[str, Any], Path]:
    """One edit that the checks must refuse, and the path it made wrong."""
    body = draw(st.sampled_from(BASES))
    targets = [(p, v) for p in paths(body) if (v := bad_values(p)) is not None]
    path, values = draw(st.sampled_from(targets))
    return mutated(body, path, draw(st.sampled_from(values))), path


REQUIRED = [("appname",), ("url",), ("functions", 0, "id"), ("functions", 0, "steps"),
            ("functions", 0, "steps", "step", "runtime"), ("functions", 0, "steps", "step", "runtime", "url"),
            ("functions", 1, "rateLimit", "limit"), ("functions", 1, "rateLimit", "period"),
            ("functions", 1, "throttle", "period"), ("functions", 1, "singleton", "mode"),
            ("functions", 1, "concurrency", 0, "limit"), ("functions", 1, "cancel", 0, "event"),
            ("functions", 3, "batchEvents", "maxSize"), ("functions", 4, "debounce", "period"),
            ("functions", 0, "triggers", 0, "event")]


# -- properties --------------------------------------------------------------------------------

def assert_unchanged(world: World, before: Any) -> None:
    assert world.registry_snapshot() == before, "a refused sync changed the registry"


def registered_functions(world: World, app_id: str) -> list[dict[str, Any]]:
    """The app's functions as the REST API shows them. An id that needs percent-encoding is read
    from the store instead: API Gateway decodes the path before routing it and the dev server
    does not, so such ids are not addressed the same way on both (and one holding a slash, `?`
    or `#` on neither)."""
    if quote(app_id, safe="") != app_id:
        app = world.store.get_app(app_id)
        return [{"function_id": f.fn_id, "url": f.url, "event_triggers": f.event_triggers, "config": f.config}
                for f in map(world.store.get_function, app.function_ids)]
    reply = world.request("GET", f"/v1/apps/{app_id}/functions")
    assert reply.status == 200, reply
    return reply.body["data"]


def assert_registered(world: World, body: dict[str, Any]) -> None:
    app_id = body.get("appname") or body.get("appName") or body.get("app_id")
    stored = {f["function_id"]: f for f in registered_functions(world, app_id)}
    sent = {f["id"]: f for f in body.get("functions") or []}
    assert set(stored) == set(sent)
    for fn_id, fn in sent.items():
        events = [t["event"] for t in fn.get("triggers") or [] if t.get("event") is not None]
        assert sorted(stored[fn_id]["event_triggers"]) == sorted(set(events))
        assert [t.get("cron") for t in stored[fn_id]["config"].get("triggers", [])] == [t.get("cron") for t in fn.get("triggers") or []]
        assert "deployId" not in stored[fn_id]["url"]


def sync(world: World, body: bytes, kind: str | None = None):
    headers = {"x-inngest-expected-server-kind": kind} if kind is not None else None
    return world.request("POST", "/fn/register", body, headers)


@given(body=any_mutation())
@example(body={**BASES[0], "functions": [BASES[0]["functions"][0]] * 2})
@example(body={**BASES[0], "functions": [{**BASES[0]["functions"][1], "concurrency": [{"limit": 1}] * 3}]})
@example(body={**BASES[0], "functions": [{**BASES[0]["functions"][1], "concurrency": 3}]})
@example(body={**BASES[0], "functions": [{**BASES[0]["functions"][1], "debounce": {"period": "8d"}}]})
@example(body={**BASES[0], "functions": [{**BASES[0]["functions"][3], "rateLimit": {"limit": 1, "period": "1s"}}]})
@example(body={**BASES[0], "functions": None})
@example(body={**BASES[0], "appname": "/"})
@example(body={**BASES[1], "appName": "my app%"})
def test_any_edit_of_an_sdk_sync_is_registered_or_refused_naming_the_field(world, body):
    world.tick()
    before = world.registry_snapshot()
    reply = sync(world, json.dumps(body).encode())
    event(f"status {reply.status}")
    assert_well_formed(reply)
    if reply.status == 200:
        assert reply.body["ok"] is True
        assert_registered(world, body)
    else:
        assert_names_problem(reply)
        assert_unchanged(world, before)


@given(case=refused_mutation())
def test_a_bad_value_is_refused_naming_its_path(world, case):
    body, path = case
    before = world.registry_snapshot()
    reply = sync(world, json.dumps(body).encode())
    # The field itself, or the object whose check it failed (a trigger with no event, a
    # debounce period over the maximum).
    named = {render(path), render(path[:-1])}
    assert_names_problem(reply)
    assert reply.body["error"].split(":")[0] in named, (reply.body, named)
    assert_unchanged(world, before)


def _present(body: Any, path: Path) -> bool:
    try:
        at(body, path)
    except (KeyError, IndexError):
        return False
    return True


# The TypeScript capture spells appName its own way and has fewer functions.
MISSING = [pytest.param(0, path, id=f"python-{render(path)}") for path in REQUIRED] + [
    pytest.param(1, ts_path, id=f"typescript-{render(ts_path)}")
    for ts_path in (tuple("appName" if p == "appname" else p for p in path) for path in REQUIRED)
    if _present(BASES[1], ts_path)
]


@pytest.mark.parametrize("base, path", MISSING)
def test_a_missing_required_field_is_refused_naming_it(world, base, path):
    body = BASES[base]
    before = world.registry_snapshot()
    reply = sync(world, json.dumps(mutated(body, path, drop=True)).encode())
    assert_names_problem(reply)
    assert reply.body["error"].split(":")[0] in {render(path), render(path[:-1]), "appname"}, reply.body
    assert_unchanged(world, before)


@given(body=garbage_body | body_of(st.dictionaries(st.sampled_from(["appname", "appName", "url", "functions", "sdk"]),
                                                    json_value)),
       kind=st.none() | st.sampled_from(["dev", "cloud", ""]) | st.text(max_size=8))
def test_any_body_or_server_kind_is_answered(world, body, kind):
    before = world.registry_snapshot()
    reply = sync(world, body, kind)
    assert_well_formed(reply)
    if reply.status != 200:
        assert_unchanged(world, before)

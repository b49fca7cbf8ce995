"""The REST API under any query, path id and body: listings page through exactly what the store
holds under the filters asked for, lookups of unknown ids are a 404, and a refused replay, rerun
or cancellation changes no run."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from stepline.engine.http import HttpResponse
from stepline.engine.ports import Run, RunStatus, StoredEvent
from tests.fuzz.harness import World, assert_names_problem, assert_well_formed, examples
from tests.fuzz.strategies import body_of, garbage_body, json_value, raw_json_value, unicode_text

APP = "fuzz-rest"
STEPS = f"{APP}-steps"
SLEEPY = f"{APP}-sleepy"
FAILING = f"{APP}-failing"
STATUS_NAMES = {"Running": {RunStatus.RUNNING, RunStatus.QUEUED}, "Completed": {RunStatus.COMPLETED},
                "Failed": {RunStatus.FAILED}, "Cancelled": {RunStatus.CANCELLED}}
STEP_IDS = ["a" * 40, "b" * 40]


def respond(url: str, request: dict[str, Any]) -> HttpResponse:
    """Two steps then done; a sleep that never ends; or a failure that is not retried."""
    fn = url.split("fnId=")[1].split("&")[0]
    done = set(request["steps"])
    if fn == FAILING:
        return HttpResponse(500, b'{"name": "Error", "message": "refused"}', {"x-inngest-no-retry": "true"})
    if fn == SLEEPY:
        return HttpResponse(206, json.dumps([{"id": "c" * 40, "op": "Sleep", "name": "30d"}]).encode())
    todo = [s for s in STEP_IDS if s not in done]
    if not todo:
        return HttpResponse(200, json.dumps({"done": request["event"]["data"]}).encode())
    op = {"id": todo[0], "op": "StepRun", "name": f"step-{len(done)}", "displayName": f"step-{len(done)}", "data": len(done)}
    return HttpResponse(206, json.dumps([op]).encode())


def drive(world: World) -> None:
    """Run every queued message (sleeps stay asleep: their wake-ups are weeks away)."""
    while bodies := world.drain_queue():
        for body in bodies:
            world.engine.executor.handle(body)


@pytest.fixture(scope="module")
def population(world: World) -> Population:
    """Runs in every status, some with step results, over three functions and two event names."""
    world.register(APP, {fn: {"triggers": [{"event": f"rest/{fn.split('-')[-1]}"}]} for fn in (STEPS, SLEEPY, FAILING)})
    world.app.respond = respond
    for i in range(4):
        world.clock.advance(1000)
        for fn in (STEPS, SLEEPY, FAILING):
            world.engine.ingest.accept([{"name": f"rest/{fn.split('-')[-1]}", "data": {"i": i}}])
        drive(world)
    sleepy = world.runs_since(0)
    world.engine.cancel_run(next(r.run_id for r in sleepy if r.fn_id == SLEEPY))
    world.clock.advance(1000)
    # Queued, never picked up.
    world.engine.ingest.accept([{"name": "rest/steps", "data": {"i": "queued"}}])
    world.drain_queue()
    runs = world.runs_since(0)
    assert {r.status for r in runs} == {RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.COMPLETED, RunStatus.FAILED,
                                        RunStatus.CANCELLED}
    events, _ = world.store.list_events(limit=100)
    return Population(runs, events)


class Population:
    """What the module's requests find (a short repr: hypothesis prints it with each failure)."""

    def __init__(self, runs: list[Run], events: list[StoredEvent]) -> None:
        self.runs = runs
        self.events = events
        self.first = min(r.created_at for r in runs)
        self.last = max(r.created_at for r in runs)

    def __repr__(self) -> str:
        return f"Population({len(self.runs)} runs, {len(self.events)} events)"


def run_ids(pop: Population) -> list[str]:
    return [r.run_id for r in pop.runs]


def runs_snapshot(world: World) -> dict[str, Any]:
    return {r.run_id: (r.status, r.ended_at) for r in world.runs_since(0)}


# -- query values --------------------------------------------------------------------------------

def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def time_value(pop_ms: int) -> st.SearchStrategy[str]:
    near = st.integers(min_value=pop_ms - 3000, max_value=pop_ms + 3000)
    return (near.map(str) | near.map(iso) | st.integers(min_value=0).map(str)
            | st.sampled_from(["", "now", "-1", "1e3", "2024-13-01T00:00:00Z", "0001-01-01T00:00:00Z",
                               "9999-12-31T23:59:59Z", "99999999999999999999", "2026-01-01", "NaN", "0x10", "１２３"])
            | st.text(max_size=12))


limit_value = st.integers(min_value=-5, max_value=120).map(str) | st.sampled_from(["", "abc", "1.5", " 3", "+3", "١٠"])
def b64(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


# Garbage, and cursors shaped like the ones the API and the stores write, with odd insides.
cursor_value = st.text(max_size=24) | st.sampled_from(["", "W10", "e30", "eyJrIjoxfQ"]) | st.sampled_from([
    "[]", "[1,2]", '["x","y"]', '{"k": 1}', '{"k": ""}', '{"k": "' + "9" * 2000 + '"}', '{"k": "~"}',
    "[" * 5000 + "]" * 5000, "[" + "9" * 30 + ', "x"]', '[-1, ""]', "[true, \"x\"]", '[1e300, "x"]',
    '{"k": "0001800000000000#zz"}',
]).map(b64)


def csv(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(values, max_size=3).map(",".join)


@st.composite
def runs_query(draw: st.DrawFn, pop: Population) -> dict[str, str]:
    fields = {
        "limit": limit_value,
        "cursor": cursor_value,
        "status": csv(st.sampled_from([*STATUS_NAMES, "running", "COMPLETED", "Queued", "", " Failed "]) | st.text(max_size=6)),
        "function_id": csv(st.sampled_from([STEPS, SLEEPY, FAILING, "nope", ""]) | unicode_text),
        "app_id": csv(st.sampled_from([APP, "other", ""]) | unicode_text),
        "created_after": time_value(pop.first),
        "created_before": time_value(pop.last),
    }
    chosen = draw(st.lists(st.sampled_from(list(fields)), unique=True))
    return {name: draw(fields[name]) for name in chosen}


def parsed_time(text: str | None) -> int | None:
    if not text:
        return None
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def expected_runs(world: World, query: dict[str, str]) -> list[str]:
    """The listing the query asks for, worked out from every run in the store."""
    split = lambda name: [p.strip() for p in query.get(name, "").split(",") if p.strip()]  # noqa: E731
    statuses = set().union(*(STATUS_NAMES[s.capitalize()] for s in split("status"))) if split("status") else None
    fn_ids = split("function_id") or [f.fn_id for f in world.store.list_functions()
                                      if not split("app_id") or f.app_id in split("app_id")]
    after, before = parsed_time(query.get("created_after")), parsed_time(query.get("created_before"))
    runs = [r for r in world.runs_since(0) if r.fn_id in fn_ids
            and (statuses is None or r.status in statuses)
            and (after is None or r.created_at > after) and (before is None or r.created_at < before)]
    return [r.run_id for r in sorted(runs, key=lambda r: (r.created_at, r.run_id), reverse=True)]


# -- properties ----------------------------------------------------------------------------------

@given(data=st.data())
def test_any_runs_query_pages_through_exactly_the_matching_runs(world, population, data):
    query = data.draw(runs_query(population))
    reply = world.request("GET", "/v1/runs", query=query)
    event(f"status {reply.status}")
    assert_well_formed(reply)
    if reply.status != 200:
        assert_names_problem(reply)
        return
    limit = int(query.get("limit") or 20)
    listed = [r["run_id"] for r in reply.body["data"]]
    pages = 1
    while reply.body["cursor"] is not None:
        assert len(reply.body["data"]) == limit
        reply = world.request("GET", "/v1/runs", query={**query, "cursor": reply.body["cursor"]})
        assert reply.status == 200, reply
        listed += [r["run_id"] for r in reply.body["data"]]
        pages += 1
        assert pages <= len(population.runs) + 2, "the cursor never ends"
    if not query.get("cursor"):
        assert listed == expected_runs(world, query)


@given(data=st.data())
def test_any_events_query_pages_newest_first_within_its_bounds(world, population, data):
    names = st.sampled_from(["rest/steps", "rest/sleepy", "rest/nothing", ""]) | unicode_text
    fields = {"limit": limit_value, "cursor": cursor_value, "name": names,
              "received_after": time_value(population.first), "received_before": time_value(population.last)}
    chosen = data.draw(st.lists(st.sampled_from(list(fields)), unique=True))
    query = {name: data.draw(fields[name]) for name in chosen}
    reply = world.request("GET", "/v1/events", query=query)
    assert_well_formed(reply)
    if reply.status != 200:
        assert_names_problem(reply)
        return
    listed = reply.body["data"]
    assert len(listed) <= int(query.get("limit") or 20)
    assert [e["received_at"] for e in listed] == sorted((e["received_at"] for e in listed), reverse=True)
    for item in listed:
        received = parsed_time(item["received_at"])
        assert not query.get("name") or item["name"] == query["name"]
        after, before = parsed_time(query.get("received_after")), parsed_time(query.get("received_before"))
        assert after is None or received > after
        assert before is None or received < before


ROUTES = ["/v1/events/{id}", "/v1/events/{id}/runs", "/v1/runs/{id}", "/v1/runs/{id}/jobs", "/v0/runs/{id}/batch",
          "/v0/runs/{id}/actions", "/v1/functions/{id}", "/v1/apps/{id}/functions"]


@given(route=st.sampled_from(ROUTES), raw=st.booleans(), data=st.data())
def test_any_id_in_a_path_is_found_or_a_404(world, population, route, raw, data):
    known = run_ids(population) + [e.internal_id for e in population.events] + [STEPS, APP]
    ident = data.draw(st.sampled_from(known) | unicode_text.filter(bool) | st.text(min_size=1, max_size=3000)
                      | st.sampled_from(["..", "%2e%2e", "a/b", "%00", " ", "x" * 2048]))
    path = route.replace("{id}", ident if raw and "/" not in ident and ident.isprintable() else quote(ident, safe=""))
    reply = world.request("GET", path)
    assert_well_formed(reply)
    assert reply.status in (200, 404), reply
    if ident not in known:
        # An unknown id is a 404, or an empty listing for the routes that list.
        assert reply.status == 404 or reply.body["data"] == [], reply


def body_for(pop: Population, draw: st.DrawFn) -> bytes:
    step_id = st.sampled_from(STEP_IDS) | json_value | unicode_text
    return draw(garbage_body | body_of(st.fixed_dictionaries({}, optional={"step_id": step_id, "other": json_value})))


@settings(max_examples=examples(20))
@given(action=st.sampled_from(["replay", "rerun", "cancel"]), data=st.data())
def test_replay_rerun_and_cancel_start_or_change_only_what_was_asked(world, population, action, data):
    run_id = data.draw(st.sampled_from(run_ids(population)) | unicode_text.filter(bool).map(lambda s: quote(s, safe="")))
    before = runs_snapshot(world)
    if action == "cancel":
        reply = world.request("DELETE", f"/v1/runs/{run_id}")
    else:
        body = body_for(population, data.draw) if action == "rerun" else data.draw(st.none() | garbage_body)
        reply = world.request("POST", f"/v1/runs/{run_id}/{action}", body)
    event(f"{action} {reply.status}")
    assert_well_formed(reply)
    after = runs_snapshot(world)
    if reply.status != 200:
        assert after == before, "a refused request changed runs"
        return
    new = set(after) - set(before)
    changed = {r for r in before if r in after and after[r] != before[r]}
    if action == "cancel":
        assert new == set() and changed <= {run_id}
        assert reply.body["data"]["status"] in ("Cancelled", "Completed", "Failed")
    else:
        assert changed == set() and new == {reply.body["data"]["run_id"]}
        origin = reply.body["data"]["origin"]
        assert origin["kind"] == action and origin["run_id"] == run_id
        world.drain_queue()


@settings(max_examples=examples(15))  # each example reads every run twice
@given(body=garbage_body | body_of(st.fixed_dictionaries({}, optional={
    "function_id": st.sampled_from([STEPS, SLEEPY, "steps", "nope", ""]) | json_value,
    "app_id": st.sampled_from([APP, "x"]) | json_value,
    "if": st.sampled_from(["event.data.i == 1", "event.data.i ==", "true", ""]) | json_value,
    "started_after": st.integers(min_value=-(10**20), max_value=10**20) | json_value | time_value(0),
    "started_before": st.integers(min_value=-(10**20), max_value=10**20) | json_value | time_value(0),
})))
@example(body=json.dumps({"function_id": STEPS, "started_after": 10**17}).encode())
@example(body=json.dumps({"function_id": STEPS, "started_before": "99999999999999999999"}).encode())
def test_a_bulk_cancellation_cancels_only_live_runs_it_matches(world, population, body):
    before = runs_snapshot(world)
    reply = world.request("POST", "/v1/cancellations", body)
    event(f"status {reply.status}")
    assert_well_formed(reply)
    after = runs_snapshot(world)
    if reply.status != 200:
        assert_names_problem(reply) if reply.status == 400 else None
        assert after == before, "a refused cancellation changed runs"
        return
    changed = [r for r in before if after[r] != before[r]]
    assert len(changed) == reply.body["cancelled"]
    assert all(after[r][0] == RunStatus.CANCELLED for r in changed)


@given(body=garbage_body | body_of(st.fixed_dictionaries({}, optional={
    "url": json_value | st.sampled_from(["ftp://x/api", "/api/inngest", "http://", "https:///x", ""]) | unicode_text})))
def test_an_app_sync_request_without_an_http_url_is_refused(world, body):
    # Only bodies that never name a reachable http(s) URL: a valid one makes the server call it.
    try:
        url = json.loads(body).get("url")
    except (ValueError, AttributeError):
        url = None
    if isinstance(url, str) and url.startswith(("http://", "https://")) and url.split("//", 1)[1].split("/")[0]:
        return
    before = world.registry_snapshot()
    reply = world.request("POST", "/v1/apps/sync", body)
    assert_names_problem(reply)
    assert world.registry_snapshot() == before


# -- what fuzzing found ----------------------------------------------------------------------------

DEEP_CURSOR = b64("[" * 5000 + "]" * 5000)
HUGE_TIME_CURSOR = b64("[" + "9" * 30 + ', "x"]')


@pytest.mark.parametrize("path, query, status, named", [
    # Times past what the stores hold were a 500 (SQLite's integers overflowed).
    ("/v1/runs", {"created_after": "99999999999999999999"}, 400, "created_after"),
    ("/v1/events", {"received_before": "99999999999999999999"}, 400, "received_before"),
    # Digits str.isdigit() takes and int() does not were a 500.
    ("/v1/runs", {"created_before": "²"}, 400, "created_before"),
    ("/v1/runs", {"limit": "²"}, 400, "limit"),
    # Cursors the API never wrote: too deep to parse, or a time no store holds.
    ("/v1/runs", {"cursor": DEEP_CURSOR}, 400, "cursor"),
    ("/v1/runs", {"cursor": HUGE_TIME_CURSOR}, 400, "cursor"),
    ("/v1/events", {"cursor": "%%%"}, 400, "cursor"),
    ("/v1/events", {"cursor": DEEP_CURSOR}, 400, "cursor"),
    ("/v1/events", {"cursor": HUGE_TIME_CURSOR}, 400, "cursor"),
    ("/v1/events", {"cursor": b64('{"k": "' + "9" * 2000 + '"}')}, 400, "cursor"),
    ("/v1/events", {"cursor": ""}, 200, None),
])
def test_found_by_fuzzing_listing_parameters(world, population, path, query, status, named):
    reply = world.request("GET", path, query=query)
    assert reply.status == status, reply
    if named:
        assert_names_problem(reply, f"{named}: ")


def test_found_by_fuzzing_a_status_named_twice_lists_each_run_once(world, population):
    reply = world.request("GET", "/v1/runs", query={"status": "Running,running,Failed", "limit": "100"})
    listed = [r["run_id"] for r in reply.body["data"]]
    assert len(listed) == len(set(listed)) and listed == expected_runs(world, {"status": "Running,Failed"})[:100]
    reply = world.request("GET", "/v1/runs", query={"function_id": f"{STEPS},{STEPS}", "limit": "100"})
    listed = [r["run_id"] for r in reply.body["data"]]
    assert len(listed) == len(set(listed)) and listed == expected_runs(world, {"function_id": STEPS})[:100]


@pytest.mark.parametrize("field, value", [("started_after", [1]), ("started_before", {"t": 1}), ("started_after", True)])
def test_found_by_fuzzing_a_cancellation_time_of_the_wrong_type_is_named(world, population, field, value):
    before = runs_snapshot(world)
    reply = world.request("POST", "/v1/cancellations", json.dumps({"function_id": STEPS, field: value}).encode())
    assert_names_problem(reply, f"{field}: ")
    assert runs_snapshot(world) == before

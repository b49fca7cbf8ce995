"""Runs keep the Lambda version they started on: a run that began on version N goes on calling
version N after N+1 is published and registered, while new runs start on N+1; a pinned version
that is deleted sends the run on to the current one; pinning can be turned off."""

from __future__ import annotations

from collections import Counter

import pytest

from stepline import Client, Context, lambda_handler
from stepline.aws.lambda_invoke import LambdaInvokeCaller
from stepline.engine.app_targets import RoutingCaller
from stepline.engine.http import PooledHttpCaller
from stepline.settings import Settings
from tests.e2e.conftest import Stepline, http, start_runtime, wait_for
from tests.private_apps.lambda_service import LambdaService, arn

APP = "fulfil-app"
LIVE = arn(APP, "live")


def fulfil_app(base_url: str, label: str, ran: Counter) -> object:
    """The app's code as deployed in one version, ``label`` naming it in what each step returns."""
    client = Client(APP, dev=True, base_url=base_url, app_version=label)

    def note(step: str, k: str) -> str:
        ran.update([f"{label}/{step}/{k}"])
        return label

    @client.function("fulfil", trigger="order/placed", concurrency=10)
    def fulfil(ctx: Context) -> dict:
        k = ctx.event.data["k"]
        reserved = ctx.step.run("reserve", lambda: note("reserve", k))
        ctx.step.wait_for_event("paid", event="order/paid", timeout="5m", if_=f"async.data.k == '{k}'")
        charged = ctx.step.run("charge", lambda: note("charge", k))
        return {"reserved_on": reserved, "charged_on": charged, "returned_on": label}

    return lambda_handler(client)


def start(tmp_path, lambdas: LambdaService, **settings):
    caller = RoutingCaller(PooledHttpCaller(), lambda_invoke=LambdaInvokeCaller(lambdas.clients))
    config = Settings(mode="dev", retry_base_ms=100, retry_cap_ms=300, **settings)
    return start_runtime("sqlite", tmp_path, [], settings=config, caller=caller)


class World:
    def __init__(self, runtime, lambdas: LambdaService) -> None:
        self.runtime = runtime
        self.lambdas = lambdas
        self.stepline = Stepline(runtime)
        self.ran: Counter = Counter()

    def deploy(self, label: str) -> str:
        """Publish a version running ``label``'s code, move the alias to it and sync, as a deploy does."""
        version = self.lambdas.publish(APP, fulfil_app(self.runtime.url, label, self.ran))
        code, reply = http("POST", f"{self.runtime.url}/v1/apps/sync", {"url": LIVE})
        assert code == 200, reply
        return version

    def start_order(self, k: str, label: str) -> str:
        [event_id] = self.stepline.send({"name": "order/placed", "data": {"k": k}})
        wait_for(lambda: self.ran[f"{label}/reserve/{k}"] == 1, what=f"order {k} to reserve on {label}")
        [run] = wait_for(lambda: self.stepline.runs(event_id), what="the run")
        wait_for(lambda: self.run(run["run_id"]).get("app_version"), what="the run to record its version")
        return event_id

    def pay(self, event_id: str, k: str) -> dict:
        self.stepline.send({"name": "order/paid", "data": {"k": k}})
        [run] = self.stepline.wait_runs_done(event_id)
        return self.run(run["run_id"])

    def run(self, run_id: str) -> dict:
        code, body = http("GET", f"{self.runtime.url}/v1/runs/{run_id}")
        assert code == 200, body
        return body["data"]


@pytest.fixture
def lambdas():
    return LambdaService()


@pytest.fixture
def world(tmp_path, lambdas):
    runtime = start(tmp_path, lambdas)
    try:
        yield World(runtime, lambdas)
    finally:
        runtime.stop()


def test_a_run_keeps_calling_version_n_after_n_plus_1_is_registered(world):
    assert world.deploy("v1") == "1"
    old = world.start_order("a", "v1")
    assert world.deploy("v2") == "2"
    new = world.start_order("b", "v2")

    a, b = world.pay(old, "a"), world.pay(new, "b")
    assert a["status"] == b["status"] == "Completed", (a, b)
    assert a["output"] == {"reserved_on": "v1", "charged_on": "v1", "returned_on": "v1"}
    assert b["output"] == {"reserved_on": "v2", "charged_on": "v2", "returned_on": "v2"}
    assert (a["app_version"], b["app_version"]) == ("1", "2")
    # Each step ran once, on its run's own version.
    assert world.ran == Counter({"v1/reserve/a": 1, "v1/charge/a": 1, "v2/reserve/b": 1, "v2/charge/b": 1})
    # The old run's calls after its first went to version 1 by number; no call ran it on 2.
    pinned = [i for i in world.lambdas.invoked if i.function_name == arn(APP, "1")]
    assert pinned and all(i.executed_version == "1" for i in pinned)


def test_a_run_whose_version_is_gone_goes_on_on_the_current_one_and_is_pinned_to_it(world):
    world.deploy("v1")
    old = world.start_order("c", "v1")
    assert world.deploy("v2") == "2"
    world.lambdas.delete_version(APP, "1")
    run = world.pay(old, "c")
    assert run["status"] == "Completed", run
    assert run["output"] == {"reserved_on": "v1", "charged_on": "v2", "returned_on": "v2"}
    assert run["app_version"] == "2"
    assert world.ran == Counter({"v1/reserve/c": 1, "v2/charge/c": 1})


def test_with_pinning_off_every_call_goes_to_the_alias(tmp_path, lambdas):
    runtime = start(tmp_path, lambdas, pin_app_versions=False)
    try:
        world = World(runtime, lambdas)
        world.deploy("v1")
        old = world.start_order("d", "v1")
        world.deploy("v2")
        run = world.pay(old, "d")
        assert run["output"] == {"reserved_on": "v1", "charged_on": "v2", "returned_on": "v2"}
        assert {i.function_name for i in lambdas.invoked} == {LIVE}
    finally:
        runtime.stop()

"""The deployed Lambdas as built from their environment (on moto): the executor's caller routes
each kind of app to its adapter, and an app synced by ARN through the API Lambda runs through
the executor Lambda by lambda:Invoke into its own handler (moto cannot run Lambda code, so the
Invoke is answered in-process: tests/private_apps/lambda_service.py)."""

from __future__ import annotations

import uuid
from collections import Counter

from stepline import Client, Context, lambda_handler
from stepline.aws.lambda_invoke import LambdaInvokeCaller
from stepline.aws.sigv4_url import SigV4UrlCaller
from stepline.engine.app_targets import RoutingCaller, TargetKind
from stepline.handlers import wiring
from tests.e2e.conftest import http, wait_for
from tests.handlers.test_lambda_entrypoints import lambda_deployment
from tests.private_apps.lambda_service import LambdaService, arn


def test_an_app_synced_by_arn_runs_through_the_deployed_lambdas(monkeypatch):
    with lambda_deployment(monkeypatch) as (url, _, backend, _pump):
        engine = wiring.engine_from_env()
        caller = engine.caller
        assert isinstance(caller, RoutingCaller)
        assert isinstance(caller.private[TargetKind.LAMBDA_URL], SigV4UrlCaller)
        assert isinstance(caller.private[TargetKind.LAMBDA_INVOKE], LambdaInvokeCaller)
        # Lambda's Invoke, answered by the app's handler here instead of by moto.
        lambdas = LambdaService()
        caller.private[TargetKind.LAMBDA_INVOKE] = LambdaInvokeCaller(lambdas.clients)

        ran: Counter = Counter()
        client = Client("stock-app", dev=True, base_url=url)

        @client.function("restock", trigger="stock/low", retries=1, concurrency=5)
        def restock(ctx: Context) -> dict:
            sku = ctx.event.data["sku"]
            ordered = ctx.step.run("order", lambda: ran.update([f"order/{sku}"]) or 10)
            ctx.step.run("notify", lambda: ran.update([f"notify/{sku}"]))
            return {"ordered": ordered}

        lambdas.publish("stock-app", lambda_handler(client))
        code, reply = http("POST", f"{url}/v1/apps/sync", {"url": arn("stock-app", "live")})
        assert code == 200, reply
        sku = uuid.uuid4().hex[:6]
        code, sent = http("POST", f"{url}/e/any-key", {"name": "stock/low", "data": {"sku": sku}})
        assert code == 200, sent

        def finished():
            runs = http("GET", f"{url}/v1/events/{sent['ids'][0]}/runs")[1]["data"]
            return runs and runs[0]["status"] in ("Completed", "Failed") and runs[0]

        run = wait_for(finished, what="the run to finish")
        assert run["status"] == "Completed" and run["output"] == {"ordered": 10}, run
        assert ran == Counter({f"order/{sku}": 1, f"notify/{sku}": 1})
        assert backend.store.get_run(run["run_id"]).app_version == "1"

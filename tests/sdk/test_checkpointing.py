"""Our SDK's checkpointing at the wire: what a call answers when the server offers the checkpoint
stream, the checkpoint API, or neither; when a call runs steps inline and when it must not; how
it ends (budget, too large, stale, a failing API); sync and async functions alike."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from stepline import Client
from stepline.protocol.calls import parse_call_response
from stepline.sdk.serve.handler import Handler, Request, Response
from tests.sdk.conftest import APP_URL, RUN_ID, FakeTransport, TransportError, call_body, h, make_client

STREAM_OFFER = {"x-stepline-checkpoint": "stream", "x-stepline-checkpoint-budget-ms": "60000"}
BIG = 4 * 1024 * 1024 + 100


def functions(client: Client, *, checkpointing: bool = True):
    executed: list[str] = []

    def step(name: str, value: Any = None) -> Any:
        executed.append(name)
        return name if value is None else value

    @client.function("chain", trigger="test/go", retries=3, checkpointing=checkpointing)
    def chain(ctx) -> dict:
        out = [ctx.step.run(f"s{i}", step, f"s{i}") for i in range(1, 4)]
        if ctx.event.data.get("big"):
            out.append(len(ctx.step.run("big", step, "big", "x" * BIG)))
        if ctx.event.data.get("nap"):
            ctx.step.sleep("nap", "1m")
        return {"out": out}

    @client.function("achain", trigger="test/go.async", retries=3, checkpointing=checkpointing)
    async def achain(ctx) -> dict:
        async def one(name: str) -> str:
            await asyncio.sleep(0)
            return step(name)

        return {"out": [await ctx.step.run(f"s{i}", one, f"s{i}") for i in range(1, 4)]}

    return chain, achain, executed


def request(fn, *, headers: dict[str, str] | None = None, target: str = "step", **body: Any) -> Request:
    url = f"{APP_URL}?fnId={fn.composite_id}&stepId={target}"
    return Request(
        "POST", url, {"content-type": "application/json", **(headers or {})}, call_body(step_id=target, **body)
    )


def stream_lines(response: Response) -> list[dict[str, Any]]:
    assert response.chunks is not None, (response.status, response.body)
    assert response.headers["x-stepline-checkpoint"] == "stream"
    return [json.loads(line) for line in response.chunks]


async def astream_lines(response: Response) -> list[dict[str, Any]]:
    assert response.achunks is not None, (response.status, response.body)
    return [json.loads(line) async for line in response.achunks]


def answer(line: dict[str, Any]):
    result = line["result"]
    return parse_call_response(result["status"], result["headers"], json.dumps(result["body"]).encode(), 0)


def test_without_an_offer_a_call_runs_one_step(client):
    chain, _, executed = functions(client)
    response = Handler(client, framework="test").handle(request(chain), streaming=True)
    assert response.chunks is None and response.status == 206
    assert [op["op"] for op in json.loads(response.body)] == ["StepRun"]
    assert executed == ["s1"]


def test_offered_a_stream_a_call_runs_every_step_and_streams_each(client):
    chain, _, executed = functions(client)
    lines = stream_lines(Handler(client, framework="test").handle(request(chain, headers=STREAM_OFFER), streaming=True))
    assert [line["step"]["id"] for line in lines[:-1]] == [h("s1"), h("s2"), h("s3")]
    assert [line["step"]["data"] for line in lines[:-1]] == ["s1", "s2", "s3"]
    result = answer(lines[-1])
    assert result.kind == "complete" and result.output == {"out": ["s1", "s2", "s3"]}
    assert executed == ["s1", "s2", "s3"]


def test_async_functions_stream_too(client):
    _, achain, executed = functions(client)
    handler = Handler(client, framework="test")

    async def go() -> list[dict[str, Any]]:
        return await astream_lines(await handler.handle_async(request(achain, headers=STREAM_OFFER), streaming=True))

    lines = asyncio.run(go())
    assert [line["step"]["data"] for line in lines[:-1]] == ["s1", "s2", "s3"]
    assert answer(lines[-1]).output == {"out": ["s1", "s2", "s3"]}
    assert executed == ["s1", "s2", "s3"]


def test_memos_replay_and_the_stream_goes_on_from_the_first_new_step(client):
    chain, _, executed = functions(client)
    memos = {h("s1"): {"data": "s1"}, h("s2"): {"data": "s2"}}
    lines = stream_lines(
        Handler(client, framework="test").handle(request(chain, headers=STREAM_OFFER, steps=memos), streaming=True)
    )
    assert [line["step"]["id"] for line in lines[:-1]] == [h("s3")]
    assert executed == ["s3"]


def test_a_sleep_ends_the_stream_with_the_sleep(client):
    chain, _, _ = functions(client)
    req = request(chain, headers=STREAM_OFFER, event={"name": "test/go", "data": {"nap": True}, "id": "e", "ts": 1})
    lines = stream_lines(Handler(client, framework="test").handle(req, streaming=True))
    assert len(lines) == 4
    assert [op.op for op in answer(lines[-1]).ops] == ["Sleep"]


@pytest.mark.parametrize(
    "why",
    ["function off", "client off", "retry attempt", "targeted", "told to plan", "adapter cannot stream"],
)
def test_calls_that_must_not_run_steps_inline_do_not(why):
    client = make_client(checkpointing=why != "client off")
    chain, _, executed = functions(client, checkpointing=why != "function off")
    kwargs: dict[str, Any] = {"headers": STREAM_OFFER}
    if why == "retry attempt":
        kwargs["attempt"] = 1
    if why == "targeted":
        kwargs["target"] = h("s1")
    if why == "told to plan":
        kwargs["disable"] = True
    response = Handler(client, framework="test").handle(
        request(chain, **kwargs), streaming=why != "adapter cannot stream"
    )
    assert response.chunks is None
    ops = json.loads(response.body)
    assert len(ops) == 1 and ops[0]["op"] == ("StepPlanned" if why == "told to plan" else "StepRun")
    assert len(executed) == (0 if why == "told to plan" else 1)


def test_a_call_ends_at_its_budget_asking_to_be_called_again(client):
    chain, _, executed = functions(client)
    offer = {**STREAM_OFFER, "x-stepline-checkpoint-budget-ms": "0"}
    lines = stream_lines(Handler(client, framework="test").handle(request(chain, headers=offer), streaming=True))
    assert [line["step"]["id"] for line in lines[:-1]] == [h("s1")]  # a call always moves the run
    assert [op.op for op in answer(lines[-1]).ops] == ["DiscoveryRequest"]
    assert executed == ["s1"]


def test_an_output_over_the_limit_ends_the_call_with_the_step(client):
    chain, _, _ = functions(client)
    req = request(chain, headers=STREAM_OFFER, event={"name": "test/go", "data": {"big": True}, "id": "e", "ts": 1})
    lines = stream_lines(Handler(client, framework="test").handle(req, streaming=True))
    assert len(lines) == 4
    [op] = answer(lines[-1]).ops
    assert op.op == "StepRun" and op.id == h("big")  # the server turns it into the step's error


def test_a_reader_that_goes_away_stops_the_function_at_its_next_step(client):
    chain, _, executed = functions(client)
    chunks = Handler(client, framework="test").handle(request(chain, headers=STREAM_OFFER), streaming=True).chunks
    assert chunks is not None
    first = next(chunks)
    assert json.loads(first)["step"]["id"] == h("s1")
    chunks.close()  # the server closed the connection
    # The function was handed back control only after the first line left: it ran s1 and s2 at
    # most (s2's line could not be taken), never s3.
    assert executed in (["s1"], ["s1", "s2"])


# -- the checkpoint API (what the TypeScript SDK does) -------------------------------------------


def api_client(*replies: Any) -> tuple[Client, FakeTransport]:
    transport = FakeTransport(*replies)
    return make_client(transport=transport), transport


def api_call(client: Client, fn) -> Response:
    return Handler(client, framework="test").handle(request(fn, fn_id="fn-internal", qi_id="token-1"))


def test_offered_the_api_each_step_is_posted_before_the_next_one_runs(client):
    client, transport = api_client((200, {}), (200, {}), (200, {}))
    chain, _, executed = functions(client)
    response = api_call(client, chain)
    assert response.status == 200 and json.loads(response.body) == {"out": ["s1", "s2", "s3"]}
    assert response.headers["x-stepline-checkpointed"] == "3"
    posts = transport.requests
    assert [p["url"].split("/v1")[1] for p in posts] == [f"/checkpoint/{RUN_ID}/async"] * 3
    assert [p["body"]["steps"][0]["id"] for p in posts] == [h("s1"), h("s2"), h("s3")]
    assert {(p["body"]["run_id"], p["body"]["fn_id"], p["body"]["qi_id"]) for p in posts} == {
        (RUN_ID, "fn-internal", "token-1")
    }
    assert executed == ["s1", "s2", "s3"]


def test_a_409_stops_the_call_as_stale(client):
    client, _ = api_client((200, {}), (409, {"error": "stale call", "status": 409}))
    chain, _, executed = functions(client)
    response = api_call(client, chain)
    assert response.status == 400 and response.headers["x-inngest-no-retry"] == "true"
    assert json.loads(response.body)["name"] == "StaleDispatchError"
    assert executed == ["s1", "s2"]


def test_when_the_api_keeps_failing_the_answer_carries_the_step(client):
    client, transport = api_client((200, {}), (503, {}), TransportError("down"), (500, {}))
    chain, _, executed = functions(client)
    response = api_call(client, chain)
    ops = json.loads(response.body)
    assert response.status == 206 and [(o["op"], o["id"], o["data"]) for o in ops] == [("StepRun", h("s2"), "s2")]
    assert response.headers["x-stepline-checkpointed"] == "1"
    assert executed == ["s1", "s2"]
    assert len(transport.requests) == 4

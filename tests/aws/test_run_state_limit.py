"""A run's state as deployed: capped at what one API Lambda response can serve, since the SDKs
fetch a ``use_api`` run's state from ``/v0/runs/{id}/actions|batch`` in one answer (neither
follows a redirect nor pages). A state at the deployed limit, of text that does not compress,
goes out in a Lambda response under its 6 MB cap; a step output just over it fails that step
with RunStateTooLarge instead of a state no SDK could fetch."""

from __future__ import annotations

import json
import random
import string

from stepline.aws.moto_env import moto_backend
from stepline.dev.http_server import to_http_api_event
from stepline.engine.clock import ManualClock
from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.payload_policy import (
    DEPLOYED_MAX_RUN_STATE_BYTES,
    LAMBDA_RESPONSE_MAX_BYTES,
    RUN_STATE_TOO_LARGE,
    run_state_bytes,
)
from stepline.handlers import api as api_module
from stepline.settings import Settings
from tests.engine.scripted_app import register

# Printable ASCII but the two characters JSON escapes: as close to incompressible as JSON text
# gets (gzip keeps about 83% of it), and no escaping to shrink or grow it.
_ALPHABET = "".join(c for c in string.printable[:94] if c not in '"\\')


def noise(size: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choices(_ALPHABET, k=size))


class BigSteps:
    """An app whose function runs one step per call, each returning ``sizes[i]`` characters."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self.calls = 0

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        n, self.calls = self.calls, self.calls + 1
        if n >= len(self.sizes):
            return HttpResponse(200, b'"done"', {"x-inngest-req-version": "2"})
        op = {"op": "StepRun", "id": f"s{n}", "name": f"s{n}", "data": noise(self.sizes[n], n)}
        return HttpResponse(206, json.dumps([op]).encode(), {"x-inngest-req-version": "2"})


def run_to_the_end(engine: Engine, backend) -> str:
    [event_id] = engine.ingest.accept([{"name": "app/go", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    for _ in range(20):
        received = backend.queue.receive(10, 60)
        if not received:
            break
        for message in received:
            engine.executor.handle(message.body)
            backend.queue.ack(message.handle)
    return run.run_id


def test_the_deployed_limit_fits_one_lambda_response_and_one_byte_over_fails_the_step():
    clock = ManualClock()
    with moto_backend(clock) as backend:
        # Three steps fill the state to just under the limit (memo values are JSON strings: two
        # quotes each); a fourth of 1 KiB takes it over.
        events_bytes = 64
        fill = DEPLOYED_MAX_RUN_STATE_BYTES - events_bytes - 3 * (2 + len('{"data":}'))
        sizes = [fill // 3 - 64, fill // 3 - 64, fill // 3 - 64, 1024]
        app = BigSteps(sizes)
        settings = Settings(mode="dev", max_run_state_bytes=DEPLOYED_MAX_RUN_STATE_BYTES)
        engine = Engine(backend, settings, clock=clock, caller=app)
        register(engine, ["go"])
        run_id = run_to_the_end(engine, backend)

        state = backend.store.load_run(run_id)
        memos = state.memo_map()
        assert sorted(memos) == ["s0", "s1", "s2", "s3"]
        assert all("data" in memos[f"s{i}"] for i in range(3))
        assert memos["s3"]["error"]["name"] == RUN_STATE_TOO_LARGE  # the step fails, catchably
        # What is served holds the limit's worth (and the small error memo).
        assert run_state_bytes(state) > DEPLOYED_MAX_RUN_STATE_BYTES - 4096

        # The whole state at the limit, served as the deployed API Lambda serves it to an SDK
        # (both send Accept-Encoding: gzip): the encoded Lambda response fits under 6 MB.
        handle = api_module.make_handler(engine)
        for route in ("actions", "batch"):
            event = to_http_api_event(
                "GET", f"/v0/runs/{run_id}/{route}", {"accept-encoding": "gzip, deflate"}, b"", "127.0.0.1"
            )
            response = handle(event, None)
            assert response["statusCode"] == 200, response
            assert len(json.dumps(response).encode()) <= LAMBDA_RESPONSE_MAX_BYTES
        assert response["isBase64Encoded"] is True  # gzipped: API Gateway's binary body


def test_an_answer_over_the_lambda_cap_is_a_clear_500_not_a_failed_invocation():
    # A state past the deployed limit (written before the limit existed, or under a larger
    # setting): the API Lambda says why instead of failing into API Gateway's bare 502.
    clock = ManualClock()
    with moto_backend(clock) as backend:
        app = BigSteps([3_000_000, 3_000_000, 3_000_000])
        engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
        register(engine, ["go"])
        run_id = run_to_the_end(engine, backend)
        event = to_http_api_event("GET", f"/v0/runs/{run_id}/actions", {"accept-encoding": "gzip"}, b"", "127.0.0.1")
        response = api_module.make_handler(engine)(event, None)
        assert response["statusCode"] == 500
        body = json.loads(response["body"])
        assert body["status"] == 500 and "RunStateTooLarge" in body["error"] and "6291456" in body["error"]

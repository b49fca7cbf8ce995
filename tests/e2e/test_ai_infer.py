"""`step.ai.infer` with the official Python SDK: Stepline makes the model request the
`AIGateway` op describes, to a fake provider on loopback, and the answer comes back as the step's
result; failed requests are retried without calling the app, and a refusal no retry can fix
fails the step where the user's code can catch it. The provider's key never shows in the API."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import SdkApp, Stepline, free_port, http, start_runtime, wait_for

AI_APP = Path(__file__).parent / "ai_app.py"
ANTHROPIC_KEY = "sk-ant-test-000000"
OPENAI_KEY = "sk-openai-test-111111"
# A reply as Anthropic's API gives it.
ANSWER = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-sonnet-20241022",
    "content": [{"type": "text", "text": "Hi there!"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 9, "output_tokens": 11},
}


class FakeProvider:
    """A model API on loopback: each script (the first part of the path) answers its replies
    in order, the last one again once they run out, and every request is recorded."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[tuple[int, Any, dict[str, str]]]] = {}
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                script = self.path.strip("/").split("/", 1)[0]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with provider._lock:
                    seen = provider.requests.setdefault(script, [])
                    seen.append({"path": self.path, "headers": dict(self.headers.items()), "body": json.loads(body)})
                    replies = provider.scripts.get(script) or [(404, {"error": "no script"}, {})]
                    status, answer, headers = replies[min(len(seen), len(replies)) - 1]
                text = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def script(self, *replies: tuple[int, Any, dict[str, str]]) -> str:
        name = uuid.uuid4().hex[:10]
        self.scripts[name] = list(replies)
        return name

    def seen(self, script: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests.get(script, []))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def ai_stack(tmp_path_factory):
    provider = FakeProvider()
    app_port = free_port()
    runtime = start_runtime("sqlite", tmp_path_factory.mktemp("ai"), [f"http://127.0.0.1:{app_port}/api/inngest"])
    app = SdkApp(runtime.url, port=app_port, script=AI_APP, extra_env={"FAKE_PROVIDER_URL": provider.url})
    wait_for(lambda: runtime.backend.store.get_app("ai-app"), what="the AI app to sync")
    try:
        yield Stepline(runtime), provider
    finally:
        app.stop()
        runtime.stop()
        provider.stop()


def ask(stepline: Stepline, script: str, adapter: str = "anthropic") -> dict[str, Any]:
    [event_id] = stepline.send({"name": "ai/ask", "data": {"script": script, "adapter": adapter}})
    [done] = stepline.wait_runs_done(event_id)
    return done


def test_the_model_is_asked_as_the_op_describes_and_its_answer_is_the_steps_result(ai_stack):
    stepline, provider = ai_stack
    script = provider.script((200, ANSWER, {}))
    done = ask(stepline, script)
    assert done["status"] == "Completed", done
    assert done["output"] == {"answer": ANSWER, "after": "after the model"}
    [request] = provider.seen(script)
    assert request["path"] == f"/{script}/v1/messages"
    assert request["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    assert request["headers"]["x-my-header"] == "my-value"
    assert request["body"] == {
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": 100,
        "model": "claude-3-5-sonnet-latest",
    }
    # The step shows what was asked, never the provider's key.
    _, run = http("GET", f"{stepline.url}/v1/runs/{done['run_id']}")
    assert ANTHROPIC_KEY not in json.dumps(run)
    [step] = [s for s in run["data"]["steps"] if s["name"] == "ask"]
    assert step["status"] == "Completed" and step["output"] == ANSWER, step


def test_an_openai_style_provider_gets_a_bearer_key(ai_stack):
    stepline, provider = ai_stack
    script = provider.script((200, {"choices": [{"message": {"content": "hi"}}]}, {}))
    done = ask(stepline, script, adapter="openai")
    assert done["output"]["answer"] == {"choices": [{"message": {"content": "hi"}}]}
    [request] = provider.seen(script)
    assert request["path"] == f"/{script}/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {OPENAI_KEY}"
    assert request["body"]["model"] == "gpt-4o-mini"


def test_a_failed_model_request_is_retried(ai_stack):
    stepline, provider = ai_stack
    script = provider.script((503, {"error": "overloaded"}, {"Retry-After": "1"}), (200, ANSWER, {}))
    done = ask(stepline, script)
    assert done["output"] == {"answer": ANSWER, "after": "after the model"}
    assert len(provider.seen(script)) == 2


def test_requests_that_keep_failing_use_the_functions_retries_then_fail_the_step(ai_stack):
    stepline, provider = ai_stack
    script = provider.script((500, {"error": "down"}, {}))
    done = ask(stepline, script)
    assert done["status"] == "Completed", done  # the function caught the step's error
    assert done["output"]["error_name"] == "AIGatewayError"
    assert "500" in done["output"]["error"]
    assert len(provider.seen(script)) == 3  # retries=2: three attempts


def test_a_refusal_no_retry_can_fix_fails_the_step_at_once(ai_stack):
    stepline, provider = ai_stack
    script = provider.script((400, {"error": {"message": "model not found"}}, {}))
    done = ask(stepline, script)
    assert done["output"]["error_name"] == "AIGatewayError"
    assert "model not found" in done["output"]["error"]
    assert len(provider.seen(script)) == 1

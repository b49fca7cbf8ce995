"""End to end, an app behind an AWS_IAM function URL: the executor's calls and the sync are
signed with SigV4, and a stand-in for the function URL front (a real HTTP server here) checks
every signature as AWS does before it runs the app's ``lambda_handler``; a call signed with
credentials the front does not accept is refused with 403, as AWS refuses it."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from stepline import Client, Context, lambda_handler
from stepline.aws.sigv4_url import SigV4UrlCaller
from stepline.engine.app_targets import RoutingCaller
from stepline.engine.http import PooledHttpCaller
from stepline.settings import Settings
from tests.e2e.conftest import Stepline, http, start_runtime

HOST = "q7x2abcdefghijk.lambda-url.eu-west-1.on.aws"
URL = f"https://{HOST}/"
ROLE = Credentials("ASIAEXECUTOR", "executor-secret", token="executor-session")


class FunctionUrlFront:
    """What AWS does in front of an AWS_IAM function URL: check the SigV4 signature (service
    lambda, the URL's region) against the one role it accepts, then invoke the handler with a
    function-URL event."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.checked = Counter()
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # noqa: N802
                self._serve("PUT")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def _serve(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, out = front.answer(method, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def signed_by_role(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
        auth = headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 ") or f"Credential={ROLE.access_key}/" not in auth:
            return False
        parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
        signature = parts["Signature"]
        # As AWS does: the canonical request is made of the headers the signature says it signed.
        named = set(parts["SignedHeaders"].split(";"))
        unsigned = {k: v for k, v in headers.items() if k.lower() in named}
        request = AWSRequest(method=method, url=f"https://{HOST}{path}", data=body, headers=unsigned)
        request.context["timestamp"] = headers["X-Amz-Date"]
        signer = SigV4Auth(ROLE, "lambda", "eu-west-1")
        signed = signer.canonical_request(request)
        return signer.signature(signer.string_to_sign(request, signed), request) == signature

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes):
        if not self.signed_by_role(method, path, headers, body):
            self.checked["refused"] += 1
            return 403, {"Content-Type": "application/json"}, b'{"Message":"Forbidden"}'
        self.checked[f"accepted {method}"] += 1
        raw_path, _, query = path.partition("?")
        event = {
            "version": "2.0", "rawPath": raw_path, "rawQueryString": query,
            "headers": {k.lower(): v for k, v in headers.items()} | {"host": HOST, "x-forwarded-proto": "https"},
            "requestContext": {"domainName": HOST, "http": {"method": method, "path": raw_path}},
            "body": base64.b64encode(body).decode(), "isBase64Encoded": True,
        }
        result = self.handler(event, None)
        out = result["body"].encode()
        return result["statusCode"], result["headers"], out


class ToFront:
    """The network between the executor and AWS: requests for the function URL's host reach the
    front on loopback, exactly as sent (their Host header and signature unchanged)."""

    def __init__(self, front: FunctionUrlFront) -> None:
        self.front = front
        self.http = PooledHttpCaller()

    def send(self, method, url, body, headers, timeout_s):
        parts = urlsplit(url)
        local = self.front.origin + parts.path + (f"?{parts.query}" if parts.query else "")
        return self.http.send(method, local, body, {**headers, "Host": HOST}, timeout_s)

    def post(self, url, body, headers, timeout_s):
        return self.send("POST", url, body, headers, timeout_s)


def app(base_url: str, ran: Counter):
    client = Client("iam-app", dev=True, base_url=base_url)

    @client.function("tally", trigger="tally/go", retries=1, concurrency=5)
    def tally(ctx: Context) -> int:
        first = ctx.step.run("one", lambda: ran.update(["one"]) or 1)
        second = ctx.step.run("two", lambda: ran.update(["two"]) or 2)
        return first + second

    return lambda_handler(client)


@pytest.fixture
def world(tmp_path):
    holder: dict = {}
    front = FunctionUrlFront(lambda event, ctx: holder["handler"](event, ctx))
    credentials = {"now": ROLE}
    caller = RoutingCaller(PooledHttpCaller(), lambda_url=SigV4UrlCaller(ToFront(front), lambda: credentials["now"]))
    runtime = start_runtime("sqlite", tmp_path, [], settings=Settings(mode="dev", retry_base_ms=50, retry_cap_ms=100),
                            caller=caller)
    ran: Counter = Counter()
    holder["handler"] = app(runtime.url, ran)
    try:
        yield runtime, front, ran, credentials
    finally:
        runtime.stop()
        front.server.shutdown()
        front.server.server_close()


def test_an_iam_url_app_syncs_and_runs_with_every_request_signed(world):
    runtime, front, ran, _ = world
    code, reply = http("POST", f"{runtime.url}/v1/apps/sync", {"url": URL})
    assert code == 200, reply
    assert reply["data"]["apps"][0]["app_id"] == "iam-app"
    stepline = Stepline(runtime)
    [event_id] = stepline.send({"name": "tally/go", "data": {}})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Completed" and run["output"] == 3, run
    assert ran == Counter({"one": 1, "two": 1})
    # The sync's PUT and the executor's calls, every one signed by the role.
    assert front.checked["refused"] == 0 and front.checked["accepted PUT"] == 1 and front.checked["accepted POST"] >= 1


def test_calls_the_front_refuses_fail_the_run_naming_the_403(world):
    runtime, front, ran, credentials = world
    assert http("POST", f"{runtime.url}/v1/apps/sync", {"url": URL})[0] == 200
    credentials["now"] = Credentials("ASIAOTHERROLE", "other-secret", token="t")  # a role the URL does not accept
    stepline = Stepline(runtime)
    [event_id] = stepline.send({"name": "tally/go", "data": {}})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Failed", run
    assert "403" in run["error"]["message"] and "Forbidden" in json.dumps(run["error"])
    assert ran == Counter() and front.checked["refused"] == 2  # retries=1: two attempts, both refused

"""The framework-free core every adapter shares: one HTTP request in, one response out.

* ``GET``: introspection (health, mode, function count; the authenticated form when signed).
* ``PUT``: sync; the SDK POSTs its config to ``<api>/fn/register`` (out-of-band, docs/protocol.md §4.1).
* ``POST ?fnId=…&stepId=…``: a call request; ``POST ?probe=trust``: the signing-key probe.

In cloud mode (``dev`` off) every request but a sync must carry a valid ``X-Inngest-Signature``
over the JCS form of its body, and the reply is signed back over its raw bytes (docs/protocol.md §3).
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from stepline.protocol.checkpoint import H_CHECKPOINTED
from stepline.protocol.jsoncanon import loads
from stepline.protocol.opcodes import DISCOVERY_STEP_ID
from stepline.protocol.signing import hash_event_key, hash_signing_key, sign, verify_signature
from stepline.protocol.urls import set_query_param
from stepline.sdk import checkpointing, execution
from stepline.sdk.client import Client
from stepline.sdk.env import ClientEnv
from stepline.sdk.errors import CodedError, SdkError
from stepline.sdk.function import Function
from stepline.sdk.serve import streaming as streamed
from stepline.sdk.tracing import TRACEPARENT
from stepline.sdk.transport import TransportError
from stepline.sdk.version import SDK_HEADER, SDK_LANGUAGE, VERSION

SCHEMA_VERSION = "2024-05-24"
H_SIGNATURE = "x-inngest-signature"
H_SERVER_KIND = "x-inngest-server-kind"


@dataclasses.dataclass
class Request:
    method: str
    url: str  # absolute, with the query string
    headers: Mapping[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    @property
    def query(self) -> dict[str, str]:
        parsed = urllib.parse.urlsplit(self.url)
        return dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    # A checkpoint stream instead of ``body`` (docs/protocol.md §17.2): adapters send each
    # chunk as it comes. Only ever set for adapters that said they can stream.
    chunks: Iterator[bytes] | None = None
    achunks: AsyncIterator[bytes] | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Handler:
    def __init__(self, client: Client, functions: list[Function] | None = None, *, framework: str) -> None:
        self.client = client
        self.framework = framework
        declared = client.functions if functions is None else functions
        self.functions: dict[str, Function] = {}
        for fn in declared:
            for one in fn.with_failure_handler():
                existing = self.functions.get(one.composite_id)
                if existing is not None and existing is not one:
                    raise SdkError(f"two functions are served with the id {one.composite_id!r}")
                self.functions[one.composite_id] = one
        self._check_keys(client.env)

    # -- entry points ------------------------------------------------------------------------
    def handle(self, request: Request, *, streaming: bool = False) -> Response:
        """One request. ``streaming``: the adapter can send ``Response.chunks`` as they come,
        so calls may answer with a checkpoint stream."""
        env = self.client.env
        pre = self._preflight(request, env)
        if pre is not None:
            return pre
        method = request.method.upper()
        if method == "PUT":
            return self._sync(request, env)
        if method == "POST" and "probe" not in request.query:
            return self._call(request, env, streaming)
        return self._small(request, env)

    async def handle_async(self, request: Request, *, streaming: bool = False) -> Response:
        env = self.client.env
        pre = self._preflight(request, env)
        if pre is not None:
            return pre
        method = request.method.upper()
        if method == "PUT":
            import asyncio  # already loaded: a loop is running

            return await asyncio.to_thread(self._sync, request, env)
        if method == "POST" and "probe" not in request.query:
            fn, body_or_error = self._call_target(request, env)
            if fn is None:
                return body_or_error
            body, target = body_or_error, self._target(request)
            mode, budget = self._checkpoint_mode(fn, body, request, target, streaming)

            def run(checkpoint: checkpointing.Checkpointer | None):
                return execution.call_async(
                    fn,
                    body,
                    target,
                    self._sender,
                    logger=self.client.logger,
                    fetch=self.client.fetch_run_data,
                    checkpoint=checkpoint,
                    traceparent=request.header(TRACEPARENT),
                )

            if mode is checkpointing.Mode.STREAM:
                chunks = streamed.stream_async(run, budget)
                return Response(200, streamed.stream_headers(self._headers(env)), b"", achunks=chunks)
            checkpointer = self._api_checkpointer(mode, budget, body)
            outcome = await run(checkpointer)
            return self._from_outcome(request, env, _noting(outcome, checkpointer))
        return self._small(request, env)

    # -- shared checks -----------------------------------------------------------------------
    def _check_keys(self, env: ClientEnv) -> None:
        if not env.is_dev and not env.signing_key:
            raise SdkError(
                "cloud mode needs a signing key: set INNGEST_SIGNING_KEY (or pass signing_key=), "
                "or run in dev mode with INNGEST_DEV=1"
            )

    def _preflight(self, request: Request, env: ClientEnv) -> Response | None:
        method = request.method.upper()
        if method not in ("GET", "PUT", "POST"):
            return self._json(env, 405, {"code": "method_not_allowed", "message": f"{method} is not supported"})
        if not env.is_dev:
            try:
                self._check_keys(env)
            except SdkError as err:
                return self._json(env, 500, {"code": "signing_key_missing", "message": str(err)})
        kind = request.header(H_SERVER_KIND)
        if kind and kind != env.mode:
            # A dev server talking to a cloud-mode app (or the reverse) is a misconfiguration
            # that would otherwise surface as confusing signature failures.
            status = 403 if method == "GET" else 400
            message = f"this app runs in {env.mode} mode but the request came from a {kind} server"
            return self._json(env, status, {"code": "server_kind_mismatch", "message": message})
        return None

    def _signed_by(self, request: Request, env: ClientEnv) -> str | None:
        """The key that signed the request, or None."""
        header = request.header(H_SIGNATURE)
        if not header:
            return None
        now = int(time.time())
        for key in env.signing_keys:
            if verify_signature(header, request.body, [key], now):
                return key
        return None

    def _unauthorized(self) -> Response:
        body = json.dumps({"message": "Unauthorized"}).encode()
        return Response(401, {"content-type": "application/json", "x-inngest-sdk-handled": "true"}, body)

    def _headers(self, env: ClientEnv) -> dict[str, str]:
        out = {
            "content-type": "application/json",
            "x-inngest-sdk": SDK_HEADER,
            "x-inngest-req-version": "2",
            "x-inngest-framework": self.framework,
            "x-inngest-expected-server-kind": env.mode,
            "x-inngest-sdk-handled": "true",
        }
        if env.env:
            out["x-inngest-env"] = env.env
        return out

    def _json(
        self,
        env: ClientEnv,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        signing_key: str | None = None,
    ) -> Response:
        raw = json.dumps(body).encode()
        out = {**self._headers(env), **(headers or {})}
        if signing_key:
            out[H_SIGNATURE] = sign(raw, signing_key, int(time.time()))
        return Response(status, out, raw)

    # -- GET and the trust probe ---------------------------------------------------------------
    def _small(self, request: Request, env: ClientEnv) -> Response:
        key = self._signed_by(request, env)
        if not env.is_dev and key is None:
            return self._unauthorized()
        if request.method.upper() == "POST":  # ?probe=trust
            return self._json(env, 200, None, signing_key=key)
        body: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "function_count": len(self.functions),
            "has_event_key": bool(env.event_key) and env.event_key != "NO_EVENT_KEY_SET",
            "has_signing_key": bool(env.signing_key),
            "has_signing_key_fallback": bool(env.signing_key_fallback),
            "mode": env.mode,
        }
        if key is not None:
            body.update(
                {
                    "app_id": self.client.app_id,
                    "api_origin": env.api_origin,
                    "event_api_origin": env.event_api_origin,
                    "authentication_succeeded": True,
                    "capabilities": {"trust_probe": "v1"},
                    "env": env.env,
                    "framework": self.framework,
                    "sdk_language": SDK_LANGUAGE,
                    "sdk_version": VERSION,
                    "serve_origin": env.serve_origin,
                    "serve_path": env.serve_path,
                    "signing_key_hash": hash_signing_key(env.signing_key) if env.signing_key else None,
                    "signing_key_fallback_hash": hash_signing_key(env.signing_key_fallback)
                    if env.signing_key_fallback
                    else None,
                    "event_key_hash": hash_event_key(env.event_key) if env.event_key else None,
                }
            )
        return self._json(env, 200, body, signing_key=key)

    # -- sync --------------------------------------------------------------------------------
    def app_url(self, request_url: str, env: ClientEnv | None = None) -> str:
        """The URL the server should call: the request's, unless serve origin/path override it."""
        env = env or self.client.env
        parts = urllib.parse.urlsplit(request_url)
        origin = (env.serve_origin or f"{parts.scheme}://{parts.netloc}").rstrip("/")
        if "://" not in origin:
            origin = "https://" + origin
        path = env.serve_path or parts.path or "/"
        return origin + (path if path.startswith("/") else "/" + path)

    def register_body(self, app_url: str) -> dict[str, Any]:
        """The register body, in the Python SDK's shape (``appname``, ``deploy_type``…)."""
        body: dict[str, Any] = {
            "appname": self.client.app_id,
            "capabilities": {"trust_probe": "v1"},
            "deploy_type": "ping",
            "framework": self.framework,
            "functions": [fn.config(app_url) for fn in self.functions.values()],
            "sdk": SDK_HEADER,
            "url": app_url,
            "v": "0.1",
        }
        if self.client.app_version:
            body["appVersion"] = self.client.app_version
        return body

    def _sync(self, request: Request, env: ClientEnv) -> Response:
        if request.header(H_SIGNATURE) and not env.is_dev and self._signed_by(request, env) is None:
            return self._unauthorized()
        if not env.is_dev and not env.unauthed_sync and self._signed_by(request, env) is None:
            return self._unauthorized()
        app_url = self.app_url(request.url, env)
        path = "/fn/register"
        deploy_id = request.query.get("deployId")
        if deploy_id:
            path = set_query_param(path, "deployId", deploy_id)
        headers = {"x-inngest-framework": self.framework}
        kind = request.header(H_SERVER_KIND)
        if kind:
            headers["x-inngest-expected-server-kind"] = kind
        body = json.dumps(self.register_body(app_url)).encode()
        try:
            reply = self.client.api_request("POST", path, body, headers)
        except TransportError as err:
            return self._json(env, 500, {"code": "registration_failed", "message": str(err)})
        try:
            parsed = json.loads(reply.body) if reply.body else {}
        except ValueError:
            parsed = {}
        parsed = parsed if isinstance(parsed, dict) else {}
        if 200 <= reply.status < 300:
            return self._json(
                env, 200, {"message": "Successfully registered", "modified": bool(parsed.get("modified", False))}
            )
        message = parsed.get("error") or f"register answered HTTP {reply.status}"
        return self._json(
            env,
            reply.status if reply.status >= 400 else 500,
            {"code": "registration_failed", "message": message, "status": reply.status},
        )

    # -- calls -------------------------------------------------------------------------------
    def _target(self, request: Request) -> str | None:
        step_id = request.query.get("stepId") or request.header("x-inngest-step-id") or DISCOVERY_STEP_ID
        return None if step_id == DISCOVERY_STEP_ID else step_id

    def _sender(self, events: list[dict[str, Any]], seed: str) -> list[str]:
        return self.client.send_wire(events, seed)

    def _call_target(self, request: Request, env: ClientEnv):
        """(function, parsed body) or (None, error response)."""
        if not env.is_dev and self._signed_by(request, env) is None:
            return None, self._unauthorized()
        fn_id = request.query.get("fnId")
        if not fn_id:
            return None, self._json(env, 500, {"code": "query_param_missing", "message": "fnId is missing"})
        fn = self.functions.get(fn_id) or self.functions.get(f"{self.client.app_id}-{fn_id}")
        if fn is None:
            return None, self._json(
                env, 500, {"code": "function_not_found", "message": f"function {fn_id!r} is not served here"}
            )
        try:
            body = execution.parse_body(loads(request.body or b"null"))
        except CodedError as err:
            return None, self._json(env, 500, {"code": err.code, "message": err.message})
        except ValueError as err:
            return None, self._json(env, 500, {"code": "bad_request", "message": str(err)})
        return fn, body

    def _call(self, request: Request, env: ClientEnv, streaming_ok: bool = False) -> Response:
        fn, body_or_error = self._call_target(request, env)
        if fn is None:
            return body_or_error
        body, target = body_or_error, self._target(request)
        mode, budget = self._checkpoint_mode(fn, body, request, target, streaming_ok)

        def run(checkpoint: checkpointing.Checkpointer | None) -> execution.Outcome:
            return execution.call(
                fn,
                body,
                target,
                self._sender,
                logger=self.client.logger,
                fetch=self.client.fetch_run_data,
                checkpoint=checkpoint,
                traceparent=request.header(TRACEPARENT),
            )

        if mode is checkpointing.Mode.STREAM:
            chunks = streamed.stream_sync(run, budget)
            return Response(200, streamed.stream_headers(self._headers(env)), b"", chunks=chunks)
        checkpointer = self._api_checkpointer(mode, budget, body)
        return self._from_outcome(request, env, _noting(run(checkpointer), checkpointer))

    # -- checkpointing (stepline.sdk.checkpointing) ---------------------------------------------
    def _checkpoint_mode(
        self, fn: Function, body: execution.CallBody, request: Request, target: str | None, streaming_ok: bool
    ) -> tuple[checkpointing.Mode | None, float]:
        offer = checkpointing.offer_of(request.header, body.ctx)
        inline = target is None and body.ctx.attempt == 0 and not body.ctx.disable_immediate_execution
        mode = checkpointing.choose(
            offer, enabled=self.client.checkpointing and fn.checkpointing, inline=inline, can_stream=streaming_ok
        )
        return mode, (checkpointing.budget_for(mode, offer) if mode is not None else 0.0)

    def _api_checkpointer(
        self, mode: checkpointing.Mode | None, budget: float, body: execution.CallBody
    ) -> checkpointing.Checkpointer | None:
        if mode is not checkpointing.Mode.API or not body.ctx.fn_id or not body.ctx.qi_id:
            return None
        sink = checkpointing.ApiSink(self.client, body.ctx.run_id, body.ctx.fn_id, body.ctx.qi_id)
        return checkpointing.Checkpointer(mode, sink, budget)

    def _from_outcome(self, request: Request, env: ClientEnv, outcome: execution.Outcome) -> Response:
        key = None if env.is_dev else self._signed_by(request, env)
        return self._json(env, outcome.status, outcome.body, outcome.headers, signing_key=key)


def _noting(outcome: execution.Outcome, checkpointer: checkpointing.Checkpointer | None) -> execution.Outcome:
    """Tell the server how many steps this call stored through its API: its view of the run is
    missing them until it reads the run again."""
    if checkpointer is not None and checkpointer.count:
        outcome.headers = {**outcome.headers, H_CHECKPOINTED: str(checkpointer.count)}
    return outcome

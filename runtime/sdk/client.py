"""The client: an app id, the functions declared on it, and the Event API."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from stepline.protocol.signing import hash_signing_key
from stepline.sdk import config as cfg
from stepline.sdk.env import ClientEnv, resolve
from stepline.sdk.errors import SdkError, SendEventsError
from stepline.sdk.events import to_wire_event
from stepline.sdk.function import Function, build_options
from stepline.sdk.tracing import TRACEPARENT, step_traceparent
from stepline.sdk.transport import HttpReply, Transport, TransportError, Urllib3Transport
from stepline.sdk.triggers import normalize_triggers
from stepline.sdk.version import SDK_HEADER

F = TypeVar("F", bound=Callable[..., Any])

SEND_ATTEMPTS = 5
SEND_BACKOFF_S = 0.1
SEND_TIMEOUT_S = 30.0


class Client:
    """``Client("my-app")`` finds its server from the environment (``INNGEST_DEV`` /
    ``INNGEST_BASE_URL`` and their ``STEPLINE_`` spellings) unless told here."""

    def __init__(
        self,
        app_id: str,
        *,
        dev: bool | None = None,
        base_url: str | None = None,
        api_base_url: str | None = None,
        event_api_base_url: str | None = None,
        event_key: str | None = None,
        signing_key: str | None = None,
        signing_key_fallback: str | None = None,
        env: str | None = None,
        serve_origin: str | None = None,
        serve_path: str | None = None,
        app_version: str | None = None,
        transport: Transport | None = None,
        logger: logging.Logger | None = None,
        checkpointing: bool = True,
    ) -> None:
        if not isinstance(app_id, str) or not app_id.strip():
            raise SdkError("app_id: must be a non-empty string")
        self.app_id = app_id
        self.app_version = app_version
        self._settings: dict[str, Any] = dict(
            dev=dev,
            base_url=base_url,
            api_base_url=api_base_url,
            event_api_base_url=event_api_base_url,
            event_key=event_key,
            signing_key=signing_key,
            signing_key_fallback=signing_key_fallback,
            env=env,
            serve_origin=serve_origin,
            serve_path=serve_path,
        )
        self.transport: Transport = transport or Urllib3Transport()
        # Off: every step is a call of its own, whatever the server offers
        # (stepline.sdk.checkpointing; one function can turn it off for itself too).
        self.checkpointing = bool(checkpointing)
        self.logger = logger or logging.getLogger("stepline.sdk")
        self._functions: dict[str, Function] = {}
        # Swapped out by tests that must not wait through real backoff.
        self.sleep: Callable[[float], None] = time.sleep

    @property
    def env(self) -> ClientEnv:
        return resolve(**self._settings)

    # -- declaring functions -----------------------------------------------------------------
    def function(
        self,
        id: str,
        *,
        trigger: Any = None,
        name: str | None = None,
        retries: int | None = None,
        concurrency: int | cfg.Concurrency | list[int | cfg.Concurrency] | None = None,
        throttle: cfg.Throttle | None = None,
        rate_limit: cfg.RateLimit | None = None,
        debounce: cfg.Debounce | None = None,
        batch_events: cfg.Batch | None = None,
        priority: str | cfg.Priority | None = None,
        singleton: cfg.Singleton | None = None,
        idempotency: str | None = None,
        cancel_on: Any = None,
        timeouts: cfg.Timeouts | None = None,
        on_failure: Callable[..., Any] | None = None,
        checkpointing: bool = True,
    ) -> Callable[[Callable[..., Any]], Function]:
        """Declare a durable function. ``trigger``: an event name, an ``EventData`` model,
        ``on(...)``, ``cron(...)``, or a list of them (None: invoke only)."""
        triggers = normalize_triggers(trigger)
        options = build_options(
            concurrency=concurrency,
            throttle=throttle,
            rate_limit=rate_limit,
            debounce=debounce,
            batch_events=batch_events,
            priority=priority,
            singleton=singleton,
            idempotency=idempotency,
            cancel_on=cancel_on,
            timeouts=timeouts,
        )

        def decorate(handler: Callable[..., Any]) -> Function:
            fn = Function(
                app_id=self.app_id,
                fn_id=id,
                handler=handler,
                triggers=triggers,
                name=name,
                retries=retries,
                options=options,
                on_failure=on_failure,
                checkpointing=checkpointing,
            )
            for declared in fn.with_failure_handler():
                if declared.id in self._functions:
                    raise SdkError(f"function id {declared.id!r} is already declared in app {self.app_id!r}")
            for declared in fn.with_failure_handler():
                self._functions[declared.id] = declared
            return fn

        return decorate

    @property
    def functions(self) -> list[Function]:
        """Every function declared on this client (failure handlers included)."""
        return list(self._functions.values())

    # -- sending events ----------------------------------------------------------------------
    def send(self, events: Any) -> list[str]:
        """Send an event (``Event``, ``EventData`` model or dict) or a list; returns their ids.

        Retried on 5xx and network errors with one ``x-inngest-event-id-seed`` for every
        attempt, so a retry of a send that did land gets the same ids back and starts nothing
        twice.
        """
        items = events if isinstance(events, (list, tuple)) else [events]
        wire = [to_wire_event(e) for e in items]
        return self.send_wire(wire, new_seed())

    async def send_async(self, events: Any) -> list[str]:
        import asyncio  # already loaded: a loop is running

        return await asyncio.to_thread(self.send, events)

    def send_wire(self, events: list[dict[str, Any]], seed: str) -> list[str]:
        if not events:
            return []
        env = self.env
        if not env.event_key:
            raise SdkError("no event key: set INNGEST_EVENT_KEY (or pass event_key=) to send events outside dev mode")
        url = f"{env.event_api_origin}/e/{env.event_key}"
        headers = {**self.headers(env), "x-inngest-event-id-seed": seed}
        sent_from = step_traceparent()
        if sent_from:  # sent by a step: the runs the events start continue this run's trace
            headers[TRACEPARENT] = sent_from
        body = json.dumps(events).encode()
        last: str = ""
        for attempt in range(SEND_ATTEMPTS):
            if attempt:
                self.sleep(SEND_BACKOFF_S * 2 ** (attempt - 1))
            try:
                reply = self.transport.request("POST", url, headers, body, SEND_TIMEOUT_S)
            except TransportError as err:
                last = str(err)
                continue
            if reply.status >= 500:
                last = f"HTTP {reply.status}: {reply.body[:200]!r}"
                continue
            return _send_result(reply)
        raise SendEventsError(f"sending {len(events)} event(s) failed after {SEND_ATTEMPTS} attempts: {last}")

    # -- signals -----------------------------------------------------------------------------
    def send_signal(self, signal: str, data: Any = None) -> str | None:
        """Resume the run waiting for ``signal`` (``step.wait_for_signal``, TypeScript's
        ``step.waitForSignal``) with ``data``. Returns that run's id, or None when no run waits for
        it. Sent once: a failure raises ``SdkError``, since a retry of a send that did land would
        find no run waiting and could not tell."""
        if not isinstance(signal, str) or not signal:
            raise SdkError("send_signal: signal must be a non-empty string")
        body = json.dumps({"signal": signal, "data": data}).encode()
        try:
            reply = self.api_request("POST", "/v1/signals", body)
        except TransportError as err:
            raise SdkError(f"send_signal {signal!r}: {err}") from None
        if reply.status == 404:
            return None
        try:
            parsed = json.loads(reply.body) if reply.body else {}
        except ValueError:
            parsed = {}
        run_id = (parsed.get("data") or {}).get("run_id") if isinstance(parsed, dict) else None
        if reply.status != 200 or not isinstance(run_id, str):
            message = parsed.get("error") if isinstance(parsed, dict) else None
            raise SdkError(f"send_signal {signal!r}: HTTP {reply.status}: {message or reply.body[:200]!r}")
        return run_id

    async def send_signal_async(self, signal: str, data: Any = None) -> str | None:
        import asyncio  # already loaded: a loop is running

        return await asyncio.to_thread(self.send_signal, signal, data)

    # -- talking to the API ------------------------------------------------------------------
    def headers(self, env: ClientEnv | None = None) -> dict[str, str]:
        env = env or self.env
        out = {
            "content-type": "application/json",
            "user-agent": SDK_HEADER,
            "x-inngest-sdk": SDK_HEADER,
            "x-inngest-req-version": "2",
        }
        if env.env:
            out["x-inngest-env"] = env.env
        return out

    def api_request(
        self, method: str, path: str, body: bytes | None = None, extra_headers: dict[str, str] | None = None
    ) -> HttpReply:
        """A call to the server's API with the bearer of the signing key, retried once with the
        fallback key on 401/403 (the key may be mid-rotation)."""
        env = self.env
        url = f"{env.api_origin}{path}"
        keys: list[str | None] = list(env.signing_keys) or [None]
        reply: HttpReply | None = None
        for key in keys:
            headers = {**self.headers(env), **(extra_headers or {})}
            if key:
                headers["authorization"] = f"Bearer {hash_signing_key(key)}"
            reply = self.transport.request(method, url, headers, body, SEND_TIMEOUT_S)
            if reply.status not in (401, 403):
                break
        assert reply is not None
        return reply

    def fetch_run_data(self, run_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """A run's events and memos from the API, for calls too large to carry them (``use_api``)."""
        out = []
        for part in ("batch", "actions"):
            try:
                reply = self.api_request("GET", f"/v0/runs/{run_id}/{part}")
            except TransportError as err:
                raise SdkError(f"fetching run {run_id} {part}: {err}") from None
            if reply.status != 200:
                raise SdkError(f"fetching run {run_id} {part}: HTTP {reply.status}")
            out.append(json.loads(reply.body))
        events, steps = out
        if not isinstance(events, list) or not isinstance(steps, dict):
            raise SdkError(f"fetching run {run_id}: unexpected reply shapes")
        return events, steps


def new_seed() -> str:
    """``<ms>,<base64 of 10 random bytes>``: the Event API derives the event ids from it."""
    return f"{time.time_ns() // 1_000_000},{base64.b64encode(os.urandom(10)).decode()}"


def _send_result(reply: HttpReply) -> list[str]:
    try:
        parsed = json.loads(reply.body) if reply.body else {}
    except ValueError:
        parsed = {}
    parsed = parsed if isinstance(parsed, dict) else {}
    raw_ids = parsed.get("ids")
    ids: list[Any] = raw_ids if isinstance(raw_ids, list) else []
    if reply.status != 200 or parsed.get("error"):
        message = parsed.get("error") or f"HTTP {reply.status}"
        raise SendEventsError(f"the Event API refused the events: {message}", [str(i) for i in ids], reply.status)
    return [str(i) for i in ids]

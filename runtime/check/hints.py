"""Fix hints in the syntax of the SDK the app is written with: the same option is spelt
``timeout="7d"`` in Stepline's SDK, ``timeout=datetime.timedelta(days=7)`` in the official Python
SDK, ``timeout: "7d"`` in TypeScript and ``Timeout: 7 * 24 * time.Hour`` in Go. An app whose SDK
is not known gets Stepline's spelling and the official SDKs' side by side.
"""

from __future__ import annotations

from stepline.check.model import Sdk


def _by_sdk(sdk: Sdk, spellings: dict[Sdk, str]) -> str:
    if sdk in spellings:
        return spellings[sdk]
    stepline = spellings[Sdk.STEPLINE]
    others = "; ".join(f"{s.label}: {spellings[s]}" for s in (Sdk.PYTHON, Sdk.TYPESCRIPT) if s in spellings)
    return f"{stepline} ({others})" if others else stepline


def wait_timeout(sdk: Sdk) -> str:
    option = _by_sdk(
        sdk,
        {
            Sdk.STEPLINE: 'timeout="7d"',
            Sdk.PYTHON: "timeout=datetime.timedelta(days=7)",
            Sdk.TYPESCRIPT: 'timeout: "7d"',
            Sdk.GO: "Timeout: 7 * 24 * time.Hour",
        },
    )
    return f"add {option} (the longest the run should wait), and handle the None it returns when the time is up"


def concurrency(sdk: Sdk) -> str:
    option = _by_sdk(
        sdk,
        {
            Sdk.STEPLINE: "concurrency=10, or Concurrency(10, key='event.data.user_id') per key",
            Sdk.PYTHON: "concurrency=[inngest.Concurrency(limit=10)], or "
            "inngest.Concurrency(limit=10, key='event.data.user_id') per key",
            Sdk.TYPESCRIPT: 'concurrency: { limit: 10 }, or { limit: 10, key: "event.data.userId" } per key',
            Sdk.GO: "Concurrency: []inngest.ConfigStepConcurrency{{Limit: 10}}",
        },
    )
    return f"set {option}: what the slowest dependency its steps call takes at once"


def retries(sdk: Sdk) -> str:
    option = {Sdk.TYPESCRIPT: "retries: 3", Sdk.GO: "Retries: inngest.IntPtr(3)"}.get(sdk, "retries=3")
    return (
        f"set the retries explicitly ({option}; 0 to 20): more for flaky networks, 0 for work that must "
        "not repeat; raise NonRetriableError for failures a retry cannot fix"
    )


def idempotency(sdk: Sdk) -> str:
    option = {
        Sdk.TYPESCRIPT: 'idempotency: "event.data.orderId"',
        Sdk.GO: 'Idempotency: inngest.StrPtr("event.data.order_id")',
    }.get(sdk, "idempotency='event.data.order_id'")
    return (
        f"set {option}, naming an id unique to the payment (the order id, the provider's event id): "
        "a second event with the same key within 24 h starts nothing"
    )


def serve_handler(sdk: Sdk) -> str:
    serve = _by_sdk(
        sdk,
        {
            Sdk.STEPLINE: "serve_flask(app, client), serve_fastapi(app, client), serve_asgi(client), "
            "serve_wsgi(client) or lambda_handler(client)",
            Sdk.PYTHON: "inngest.flask.serve(app, client, functions) (or inngest.fast_api.serve, ...)",
            Sdk.TYPESCRIPT: "serve({ client, functions }) from inngest/express (or inngest/next, ...)",
            Sdk.GO: 'http.Handle("/api/inngest", h) with h := inngestgo.NewHandler(...)',
        },
    )
    return (
        f"serve the client's functions at one URL: {serve}; for a URL target, give the serve path "
        "itself (usually /api/inngest)"
    )


def serve_each(sdk: Sdk, local_id: str) -> str:
    if sdk is Sdk.PYTHON:
        return f"add {local_id!r} to the functions list of the inngest.<framework>.serve(app, client, [...]) call"
    return (
        "serve it: serve_*(..., client) without functions= serves every function of the client; "
        f"a functions=[...] list must include {local_id!r}"
    )


def sleep_duration(sdk: Sdk, text: str | None, timedelta: str | None) -> str:
    if text is None or timedelta is None:
        if sdk is Sdk.PYTHON:
            return "write the duration out: a datetime.timedelta"
        return 'write the duration out: a string like "30s" or "24h", or a datetime.timedelta'
    if sdk is Sdk.PYTHON:
        return f"write the duration out: {timedelta}"
    return f"write the duration out: {text!r} or {timedelta}"

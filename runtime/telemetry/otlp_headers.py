"""The OTLP exporter's headers from a Secrets Manager secret: a tracing service's API key must not
sit in a Lambda's environment (anyone who may read the function's configuration reads it), so the
stack names a secret (``stepline:otlpHeadersSecret``, docs/deploy.md) and the Lambdas read it
once, at cold start, when they build their tracer (``stepline.telemetry.setup``).

The secret holds the headers as ``OTEL_EXPORTER_OTLP_HEADERS`` writes them
(``api-key=...,x-other=...``, values URL-encoded), or as a JSON object of names to values. They
are added to whatever ``OTEL_EXPORTER_OTLP_HEADERS`` gives (the secret's win). Nothing is read
when no secret is named. A secret that cannot be read or holds no header is
``OtlpHeadersUnavailable``: setup logs why and turns tracing off, and the Lambda starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from urllib.parse import unquote

# The variable the stack sets to the secret's name or ARN.
SECRET_ID_ENV = "STEPLINE_OTLP_HEADERS_SECRET_ID"

# A secret's text by its id (name or ARN).
SecretFetcher = Callable[[str], str]


class OtlpHeadersUnavailable(Exception):
    """The named secret could not be read, or does not hold headers: what and why."""


def secret_id(env: Mapping[str, str]) -> str:
    return env.get(SECRET_ID_ENV, "").strip()


def headers_from_secret(env: Mapping[str, str], fetch: SecretFetcher | None = None) -> dict[str, str] | None:
    """The headers the named secret holds; None when no secret is named (nothing is read)."""
    name = secret_id(env)
    if not name:
        return None
    try:
        text = (fetch or _fetch)(name)
    except Exception as failed:  # noqa: BLE001 - whatever the client raises (missing, denied, no network)
        raise OtlpHeadersUnavailable(f"{SECRET_ID_ENV}={name}: the secret cannot be read ({failed})") from failed
    try:
        return parse_headers(text)
    except ValueError as bad:
        raise OtlpHeadersUnavailable(f"{SECRET_ID_ENV}={name}: {bad}") from None


def parse_headers(text: str) -> dict[str, str]:
    """``name=value,...`` (as ``OTEL_EXPORTER_OTLP_HEADERS``) or a JSON object of strings."""
    text = text.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise ValueError("the secret starts with '{' but is not JSON") from None
        if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
            raise ValueError('the JSON must be an object of header names to string values: {"api-key": "..."}')
        headers = {k.strip().lower(): v.strip() for k, v in doc.items() if k.strip()}
    else:
        # OTEL_EXPORTER_OTLP_HEADERS' format, parsed here rather than by OpenTelemetry's
        # parse_env_headers, which logs a malformed entry's text: here, part of a key.
        headers = {}
        for number, entry in enumerate(text.split(","), 1):
            if not entry.strip():
                continue
            name, equals, value = entry.partition("=")
            if not equals or not name.strip():
                raise ValueError(f"entry {number} is not name=value (the value is not shown)")
            headers[unquote(name.strip()).lower()] = unquote(value.strip())
    if not headers:
        raise ValueError("the secret holds no header (expected name=value,... or a JSON object)")
    return headers


def _fetch(name: str) -> str:
    import boto3

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=name)
    return str(secret.get("SecretString") or "")

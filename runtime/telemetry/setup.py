"""Telemetry as the environment configures it, with the standard OpenTelemetry variables.

Tracing is on when an exporter is configured: ``OTEL_TRACES_EXPORTER`` (``otlp`` or ``console``)
or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``),
and ``OTEL_SDK_DISABLED`` is not true. The OTLP exporter reads its own variables (endpoint,
headers, timeout; ``OTEL_EXPORTER_OTLP_PROTOCOL``: ``http/protobuf``, or ``grpc`` when its
package is installed), the SDK the sampler (``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``)
and the resource (``OTEL_SERVICE_NAME``, default ``stepline``; ``OTEL_RESOURCE_ATTRIBUTES``).
Deployed, the exporter's headers may come from a secret as well (``otlp_headers``).
With none of that set, nothing of OpenTelemetry is imported.

One tracer serves the process: every engine built in it shares the exporter's batch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from stepline.telemetry.hooks import RunMetrics, RunTracer, Telemetry
from stepline.telemetry.otlp_headers import OtlpHeadersUnavailable, headers_from_secret

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from stepline.engine.ports import Clock

log = logging.getLogger(__name__)

SERVICE_NAME = "stepline"
_TRUE = ("1", "true", "yes", "on")
_lock = threading.Lock()
_tracer: dict[str, RunTracer | None] = {}


def tracing_configured(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces to be exported."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def process_tracer(env: Mapping[str, str] = os.environ) -> RunTracer | None:
    """The process's tracer as the environment configures it (built once), or None."""
    if not tracing_configured(env):
        return None
    with _lock:
        if "tracer" not in _tracer:
            _tracer["tracer"] = _build_tracer(env)
        return _tracer["tracer"]


def _build_tracer(env: Mapping[str, str]) -> RunTracer | None:
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        from stepline.telemetry.tracing import OtelRunTracer
    except ImportError:
        log.warning("OTEL_* asks for traces, but OpenTelemetry is not installed (pip install 'stepline[server]')")
        return None
    exporter_name = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    elif exporter_name == "otlp":
        try:
            headers = headers_from_secret(env)
        except OtlpHeadersUnavailable as unavailable:
            # Without its headers (an API key, most often) the backend would refuse every export.
            log.error("tracing is off: the OTLP exporter's headers are unavailable: %s", unavailable)
            return None
        exporter = _otlp_exporter(env, headers)
    else:
        raise ValueError(f"OTEL_TRACES_EXPORTER={exporter_name!r}: Stepline exports 'otlp', 'console' or 'none'")
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
    return OtelRunTracer(BatchSpanProcessor(exporter), resource=Resource.create(attributes))


def _otlp_exporter(env: Mapping[str, str], secret_headers: dict[str, str] | None = None) -> SpanExporter:
    """The OTLP exporter the variables ask for; ``secret_headers`` (read from the secret the
    stack names) are added to the ones the variables give."""
    headers = None
    if secret_headers:
        from opentelemetry.util.re import parse_env_headers

        configured = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS") or ""
        headers = {**parse_env_headers(configured, liberal=True), **secret_headers}
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError as missing:
            raise ValueError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc installed; "
                "or use http/protobuf"
            ) from missing
        return GrpcExporter(headers=headers)
    if protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use 'http/protobuf' or 'grpc'")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(headers=headers)


def telemetry_from_env(
    clock: Clock | None = None, metrics: RunMetrics | None = None, env: Mapping[str, str] = os.environ
) -> Telemetry:
    """The engine's telemetry: the process's tracer if configured, and ``metrics`` if given."""
    return Telemetry(clock, process_tracer(env), metrics)

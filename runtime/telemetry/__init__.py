"""Traces, metrics and log fields about runs (docs/operating.md, "Observability").

``hooks.Telemetry`` is what the engine calls; ``setup`` builds it from the standard ``OTEL_*``
variables; ``tracing`` (OpenTelemetry) and ``metrics`` (Prometheus, CloudWatch EMF) are imported
only when configured, so an SDK-only install and a runtime without an exporter load neither.
"""

from stepline.telemetry.hooks import NOOP, FlowLimit, StepAttempt, StepStatus, Telemetry

__all__ = ["NOOP", "FlowLimit", "StepAttempt", "StepStatus", "Telemetry"]

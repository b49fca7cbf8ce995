"""Metrics of runs: what is counted and measured, and the two places it goes.

``PrometheusMetrics`` keeps them for the ``/metrics`` endpoint of ``stepline dev`` and ``stepline
start`` (the text format, through ``prometheus_client``); ``EmfMetrics`` writes them deployed as
CloudWatch embedded-metric-format lines through powertools, one set per function and flush (the
executor Lambda flushes at the end of each invocation). Each module's library is imported only
when that sink is built.

What each metric is called in either place, and which to alarm on: docs/operating.md, "Metrics".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from stepline.engine.ports import RunStatus
from stepline.telemetry.hooks import FlowLimit, StepAttempt, StepStatus

# Step durations run from milliseconds (a checkpointed step) to the step timeout.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
# Time behind a flow limit: seconds to days (a throttle of one a day).
FLOW_WAIT_BUCKETS = (0.1, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400)
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Backlog = Callable[[], tuple[int, int]]  # (messages due, age of the oldest in ms)


class PrometheusMetrics:
    """``RunMetrics`` in a registry of their own, for the ``/metrics`` endpoint."""

    def __init__(self, backlog: Backlog | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.started = Counter("stepline_runs_started", "Runs created", ["function"], registry=r)
        self.ended = Counter("stepline_runs_ended", "Runs ended, by final status", ["function", "status"], registry=r)
        self.attempts = Counter(
            "stepline_step_attempts", "Step attempts settled", ["function", "kind", "status"], registry=r
        )
        self.duration = Histogram(
            "stepline_step_duration_seconds",
            "How long a step attempt took, as the executor saw it",
            ["function", "kind"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.flow = Histogram(
            "stepline_flow_wait_seconds",
            "Time a run was held back by concurrency, throttle or rate limit",
            ["function", "limit"],
            buckets=FLOW_WAIT_BUCKETS,
            registry=r,
        )
        self.dead = Counter("stepline_dead_letters", "Work messages dead-lettered", ["kind"], registry=r)
        if backlog is not None:
            r.register(_BacklogCollector(backlog))

    def run_started(self, fn_id: str) -> None:
        self.started.labels(fn_id).inc()

    def run_ended(self, fn_id: str, status: str) -> None:
        self.ended.labels(fn_id, status).inc()

    def step(self, fn_id: str, attempt: StepAttempt) -> None:
        self.attempts.labels(fn_id, attempt.kind, attempt.status.value).inc()
        self.duration.labels(fn_id, attempt.kind).observe((attempt.ended_ms - attempt.started_ms) / 1000)

    def flow_wait(self, fn_id: str, limit: FlowLimit, seconds: float) -> None:
        self.flow.labels(fn_id, limit.value).observe(seconds)

    def dead_letter(self, kind: str) -> None:
        self.dead.labels(kind).inc()

    def flush(self) -> None:
        return None  # scraped, never pushed

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _BacklogCollector:
    """The work queue's backlog, read when scraped."""

    def __init__(self, backlog: Backlog) -> None:
        self.backlog = backlog

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        count, age_ms = self.backlog()
        backlog = GaugeMetricFamily("stepline_queue_backlog", "Work messages due and not yet taken")
        backlog.add_metric([], count)
        age = GaugeMetricFamily("stepline_queue_oldest_age_seconds", "How long the oldest due message has waited")
        age.add_metric([], age_ms / 1000)
        return [backlog, age]


_ENDED = {
    RunStatus.COMPLETED.value: "RunsCompleted",
    RunStatus.FAILED.value: "RunsFailed",
    RunStatus.CANCELLED.value: "RunsCancelled",
}
NAMESPACE = "Stepline"
EMF_MAX_VALUES = 100


class EmfMetrics:
    """``RunMetrics`` as CloudWatch metrics: powertools' embedded metric format, one metric set
    per function (dimension ``FunctionId``), written to the log on ``flush``."""

    def __init__(self, namespace: str = NAMESPACE, service: str | None = None) -> None:
        """``service``: None for powertools' own (POWERTOOLS_SERVICE_NAME, which the stack sets)."""
        self.namespace = namespace
        self.service = service
        self._lock = threading.Lock()
        self._sets: dict[tuple[str, str], Any] = {}  # (dimension name, value) -> EphemeralMetrics

    def _set(self, dimension: str, value: str) -> Any:
        with self._lock:
            metrics = self._sets.get((dimension, value))
            if metrics is None:
                from aws_lambda_powertools.metrics import EphemeralMetrics

                metrics = EphemeralMetrics(namespace=self.namespace, service=self.service)
                metrics.add_dimension(name=dimension, value=value)
                self._sets[(dimension, value)] = metrics
            return metrics

    def _add(self, dimension: str, value: str, name: str, unit: str, amount: float) -> None:
        metrics = self._set(dimension, value)
        metrics.add_metric(name=name, unit=unit, value=amount)
        # EMF takes at most 100 values of a metric in one line: a long invocation writes several.
        if len(metrics.metric_set.get(name, {}).get("Value", ())) >= EMF_MAX_VALUES:
            with self._lock:
                self._sets.pop((dimension, value), None)
            metrics.flush_metrics()

    def run_started(self, fn_id: str) -> None:
        self._add("FunctionId", fn_id, "RunsStarted", "Count", 1)

    def run_ended(self, fn_id: str, status: str) -> None:
        self._add("FunctionId", fn_id, _ENDED.get(status, "RunsEnded"), "Count", 1)

    def step(self, fn_id: str, attempt: StepAttempt) -> None:
        self._add("FunctionId", fn_id, "StepAttempts", "Count", 1)
        if attempt.status is not StepStatus.OK:
            self._add("FunctionId", fn_id, "StepFailures", "Count", 1)
        self._add("FunctionId", fn_id, "StepDuration", "Milliseconds", attempt.ended_ms - attempt.started_ms)

    def flow_wait(self, fn_id: str, limit: FlowLimit, seconds: float) -> None:
        self._add("FlowLimit", limit.value, "FlowWait", "Milliseconds", seconds * 1000)

    def dead_letter(self, kind: str) -> None:
        self._add("MessageKind", kind, "DeadLetters", "Count", 1)

    def flush(self) -> None:
        with self._lock:
            sets, self._sets = list(self._sets.values()), {}
        for metrics in sets:
            metrics.flush_metrics()

"""Executor Lambda: SQS event source with partial batch failures. Each record is one work
message; a record that raises is reported as failed and SQS delivers it again (then the DLQ)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from runtime.engine.core import Engine
from runtime.handlers.wiring import engine_from_env

logger = Logger(service="stepline-executor")
tracer = Tracer(service="stepline-executor")
metrics = Metrics(namespace="Stepline", service="executor")

# Leave this much of the Lambda's time for acknowledging and re-enqueueing.
DEADLINE_MARGIN_MS = 15_000


def make_handler(engine: Engine):
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        processor = BatchProcessor(event_type=EventType.SQS)

        def record_handler(record: SQSRecord) -> None:
            budget = None
            if context is not None and hasattr(context, "get_remaining_time_in_millis"):
                budget = max(context.get_remaining_time_in_millis() - DEADLINE_MARGIN_MS, 1_000)
            engine.executor.handle(json.loads(record.body), budget_ms=budget)

        response = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        records = len(event.get("Records") or [])
        failed = len(response.get("batchItemFailures") or [])
        metrics.add_metric(name="MessagesProcessed", unit=MetricUnit.Count, value=records - failed)
        metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=failed)
        return response

    return handle


_handler = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        _handler = make_handler(engine_from_env())
    return _handler(event, context)

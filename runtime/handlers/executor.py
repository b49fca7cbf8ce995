"""Executor Lambda: SQS event source with partial batch failures. Each record is one work
message, handled by the engine's delivery as the local driver handles it: a record that fails
is reported as failed and comes back after a backoff (its visibility is set to it); a poison one
is put on the DLQ with its reason, its run marked Failed, and reported done, so the event source
deletes it. SQS's own redrive (a little above ``max_deliveries``) is left for deliveries that
crash the Lambda outright (a timeout, out of memory).

Each record gets an honest budget, taken when it starts: the time in which the executor may go
on starting calls, so that the last one ends, however long it takes up to the step timeout, with
the margin for its writes still left (``Settings.record_budget_ms``). A record that comes when
not even one call fits is not started: it is reported failed with its visibility set to 0, so
another invocation takes it at once (its receive count goes up by one)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stepline.aws.queue import message_from_lambda_record
from stepline.engine.core import Engine
from stepline.engine.delivery import Outcome
from stepline.handlers.tracing import traced
from stepline.handlers.wiring import engine_from_env
from stepline.settings import DEADLINE_MARGIN_S
from stepline.telemetry.logs import install_json

SERVICE = "stepline-executor"
logger = Logger(service=SERVICE)
install_json(logger)  # the runtime's lines as this logger's JSON, with run id, function id, trace id
metrics = Metrics(namespace="Stepline", service="executor")


def make_handler(engine: Engine):
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # A batch whose every record failed is reported like a partial one, not raised: the
        # Lambda's Errors metric then counts crashes only.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        dead = 0

        def record_handler(record: SQSRecord) -> None:
            nonlocal dead
            message = message_from_lambda_record(record.raw_event)
            budget = None
            if context is not None and hasattr(context, "get_remaining_time_in_millis"):
                remaining = context.get_remaining_time_in_millis()
                budget = engine.settings.record_budget_ms(remaining)
                if budget <= 0 and remaining < DEADLINE_MARGIN_S * 1000 + 1_000:
                    # Too late even to lease the run and hand it on: another invocation takes it.
                    engine.backend.queue.retry_later(message.handle, 0)
                    raise RedeliverLater(record.message_id)
                budget = max(budget, 0)  # 0: no call starts; the run is re-enqueued as it is
            outcome = engine.delivery.deliver(message, budget_ms=budget)
            if outcome is Outcome.RETRY:
                raise RedeliverLater(record.message_id)
            dead += outcome is Outcome.DEAD

        try:
            response = process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        finally:
            engine.telemetry.flush()  # this invocation's run metrics and spans, before it freezes
        records = len(event.get("Records") or [])
        failed = len(response.get("batchItemFailures") or [])
        metrics.add_metric(name="MessagesProcessed", unit=MetricUnit.Count, value=records - failed)
        metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=failed)
        metrics.add_metric(name="MessagesDeadLettered", unit=MetricUnit.Count, value=dead)
        return dict(response)

    return handle


class RedeliverLater(Exception):
    """Reports a record as failed to the batch processor: it comes back after its backoff."""


_handler = None


@logger.inject_lambda_context(clear_state=True)
@traced(SERVICE)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        _handler = make_handler(engine_from_env())
    return _handler(event, context)

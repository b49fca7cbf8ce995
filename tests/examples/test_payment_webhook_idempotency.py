"""End-to-end scenarios for engine features that the SDK already speaks: cron triggers,
idempotency keys, wait_for_event, invoke and cancel_on, each through a real `stepline dev` on a
manual clock. (The SDK side of each is covered by tests/sdk at the wire level.)"""

from __future__ import annotations

import datetime
import threading
import uuid
from collections import Counter

import pytest

from examples.app import app as examples_app
from examples.app import client as examples_client
from examples.services import services
from stepline import Cancel, Client, Context, serve_wsgi
from stepline.engine.clock import ManualClock
from tests.sdk.harness import Stack, wait_for

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS



def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_payment_webhook_runs_once_per_provider_event_id(tmp_path):
    stack = Stack(examples_app, tmp_path, examples_client.app_id)
    try:
        order, provider_event = uid("o"), uid("evt")
        hook = {"name": "payments/webhook.received", "data": {
            "provider_event_id": provider_event, "type": "payment_intent.succeeded",
            "payload": {"order_id": order, "amount_cents": 1000}}}
        # Two deliveries of one provider event: distinct Stepline events (no shared event id),
        # so only the function's idempotency key can tell they are the same.
        [first] = stack.send(hook)
        stack.wait_run(first, status="Completed")
        [second] = stack.send(hook)
        assert second != first
        stack.settle()
        assert stack.runs(second) == []
        assert services.count("orders.mark_paid", order) == 1
    finally:
        stack.close()

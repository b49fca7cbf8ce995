"""The dead-letter queue on SQS: what SQS moves there by itself (the executor crashed on every
delivery) is listed with a reason made up for it and can be redriven; the work queue's redrive
policy sits a little above ``max_deliveries``."""

from __future__ import annotations

import json

import pytest

from stepline.aws.dead_letters import SqsDeadLetters, moved_by_sqs_reason
from stepline.aws.moto_env import moto_backend
from stepline.aws.resources import DEFAULT_MAX_RECEIVE_COUNT, REDRIVE_MARGIN, max_receive_count
from stepline.engine.ports import DeadReason, StoreError
from stepline.settings import Settings
from tests.contract.helpers import drain


def crash_on(backend, receives: int) -> None:
    """Receive without acknowledging, as an executor that dies each time would."""
    for _ in range(receives):
        (message,) = backend.queue.receive(1, 30)
        backend.queue.retry_later(message.handle, 0)  # its visibility timeout, run out


def test_the_redrive_policy_leaves_room_for_the_engine_to_dead_letter_first(aws):
    names = aws.names
    attributes = aws.clients["sqs"].get_queue_attributes(
        QueueUrl=names.queue_url, AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == DEFAULT_MAX_RECEIVE_COUNT
    assert DEFAULT_MAX_RECEIVE_COUNT == max_receive_count(Settings().max_deliveries)
    assert DEFAULT_MAX_RECEIVE_COUNT == Settings().max_deliveries + REDRIVE_MARGIN > Settings().max_deliveries


def test_a_message_sqs_moved_is_listed_with_why_and_redriven(clock):
    with moto_backend(clock, max_receive_count=2) as backend:
        backend.queue.send({"kind": "call", "run_id": "run-7", "step": "step", "attempt": 0})
        crash_on(backend, 2)
        assert backend.queue.receive(1, 30) == []  # SQS moved it on the third receive

        [entry] = backend.dead_letters.list_dead(10)

        assert entry.body == {"kind": "call", "run_id": "run-7", "step": "step", "attempt": 0}
        assert entry.reason == DeadReason(moved_by_sqs_reason(2), 2, None, "run-7")
        assert entry.reason.error == "moved by SQS after 2 receives (the executor crashed or timed out on each)"
        assert backend.dead_letters.redrive([entry.id]) == 1
        [message] = drain(backend.queue)
        assert message.body["run_id"] == "run-7" and message.receive_count == 1
        assert backend.dead_letters.list_dead(10) == []


def test_ours_and_sqs_moved_messages_are_listed_together(clock):
    with moto_backend(clock, max_receive_count=1) as backend:
        backend.queue.send({"kind": "cron", "fn_id": "f", "cron": "* * * * *"})
        crash_on(backend, 1)
        assert backend.queue.receive(1, 30) == []
        ours = DeadReason("wake message failed 10 deliveries: StoreError: x", 10, clock.now_ms(), "run-1")
        backend.dead_letters.dead_letter({"kind": "wake", "run_id": "run-1", "step": "s"}, ours)

        entries = sorted(backend.dead_letters.list_dead(10), key=lambda e: e.body["kind"])

        assert [e.reason for e in entries] == [DeadReason(moved_by_sqs_reason(1), 1, None, None), ours]
        assert backend.dead_letters.redrive() == 2
        assert sorted(m.body["kind"] for m in drain(backend.queue)) == ["cron", "wake"]


def test_a_dlq_that_is_not_configured_is_a_store_error(aws):
    dead = SqsDeadLetters(aws.clients["sqs"], "", aws.names.queue_url, wait_seconds=0)
    with pytest.raises(StoreError, match="STEPLINE_DLQ_URL"):
        dead.dead_letter({"kind": "wake"}, DeadReason("x", 1, 1, None))

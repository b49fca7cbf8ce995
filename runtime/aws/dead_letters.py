"""``DeadLetters`` on the work queue's SQS dead-letter queue.

Two kinds of message land there. Ours: the delivery dead-letters a poison message with
SendMessage, the reason in message attributes. SQS's: the work queue's redrive policy moves a
message received ``maxReceiveCount`` times (a little above ``max_deliveries``), which happens
only when the executor crashed or timed out on every delivery and so never got to dead-letter
it; such a message has no reason attribute, and listing makes one up from the redrive policy.

A queue cannot be read without receiving: listing and redriving receive the messages, hiding
them for a moment, and make the ones they leave visible again at once when done. Messages are
told apart by SQS message id. Receives long-poll for ``wait_seconds`` (1 on AWS: a short poll
samples only some of SQS's servers and may answer empty while messages wait; 0 on moto, whose
long polls hold its request lock).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from stepline.aws.errors import translated
from stepline.aws.queue import message_text
from stepline.engine.messages import INVALID_BODY, parse_body
from stepline.engine.ports import DeadLetter, DeadReason, StoreError

# Message attributes of a message we dead-lettered.
REASON = "stepline-reason"
RECEIVE_COUNT = "stepline-receive-count"
DEAD_AT = "stepline-dead-at"
RUN_ID = "stepline-run-id"
_ATTRIBUTES = [REASON, RECEIVE_COUNT, DEAD_AT, RUN_ID]
# How long a listing or a redrive keeps the messages it received hidden if it dies midway.
_HIDE_SECONDS = 30
_BATCH_MAX = 10
# Characters SQS refuses in a string attribute (outside XML's character range).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Handles that no longer control a message: it is visible again already, or gone.
_GONE = (
    "ReceiptHandleIsInvalid",
    "InvalidParameterValue",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
)


def moved_by_sqs_reason(receives: int | None) -> str:
    count = str(receives) if receives is not None else "maxReceiveCount"
    return f"moved by SQS after {count} receives (the executor crashed or timed out on each)"


class SqsDeadLetters:
    def __init__(self, client: Any, dlq_url: str, queue_url: str, *, wait_seconds: int = 1) -> None:
        self._sqs = client
        self._dlq = dlq_url
        self._queue = queue_url
        self.wait_seconds = wait_seconds
        self._max_receives: int | None = None

    def _dlq_url(self) -> str:
        if not self._dlq:
            raise StoreError("no dead-letter queue is configured (STEPLINE_DLQ_URL is not set)")
        return self._dlq

    # -- DeadLetters ---------------------------------------------------------------------------
    def dead_letter(self, body: dict[str, Any], reason: DeadReason) -> None:
        attributes = {
            REASON: _text(reason.error),
            RECEIVE_COUNT: {"DataType": "Number", "StringValue": str(reason.receive_count)},
        }
        if reason.dead_at is not None:
            attributes[DEAD_AT] = {"DataType": "Number", "StringValue": str(reason.dead_at)}
        if reason.run_id:
            attributes[RUN_ID] = _text(reason.run_id)
        # A body that was never JSON goes as the text that came, so the DLQ holds what arrived.
        raw = body.get(INVALID_BODY) if set(body) == {INVALID_BODY} else None
        text = raw if isinstance(raw, str) and raw else message_text(body)
        with translated("SQS SendMessage (dead-letter queue)"):
            self._sqs.send_message(QueueUrl=self._dlq_url(), MessageBody=text, MessageAttributes=attributes)

    def list_dead(self, limit: int) -> list[DeadLetter]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        entries: list[DeadLetter] = []
        received: list[str] = []
        try:
            while len(entries) < limit:
                batch = self._receive(min(_BATCH_MAX, limit - len(entries)))
                if not batch:
                    break
                for message in batch:
                    received.append(message["ReceiptHandle"])
                    entries.append(self._entry(message))
        finally:
            self._show_again(received)
        return entries

    def redrive(
        self,
        ids: list[str] | None = None,
        *,
        limit: int = 100,
        on_move: Callable[[DeadLetter], None] | None = None,
    ) -> int:
        wanted = set(ids) if ids is not None else None
        moved = 0
        left: list[str] = []
        try:
            while moved < limit and (wanted is None or wanted):
                batch = self._receive(_BATCH_MAX)
                if not batch:
                    break
                for message in batch:
                    handle = message["ReceiptHandle"]
                    if moved >= limit or (wanted is not None and message["MessageId"] not in wanted):
                        left.append(handle)
                        continue
                    left.append(handle)  # until it is deleted below
                    if on_move is not None:
                        on_move(self._entry(message))
                    with translated("SQS SendMessage (redrive)"):
                        self._sqs.send_message(QueueUrl=self._queue, MessageBody=message["Body"])
                    with translated("SQS DeleteMessage (dead-letter queue)", ignore=_GONE):
                        self._sqs.delete_message(QueueUrl=self._dlq, ReceiptHandle=handle)
                    left.pop()
                    moved += 1
                    if wanted is not None:
                        wanted.discard(message["MessageId"])
        finally:
            self._show_again(left)
        return moved

    # -- internals ------------------------------------------------------------------------------
    def _receive(self, count: int) -> list[dict[str, Any]]:
        with translated("SQS ReceiveMessage (dead-letter queue)"):
            resp = self._sqs.receive_message(
                QueueUrl=self._dlq_url(),
                MaxNumberOfMessages=count,
                VisibilityTimeout=_HIDE_SECONDS,
                WaitTimeSeconds=self.wait_seconds,
                MessageAttributeNames=_ATTRIBUTES,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        return resp.get("Messages") or []

    def _show_again(self, handles: list[str]) -> None:
        """Make received messages visible at once (best effort: otherwise they are in
        ``_HIDE_SECONDS``)."""
        for start in range(0, len(handles), _BATCH_MAX):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start : start + _BATCH_MAX])
            ]
            try:
                self._sqs.change_message_visibility_batch(QueueUrl=self._dlq, Entries=entries)
            except Exception:  # noqa: BLE001 - they reappear by themselves shortly
                pass

    def _entry(self, message: dict[str, Any]) -> DeadLetter:
        body = parse_body(message.get("Body") or "")
        attributes = message.get("MessageAttributes") or {}
        run_id = body.get("run_id") if isinstance(body.get("run_id"), str) and body.get("run_id") else None
        if REASON in attributes:
            value = lambda name: (attributes.get(name) or {}).get("StringValue")  # noqa: E731
            dead_at = value(DEAD_AT)
            reason = DeadReason(
                error=value(REASON) or "",
                receive_count=int(value(RECEIVE_COUNT) or 0),
                dead_at=int(dead_at) if dead_at else None,
                run_id=value(RUN_ID) or run_id,
            )
        else:
            receives = self._max_receive_count()
            reason = DeadReason(moved_by_sqs_reason(receives), receives or 0, None, run_id)
        return DeadLetter(id=message["MessageId"], body=body, reason=reason)

    def _max_receive_count(self) -> int | None:
        """The work queue's maxReceiveCount: how many receives SQS moved a message after."""
        if self._max_receives is None:
            try:
                attributes = self._sqs.get_queue_attributes(QueueUrl=self._queue, AttributeNames=["RedrivePolicy"])[
                    "Attributes"
                ]
                self._max_receives = int(json.loads(attributes["RedrivePolicy"])["maxReceiveCount"])
            except Exception:  # noqa: BLE001 - the reason then names the setting instead
                return None
        return self._max_receives


def _text(value: str) -> dict[str, str]:
    # SQS refuses empty string attributes and characters outside XML's.
    return {"DataType": "String", "StringValue": _NOT_XML.sub("?", value) or "-"}

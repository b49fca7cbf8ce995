"""``WorkQueue`` on an SQS standard queue.

Visibility and delays run on SQS's own clock (real time), not the engine's injected clock: SQS
has no other. Receives never long-poll (``WaitTimeSeconds=0``) because the executor is driven by
Lambda's event source mapping on AWS and by an explicit poll loop elsewhere; long polls would
also hold moto's request lock (see ``moto_env``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from stepline.aws.errors import translated
from stepline.aws.resources import MAX_MESSAGE_BYTES
from stepline.engine.messages import parse_body
from stepline.engine.ports import QueueMessage, StoreError

SQS_MAX_DELAY_SECONDS = 900
SQS_MAX_VISIBILITY_SECONDS = 43_200
_BATCH_MAX = 10
# Codes meaning "this handle no longer controls an in-flight message": the message was deleted
# already, or it is visible again and will be redelivered anyway.
_GONE = (
    "ReceiptHandleIsInvalid",
    "InvalidParameterValue",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
)


def message_text(body: dict[str, Any]) -> str:
    """The JSON text SQS carries for ``body``; StoreError past the message size limit."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise StoreError(f"queue message is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte SQS limit")
    return text


def _loads(text: str) -> dict[str, Any]:
    # Something other than our JSON object on the queue is handed over as-is, so the consumer
    # can reject it as poison instead of crashing on it.
    return parse_body(text)


def message_from_lambda_record(record: Mapping[str, Any]) -> QueueMessage:
    """A Lambda SQS event record (``event["Records"][i]``) as the engine's ``QueueMessage``."""
    attributes = record.get("attributes") or {}
    return QueueMessage(
        handle=record["receiptHandle"],
        body=_loads(record.get("body") or ""),
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
    )


class SqsWorkQueue:
    max_delay_seconds = SQS_MAX_DELAY_SECONDS

    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def _check_delay(self, delay_seconds: int) -> int:
        delay = int(delay_seconds)
        if not 0 <= delay <= self.max_delay_seconds:
            raise ValueError(f"delay_seconds must be within 0..{self.max_delay_seconds}, got {delay_seconds}")
        return delay

    def send(self, body: dict[str, Any], delay_seconds: int = 0) -> None:
        delay = self._check_delay(delay_seconds)
        text = message_text(body)
        with translated("SQS SendMessage"):
            self._sqs.send_message(QueueUrl=self._url, MessageBody=text, DelaySeconds=delay)

    def send_many(self, bodies: list[dict[str, Any]], delay_seconds: int = 0) -> None:
        delay = self._check_delay(delay_seconds)
        for batch in _batches([message_text(b) for b in bodies]):
            entries = [{"Id": str(i), "MessageBody": text, "DelaySeconds": delay} for i, text in enumerate(batch)]
            with translated("SQS SendMessageBatch"):
                resp = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            failed = resp.get("Failed") or []
            if failed:
                self._resend(entries, failed)

    def _resend(self, entries: list[dict[str, Any]], failed: list[dict[str, Any]]) -> None:
        """Entries SQS failed on its side get one more try; sender faults are ours to report."""
        by_id = {e["Id"]: e for e in entries}
        ours = [f for f in failed if f.get("SenderFault")]
        if ours:
            f = ours[0]
            raise StoreError(f"SQS SendMessageBatch rejected a message: {f.get('Code')}: {f.get('Message', '')}")
        retry = [by_id[f["Id"]] for f in failed]
        with translated("SQS SendMessageBatch"):
            resp = self._sqs.send_message_batch(QueueUrl=self._url, Entries=retry)
        if resp.get("Failed"):
            f = resp["Failed"][0]
            raise StoreError(f"SQS SendMessageBatch failed: {f.get('Code')}: {f.get('Message', '')}")

    def receive(self, max_messages: int, visibility_seconds: int) -> list[QueueMessage]:
        out: list[QueueMessage] = []
        while len(out) < max_messages:
            want = min(_BATCH_MAX, max_messages - len(out))
            with translated("SQS ReceiveMessage"):
                resp = self._sqs.receive_message(
                    QueueUrl=self._url,
                    MaxNumberOfMessages=want,
                    VisibilityTimeout=int(visibility_seconds),
                    WaitTimeSeconds=0,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )
            messages = resp.get("Messages") or []
            out.extend(
                QueueMessage(
                    handle=m["ReceiptHandle"],
                    body=_loads(m.get("Body") or ""),
                    receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                )
                for m in messages
            )
            if len(messages) < want:
                break
        return out

    def ack(self, handle: str) -> None:
        with translated("SQS DeleteMessage", ignore=_GONE):
            self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=handle)

    def retry_later(self, handle: str, delay_seconds: int) -> None:
        delay = max(0, min(int(delay_seconds), SQS_MAX_VISIBILITY_SECONDS))
        with translated("SQS ChangeMessageVisibility", ignore=_GONE):
            self._sqs.change_message_visibility(QueueUrl=self._url, ReceiptHandle=handle, VisibilityTimeout=delay)


def _batches(texts: list[str]) -> Iterator[list[str]]:
    """At most 10 messages and at most one message's byte limit per SendMessageBatch."""
    batch: list[str] = []
    size = 0
    for text in texts:
        length = len(text.encode("utf-8", "surrogatepass"))
        if batch and (len(batch) == _BATCH_MAX or size + length > MAX_MESSAGE_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(text)
        size += length
    if batch:
        yield batch

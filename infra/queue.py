"""The work queue and its dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stepline.aws.resources import DLQ_RETENTION_SECONDS, MAX_MESSAGE_BYTES, max_receive_count

# A retried message stays the same message (its visibility is extended), so it may be days old.
QUEUE_RETENTION = Duration.days(14)


class WorkQueue(Construct):
    """SQS standard queue with a DLQ, both encrypted (SQS-managed keys, or the stack's customer
    managed key with a five-minute data key reuse) and TLS only.

    ``visibility_timeout`` is at least six times the executor's timeout, as AWS advises for an
    SQS event source: a message comes back only after no invocation (nor the event source's
    retry of a throttled one) can still be running it. The runtime dead-letters a message
    itself on its ``max_deliveries``-th failure, with the reason; the redrive policy moves one
    a few receives later, for deliveries that crashed the executor before it could.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        visibility_timeout: Duration,
        max_deliveries: int,
        key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, id)
        encryption = sqs.QueueEncryption.KMS if key else sqs.QueueEncryption.SQS_MANAGED
        # One KMS request per data key per five minutes (SQS's longest reuse), not per message.
        reuse = Duration.minutes(5) if key else None
        self.dlq = sqs.Queue(
            self,
            "DeadLetters",
            retention_period=Duration.seconds(DLQ_RETENTION_SECONDS),
            max_message_size_bytes=MAX_MESSAGE_BYTES,
            enforce_ssl=True,
            encryption=encryption,
            encryption_master_key=key,
            data_key_reuse=reuse,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=visibility_timeout,
            retention_period=QUEUE_RETENTION,
            max_message_size_bytes=MAX_MESSAGE_BYTES,
            enforce_ssl=True,
            encryption=encryption,
            encryption_master_key=key,
            data_key_reuse=reuse,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=max_receive_count(max_deliveries)),
        )

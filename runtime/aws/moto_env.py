"""The AWS family on moto, in-process: for tests and ``stepline dev --backend moto``.

moto handles requests with unlocked check-then-write Python code: under threads it loses
conditional-write races, double-grants claims and delivers SQS messages twice. Concurrency
tests must exercise our races, not moto's, so every moto request is serialized through one
process-wide lock (``install_moto_lock``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from stepline.aws import AwsBackend, make_clients, open_aws_backend
from stepline.aws.resources import DEFAULT_MAX_RECEIVE_COUNT, AwsNames, provision
from stepline.engine.ports import Clock

MOTO_REGION = "us-east-1"

_REQUEST_LOCK = threading.RLock()
_SETUP_LOCK = threading.Lock()


def install_moto_lock() -> threading.RLock:
    """Serialize moto's in-process request handling with one global RLock. Idempotent.

    Reentrant because moto may call back into its own stubber while handling a request. Never
    long-poll SQS (``WaitTimeSeconds>0``) under it: the wait would hold the lock.
    """
    from moto.core.botocore_stubber import BotocoreStubber

    with _SETUP_LOCK:
        current = BotocoreStubber.process_request
        if getattr(current, "__serialized_by__", None) is _REQUEST_LOCK:
            return _REQUEST_LOCK

        @functools.wraps(current)
        def process_request(self: Any, request: Any) -> Any:
            with _REQUEST_LOCK:
                return current(self, request)

        process_request.__serialized_by__ = _REQUEST_LOCK  # type: ignore[attr-defined]
        BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    return _REQUEST_LOCK


_SESSIONS: dict[str, Any] = {}


def moto_session(region: str = MOTO_REGION) -> Any:
    """A session with fixed fake credentials, so no real ones are ever picked up.

    Shared per region: a session caches the parsed service models, which is most of the cost of
    making clients, and a fresh moto account is opened many times per test run.
    """
    with _SETUP_LOCK:
        if region not in _SESSIONS:
            _SESSIONS[region] = boto3.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                aws_session_token="testing",
                region_name=region,
            )
        return _SESSIONS[region]


@contextmanager
def moto_backend(
    clock: Clock,
    *,
    prefix: str = "stepline",
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
    retention_ms: int | None = None,
) -> Iterator[AwsBackend]:
    """A fresh moto account with Stepline's resources provisioned, as a ``Backend``. moto never
    fires schedules: ``backend.timers.fire_due`` does (the local driver calls it)."""
    import moto

    install_moto_lock()
    with moto.mock_aws():
        session = moto_session()
        with _SETUP_LOCK:  # sessions are not safe for concurrent client creation
            clients = make_clients(session, MOTO_REGION)
            iam = session.client("iam", region_name=MOTO_REGION)
        names = provision(
            AwsNames.for_prefix(prefix, MOTO_REGION),
            session,
            max_receive_count=max_receive_count,
            clients={**clients, "iam": iam},
        )
        iam.close()
        backend = open_aws_backend(
            names, clock, session, clients=clients, dlq_wait_seconds=0, retention_ms=retention_ms
        )
        try:
            yield backend
        finally:
            backend.close()

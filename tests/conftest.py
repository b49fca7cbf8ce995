"""Shared fixtures: a manual clock, and one fixture that yields each adapter family in turn."""

from __future__ import annotations

import os

import pytest

from stepline.engine.clock import ManualClock

# moto: never reach real AWS, and dodge the streams routing bug (see shared MOTO notes).
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
os.environ.setdefault("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", "false")

BACKENDS = ["sqlite", "aws"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def open_backend(kind: str, tmp_path, clock):
    """A context manager yielding a fresh ``Backend`` of the given family."""
    if kind == "sqlite":
        from stepline.local import local_backend

        return local_backend(str(tmp_path / "stepline.db"), clock)
    if kind == "aws":
        from stepline.aws.moto_env import moto_backend

        return moto_backend(clock)
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path, clock):
    with open_backend(request.param, tmp_path, clock) as b:
        yield b

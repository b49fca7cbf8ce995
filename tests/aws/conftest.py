"""Fixtures for the AWS family's own tests: a moto backend and a per-operation call log."""

from __future__ import annotations

from collections import Counter

import pytest

from stepline.aws.moto_env import moto_backend


class CallLog:
    """Every AWS operation the backend's clients make, counted through botocore's event hooks
    (the same hooks the benchmark uses to price a step)."""

    def __init__(self, clients: dict) -> None:
        self.ops: list[str] = []
        for client in clients.values():
            client.meta.events.register("before-call.*.*", self._record)

    def _record(self, model, **_kwargs) -> None:
        self.ops.append(model.name)

    def reset(self) -> None:
        self.ops.clear()

    def counts(self) -> Counter:
        return Counter(self.ops)

    def during(self, fn, *args, **kwargs):
        """Run ``fn`` with a fresh log; return (result, operation counts)."""
        self.reset()
        result = fn(*args, **kwargs)
        return result, self.counts()


@pytest.fixture
def aws(clock):
    with moto_backend(clock) as backend:
        yield backend


@pytest.fixture
def calls(aws) -> CallLog:
    return CallLog(aws.clients)

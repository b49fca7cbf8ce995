"""A live `stepline dev` with the ops app, shared by the operating tests (each test keys its own
events, so runs of other tests never confuse it)."""

from __future__ import annotations

import pytest

from tests.operating.harness import start_ops, stop_ops


@pytest.fixture(scope="session")
def ops(tmp_path_factory):
    stack = start_ops(tmp_path_factory.mktemp("ops"))
    try:
        yield stack
    finally:
        stop_ops(stack)

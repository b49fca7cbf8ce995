"""The example app (`make dev`'s) against a real `stepline dev` on a manual clock."""

from __future__ import annotations

import pytest

from examples.app import app, client
from examples.services import services
from tests.sdk.harness import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(app, tmp_path_factory.mktemp("examples"), client.app_id)
    yield s
    s.close()


@pytest.fixture
def svc():
    return services

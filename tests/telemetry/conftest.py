"""The OTLP receiver and the traced `stepline dev` that the end-to-end telemetry tests share."""

from __future__ import annotations

import pytest

from tests.telemetry.otlp import OtlpReceiver, traced_dev_server


@pytest.fixture
def receiver():
    r = OtlpReceiver()
    yield r
    r.stop()


@pytest.fixture
def traced_dev(tmp_path, receiver):
    yield from traced_dev_server(tmp_path, receiver)

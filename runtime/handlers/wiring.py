"""Builds the engine a Lambda runs on, from the environment the stack sets (runtime.settings).
Done once per container, at the first invocation, and reused while the container is warm."""

from __future__ import annotations

import threading

from runtime.engine.core import Engine
from runtime.settings import Settings

_engine: Engine | None = None
_lock = threading.Lock()


def engine_from_env() -> Engine:
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                from runtime.aws import open_aws_backend
                from runtime.aws.resources import AwsNames

                settings = Settings.from_env()
                _engine = Engine(open_aws_backend(AwsNames.from_settings(settings), clock=None), settings)
    return _engine

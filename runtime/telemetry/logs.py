"""Log lines that join up: every line the runtime logs while it works on a run carries the run's
id, its function's id and its trace id, so that one search finds all of a run.

The ids live in a context variable that the engine sets as it takes a message or a run on
(``Telemetry.message``, ``Telemetry.invocation``); ``RunFields`` copies them onto each record as
``run_id``, ``function_id`` and ``trace_id``. Deployed, powertools' JSON formatter writes a record's
extra attributes as keys of the line; ``stepline dev``/``start`` add them to the text format.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunLogFields:
    run_id: str | None = None
    function_id: str | None = None
    trace_id: str | None = None


_NONE = RunLogFields()
_current: ContextVar[RunLogFields] = ContextVar("stepline_run_log_fields", default=_NONE)


def about_run(run_id: str | None, function_id: str | None = None, trace_id: str | None = None) -> None:
    """From now on (in this thread or task), log lines are about this run; None: about none."""
    _current.set(RunLogFields(run_id, function_id, trace_id) if run_id else _NONE)


def current() -> RunLogFields:
    return _current.get()


class RunFields(logging.Filter):
    """Adds ``run_id``, ``function_id`` and ``trace_id`` to every record (None outside a run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _current.get()
        for name in ("run_id", "function_id", "trace_id"):
            if getattr(record, name, None) is None:
                setattr(record, name, getattr(fields, name))
        return True


# The text format of `stepline dev` and `stepline start`: the run's fields close each line about one.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(run_suffix)s"


class RunSuffix(RunFields):
    """As ``RunFields``, plus ``run_suffix`` for ``TEXT_FORMAT``: `` run=… fn=… trace=…`` or nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        super().filter(record)
        run_id, function_id, trace_id = (getattr(record, name, None) for name in ("run_id", "function_id", "trace_id"))
        fields = [f"run={run_id}"] if run_id else []
        if fields and function_id:
            fields.append(f"fn={function_id}")
        if fields and trace_id:
            fields.append(f"trace={trace_id}")
        record.run_suffix = (" " + " ".join(fields)) if fields else ""
        return True


def install_text(handler: logging.Handler) -> None:
    """Give a plain handler the run fields and ``TEXT_FORMAT``."""
    handler.addFilter(RunSuffix())
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))


def install_json(powertools_logger: Any, env: Mapping[str, str] = os.environ) -> bool:
    """Deployed: the runtime's own lines (the ``stepline.*`` loggers) go through the handler of a
    powertools ``Logger``, so they are its structured JSON, each with the run fields as keys.
    Only inside a Lambda (``AWS_LAMBDA_FUNCTION_NAME``, which the Lambda runtime sets): a process
    that merely imports a handler (the tests) keeps its logging as it is. True when installed."""
    if not env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return False
    handler = powertools_logger.registered_handler
    if not any(isinstance(f, RunFields) for f in handler.filters):
        handler.addFilter(RunFields())
    runtime = logging.getLogger("stepline")
    if handler not in runtime.handlers:
        runtime.addHandler(handler)
    runtime.propagate = False  # once, in JSON: not again through the Lambda's plain root handler
    runtime.setLevel(powertools_logger.log_level)
    return True

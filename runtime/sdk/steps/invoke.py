"""``step.invoke``: run another function (here or in another app) and wait for its result."""

from __future__ import annotations

import datetime
from typing import Any

from stepline.protocol.opcodes import Op
from stepline.sdk.config import duration_str
from stepline.sdk.errors import SdkError
from stepline.sdk.events import EventData
from stepline.sdk.steps.core import Execution, to_json_value, validate_as


def function_id_of(function: Any, app_id: str | None, default_app: str) -> str:
    """The composite id ``<app>-<fn>`` the server knows the target by."""
    composite = getattr(function, "composite_id", None)
    if isinstance(composite, str):
        return composite
    if isinstance(function, str) and function:
        return f"{app_id or default_app}-{function}"
    raise SdkError("invoke: function must be a Function or a function id")


def invoke(
    ex: Execution,
    step_id: str,
    function: Any,
    data: dict[str, Any] | EventData | None = None,
    timeout: str | datetime.timedelta | None = None,
    app_id: str | None = None,
    output_type: Any = None,
) -> Any:
    """The invoked function's return value; its failure is raised here as ``StepError``."""
    fn_id = function_id_of(function, app_id, ex.app_id)
    payload = to_json_value(
        data.model_dump(mode="json") if isinstance(data, EventData) else (data or {}), f"invoke {step_id!r}: data"
    )
    if not isinstance(payload, dict):
        raise SdkError(f"invoke {step_id!r}: data must be a dict or an EventData model")
    timeout_text = duration_str(timeout, f"invoke {step_id!r} timeout") if timeout is not None else None
    ref = ex.ref(step_id)
    if ref.memo is not None:
        return validate_as(ref.value(), output_type)
    opts = {"function_id": fn_id, "payload": {"data": payload, "v": None}, "timeout": timeout_text}
    ex.report(ref, ex.op(ref, Op.INVOKE_FUNCTION, opts=opts))

"""X-Ray tracing of the Lambda entry points, set up only when it is on.

powertools' ``Tracer`` imports the X-Ray SDK, and botocore with it, as soon as it is built (about
0.2 s of a cold start), even when it then finds tracing off and disables itself. Here powertools'
own rule decides first, from the same environment: the tracer is built, and the X-Ray SDK
imported, only in a Lambda with tracing not turned off (``POWERTOOLS_TRACE_DISABLED``), which is
where powertools would trace. Elsewhere the handler is left as it is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """What ``Tracer`` decides when built without ``disabled=`` (``Tracer._is_tracer_disabled``):
    on in a Lambda that is not an emulator, unless POWERTOOLS_TRACE_DISABLED is true."""
    if resolve_truthy_env_var_choice(env=env.get(constants.TRACER_DISABLED_ENV, "false")):
        return False
    in_lambda = bool(env.get(constants.LAMBDA_TASK_ROOT_ENV))
    emulated = bool(env.get(constants.SAM_LOCAL_ENV) or env.get(constants.CHALICE_LOCAL_ENV))
    return in_lambda and not emulated


def traced(service: str) -> Callable[[Handler], Handler]:
    """``Tracer(service=service).capture_lambda_handler`` when tracing is on; nothing otherwise."""
    if not tracing_enabled():
        return lambda handler: handler
    from aws_lambda_powertools import Tracer

    return Tracer(service=service).capture_lambda_handler  # type: ignore[return-value]

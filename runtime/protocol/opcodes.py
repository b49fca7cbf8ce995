"""The opcodes an SDK reports in a 206 reply, and the step id that means discovery
(docs/protocol.md §6.3–6.4, §7.4).

Stepline runs the first nine; the others are named by the SDKs for features it does not offer,
and any op it does not run fails its step with ``UnsupportedStep`` (so the user's code sees a
``StepError`` rather than the run hanging). An op name no SDK is known to send reads as
``Op.UNKNOWN``; the name as sent is kept beside it (``Opcode.wire_op``) for the error message.
"""

from __future__ import annotations

from enum import StrEnum

# The ``stepId`` of a call that runs the function from the top to find its next step, rather
# than one step by id (every SDK uses "step").
DISCOVERY_STEP_ID = "step"


class Op(StrEnum):
    STEP_RUN = "StepRun"  # a step ran in this call: ``data`` is its output
    STEP_PLANNED = "StepPlanned"  # a step was found but must run in a call of its own
    STEP_ERROR = "StepError"  # a step's attempt failed; retried while attempts remain
    STEP_FAILED = "StepFailed"  # a step failed on its last attempt
    SLEEP = "Sleep"
    WAIT_FOR_EVENT = "WaitForEvent"
    INVOKE_FUNCTION = "InvokeFunction"
    WAIT_FOR_SIGNAL = "WaitForSignal"  # resumed by POST /v1/signals (docs/protocol.md §10.4)
    AI_GATEWAY = "AIGateway"  # step.ai.infer: Stepline makes the model request (stepline.engine.ops.ai)
    # Named by the SDKs, not run by Stepline.
    GATEWAY = "Gateway"
    STEP_NOT_FOUND = "StepNotFound"
    RUN_COMPLETE = "RunComplete"
    # Ends a checkpointed call that stopped at its time budget: call again (docs/protocol.md §17.3).
    DISCOVERY_REQUEST = "DiscoveryRequest"
    # Any other name an app sends.
    UNKNOWN = "Unknown"

    @classmethod
    def read(cls, name: str) -> Op:
        """The op for a name as an SDK sends it; ``UNKNOWN`` for a name that is none of these."""
        try:
            return cls(name)
        except ValueError:
            return cls.UNKNOWN


# A step's result: what a call aimed at that step must report, and what settles a planned step.
RESULT_OPS = frozenset({Op.STEP_RUN, Op.STEP_ERROR, Op.STEP_FAILED})
# Ops a run waits on until a message of their own wakes it (a wake-up or a timeout).
TIMED_OPS = frozenset({Op.SLEEP, Op.WAIT_FOR_EVENT, Op.WAIT_FOR_SIGNAL, Op.INVOKE_FUNCTION})

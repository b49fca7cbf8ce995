"""The replay machinery every step tool shares (docs/protocol.md §7).

A call request carries every memoized step result. The function runs from the top; each step
tool hashes its id, and either hands back the memo or, for the first new step, stops the
function by raising ``Interrupt`` with the opcode(s) to answer. Interrupts derive from
``BaseException`` so that a user's ``except Exception`` cannot swallow them.

Three modes decide what a new step does:
* discovery (``stepId=step``): a lone ``run`` executes at once and reports ``StepRun``; inside
  a parallel group, or once the server set ``disable_immediate_execution``, it is only planned;
* targeted (``stepId=<hash>``): exactly that step executes; other new steps are skipped
  (inside a parallel group) or mean the code changed under the run (``step_unexpected``);
* other durable operations (sleep, wait, invoke) are always reported, never executed.

Checkpointing (``stepline.sdk.checkpointing``) changes one thing: a step that runs in a
discovery call and succeeds is reported as it finishes and the function goes on, so one call
runs consecutive steps until one cannot run inline (or the call's time budget is spent).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pydantic
from pydantic_core import PydanticSerializationError, to_jsonable_python

from stepline.protocol.opcodes import Op
from stepline.sdk.checkpointing import Checkpointer, NotCheckpointed
from stepline.sdk.errors import SdkError, StepError, error_body

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# Sends events and returns their ids: (events, x-inngest-event-id-seed) -> ids.
Sender = Callable[[list[dict[str, Any]], str], list[str]]


class Interrupt(BaseException):
    """Stop the function: the answer is these ops (a 206)."""

    def __init__(self, ops: list[dict[str, Any]], no_retry: bool = False) -> None:
        super().__init__(f"{len(ops)} step op(s)")
        self.ops = ops
        self.no_retry = no_retry


class Skip(BaseException):
    """A new step met while another step is targeted."""

    def __init__(self, step_id: str) -> None:
        super().__init__(step_id)
        self.step_id = step_id


class NestedStep(BaseException):
    """A step tool called inside a running step's body."""


@dataclasses.dataclass
class Memo:
    data: Any = None
    error: dict[str, Any] | None = None


def decode_memo(raw: Any) -> Memo:
    """``{"data": v}`` / ``{"error": {...}}`` unwrap; anything else is the data itself (docs/protocol.md
    §7.2: some servers store a wait's event or a sleep's null raw)."""
    if isinstance(raw, dict) and raw and set(raw) <= {"data", "error"}:
        err = raw.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str) and isinstance(err.get("name"), str):
            return Memo(error=err)
        if err is None:
            return Memo(data=raw.get("data"))
    return Memo(data=raw)


def hash_step_id(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


@dataclasses.dataclass
class StepRef:
    """One step call: the user's id, its repeat index, its hashed wire id and its memo."""

    user_id: str
    index: int | None
    hashed: str
    memo: Memo | None

    def value(self) -> Any:
        """The memoized result; a memoized failure is raised as ``StepError``."""
        assert self.memo is not None
        if self.memo.error is not None:
            err = self.memo.error
            raise StepError(err["message"], name=err["name"], stack=err.get("stack"), step_id=self.user_id)
        return self.memo.data


def to_json_value(value: Any, what: str) -> Any:
    """``value`` as plain JSON data (models dumped, datetimes as ISO strings), or SdkError."""
    try:
        plain = to_jsonable_python(value)
        json.dumps(plain, allow_nan=False)
    except (PydanticSerializationError, TypeError, ValueError) as err:
        raise SdkError(f"{what} is not JSON-serializable: {err}") from None
    return plain


def validate_as(value: Any, output_type: Any) -> Any:
    if output_type is None or value is None:
        return value
    return pydantic.TypeAdapter(output_type).validate_python(value)


class Execution:
    """The state of one call request while the function replays."""

    def __init__(
        self,
        *,
        run_id: str,
        app_id: str,
        attempt: int,
        max_attempts: int | None,
        memos: dict[str, Memo],
        target: str | None,
        disable_immediate: bool,
        sender: Sender,
        mocks: dict[str, Any] | None = None,
    ) -> None:
        self.run_id = run_id
        self.app_id = app_id
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.memos = memos
        self.target = target
        self.disable_immediate = disable_immediate
        self.sender = sender
        self.mocks = mocks
        self.parallel_depth = 0
        self._counts: dict[str, int] = {}
        self._in_step = False
        # Set when this call runs steps inline and reports each as it finishes.
        self.checkpoint: Checkpointer | None = None
        # The call's W3C traceparent, when Stepline traces the run (stepline.sdk.tracing).
        self.traceparent: str | None = None

    # -- identifying steps -------------------------------------------------------------------
    def ref(self, step_id: str) -> StepRef:
        if self._in_step:
            raise NestedStep()
        if not isinstance(step_id, str) or not step_id:
            raise SdkError("step id: must be a non-empty string")
        n = self._counts.get(step_id, 0)
        self._counts[step_id] = n + 1
        hashed = self.next_hash(step_id, n)
        return StepRef(step_id, n or None, hashed, self.memos.get(hashed))

    def next_hash(self, step_id: str, n: int | None = None) -> str:
        """The wire id the next use of ``step_id`` gets: sha1 of the id, ``id:n`` for the
        n-th repeat (docs/protocol.md §7.1)."""
        if n is None:
            n = self._counts.get(step_id, 0)
        return hash_step_id(step_id if n == 0 else f"{step_id}:{n}")

    def op(
        self,
        ref: StepRef,
        op: Op,
        *,
        name: str | None = None,
        opts: dict | None = None,
        data: Any = None,
        error: dict | None = None,
    ) -> dict[str, Any]:
        """An opcode in the Python SDK's shape (docs/protocol.md §6.5)."""
        out: dict[str, Any] = {
            "displayName": ref.user_id,
            "id": ref.hashed,
            "name": ref.user_id if name is None else name,
            "op": op,
            "opts": opts,
            "userland": {"id": ref.user_id, "index": ref.index},
            "data": data,
        }
        if error is not None:
            out["error"] = error
        return out

    # -- deciding what a new step does -------------------------------------------------------
    def report(self, ref: StepRef, op: dict[str, Any]) -> NoReturn:
        """A new sleep, wait or invoke: tell the server, unless another step is targeted."""
        if self.target is not None and ref.hashed != self.target:
            raise Skip(ref.user_id)
        raise Interrupt([op])

    def claim_execution(self, ref: StepRef) -> None:
        """Return if this new step's body runs in this request; otherwise raise."""
        if self.target is not None:
            if ref.hashed == self.target:
                return
            raise Skip(ref.user_id)
        if self.parallel_depth > 0 or self.disable_immediate:
            raise Interrupt([self.op(ref, Op.STEP_PLANNED)])
        if self.checkpoint is not None and self.checkpoint.over_budget():
            # The call has run long enough: end it here, before this step starts.
            raise Interrupt([self.checkpoint.end_op(self.op(ref, Op.STEP_PLANNED))])

    def mock_for(self, ref: StepRef) -> tuple[bool, Any]:
        """``stepline.testing`` stands a value (or an exception) in for a step's body."""
        if not self.mocks:
            return False, None
        for key in (f"{ref.user_id}:{ref.index}" if ref.index else None, ref.user_id):
            if key is not None and key in self.mocks:
                return True, self.mocks[key]
        return False, None

    @contextlib.contextmanager
    def inside_step(self) -> Iterator[None]:
        self._in_step = True
        try:
            yield
        finally:
            self._in_step = False

    # -- results -----------------------------------------------------------------------------
    def succeeded(self, ref: StepRef, output: Any) -> NoReturn:
        try:
            data = to_json_value(output, f"step {ref.user_id!r}: its result")
        except SdkError as err:
            # Retrying returns the same unserializable value: fail the step for good.
            raise Interrupt([self.op(ref, Op.STEP_FAILED, error=error_body(err))], no_retry=True) from None
        raise Interrupt([self.op(ref, Op.STEP_RUN, data=data)])

    def _settled_op(self, ref: StepRef, output: Any) -> tuple[dict[str, Any], Any]:
        try:
            data = to_json_value(output, f"step {ref.user_id!r}: its result")
        except SdkError as err:
            raise Interrupt([self.op(ref, Op.STEP_FAILED, error=error_body(err))], no_retry=True) from None
        return self.op(ref, Op.STEP_RUN, data=data), data

    def settle(self, ref: StepRef, output: Any) -> Any:
        """A step's body returned ``output``: end the call reporting it, or, checkpointing,
        report it and hand back its JSON data (what a replay would return) so the function
        goes on."""
        if self.checkpoint is None:
            self.succeeded(ref, output)
        op, data = self._settled_op(ref, output)
        try:
            self.checkpoint.record(op)
        except NotCheckpointed:
            raise Interrupt([op]) from None  # the answer carries it; the server stores it
        return data

    async def settle_async(self, ref: StepRef, output: Any) -> Any:
        if self.checkpoint is None:
            self.succeeded(ref, output)
        op, data = self._settled_op(ref, output)
        try:
            await self.checkpoint.record_async(op)
        except NotCheckpointed:
            raise Interrupt([op]) from None
        return data

    def failed(self, ref: StepRef, err: BaseException) -> NoReturn:
        last = self.max_attempts is not None and self.attempt + 1 >= self.max_attempts
        raise Interrupt([self.op(ref, Op.STEP_FAILED if last else Op.STEP_ERROR, error=error_body(err))])

    def nested(self, ref: StepRef) -> NoReturn:
        body = {
            "code": "step_nested",
            "message": "Nested steps are not supported: call step tools "
            "from the function body, not from inside a step.",
            "name": "NestedStepError",
            "stack": "",
        }
        raise Interrupt([self.op(ref, Op.STEP_ERROR, error=body)], no_retry=True)

    # -- event ids ---------------------------------------------------------------------------
    def event_id_seed(self, hashed: str) -> str:
        """A seed fixed by (run, step): a retried ``send_event`` step gets the same event ids
        from the Event API, so a send that timed out after being stored starts nothing twice."""
        entropy = hashlib.sha256(f"{self.run_id}\x1f{hashed}".encode()).digest()[:10]
        return f"{ulid_ms(self.run_id) or time.time_ns() // 1_000_000},{base64.b64encode(entropy).decode()}"


def ulid_ms(value: str) -> int | None:
    """The timestamp of a ULID (run ids are ULIDs), or None for anything else."""
    if len(value) != 26:
        return None
    ms = 0
    for ch in value[:10].upper():
        digit = CROCKFORD.find(ch)
        if digit < 0:
            return None
        ms = ms * 32 + digit
    return ms if ms < 2**48 else None
